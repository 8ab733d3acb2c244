"""`cpmdesk ask --tools`: each tool call asked about on the terminal (y / N / always), the default being No."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from app.tools.tool_loop import Approver, Decision, PendingCall, ToolStep

ANSWERS = {"y": Decision.ALLOW_ONCE, "yes": Decision.ALLOW_ONCE, "a": Decision.ALWAYS, "always": Decision.ALWAYS}


def terminal_approver(answers: TextIO | None = None, out: TextIO | None = None) -> Approver:
    """Ask on `out` (stderr) and read the answer from `answers` (stdin); anything but y/yes/a/always, or the end
    of the input, denies the call."""

    def approve(call: PendingCall) -> Decision:
        source, sink = answers or sys.stdin, out or sys.stderr
        arguments = json.dumps(call.arguments, ensure_ascii=False, indent=2)
        sink.write(f"\nThe model wants to run {call.tool} from the MCP server {call.server} with:\n{arguments}\n"
                   "Run it? [y/N/always] ")
        sink.flush()
        line = source.readline()
        if not line:
            sink.write("\n(no answer: denied)\n")
        return ANSWERS.get(line.strip().lower(), Decision.DENY)

    return approve


def step_summary(step: ToolStep) -> str:
    """One line on stderr after a call: the tool, what the user chose and how it went."""
    state = {"allowed": "ran", "always": "ran (always allowed)", "denied": "denied", "unknown": "no such tool",
             "repeated": "asked again with the same arguments; not run"}
    note = state.get(step.outcome, step.outcome)
    if step.result.is_error and step.outcome in ("allowed", "always"):
        note += f", failed: {step.result.text.splitlines()[0] if step.result.text else ''}"
    if step.result.truncated:
        note += ", output cut"
    return f"[tool {step.call.tool}: {note}]"
