"""Tests that ran in a weaker form than they are written for say so: a DegradedRunWarning in pytest's warnings
summary and a "degraded runs" section at the end of the terminal summary (conftest.py imports these hooks).

The bundle's offline tests are the case: they cut the network with a fresh network namespace (`unshare -rn`);
where user namespaces are unavailable they still run, with the network on, and the summary says so."""

from __future__ import annotations

import shutil
import subprocess
import warnings

import pytest

_DEGRADED = pytest.StashKey[list]()


class DegradedRunWarning(UserWarning):
    """A test ran, but without one of its conditions; the message says which and why."""


def degraded(request: pytest.FixtureRequest, what: str) -> None:
    """Record that the running test is degraded (`what`: what is missing and why)."""
    request.config.stash.setdefault(_DEGRADED, []).append((request.node.nodeid, what))
    warnings.warn(DegradedRunWarning(what), stacklevel=2)


def network_namespace_problem() -> str | None:
    """Why `unshare -rn` (a fresh network namespace, no network) cannot be used here, or None when it can."""
    if shutil.which("unshare") is None:
        return "the unshare command is not installed"
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"user namespaces are unavailable ({probe.stderr.strip() or f'exit {probe.returncode}'})"
    return None


@pytest.fixture
def no_network(request: pytest.FixtureRequest) -> list[str]:
    """A command prefix that runs a command without network; where that cannot be made, [] and the test is
    reported as degraded (it runs with the network on)."""
    problem = network_namespace_problem()
    if problem is None:
        return ["unshare", "-rn"]
    degraded(request, f"ran WITH the network on: {problem}")
    return []


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """A "degraded runs" section listing each degraded test and why."""
    entries = config.stash.get(_DEGRADED, [])
    if entries:
        terminalreporter.section(f"degraded runs: {len(entries)}", yellow=True)
        for nodeid, what in entries:
            terminalreporter.line(f"DEGRADED {nodeid}: {what}")
