"""A report job's state on disk: the outline, the references and each finished section, in one JSON file written
atomically (scratch file, fsync, rename) after every step, so a kill loses at most the section being written."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from app.docs.report.outline import Section

STATE_VERSION = 1
STATE_FILE = "state.json"
REPORT_FILE = "report.md"
REPORTS = "reports"  # under the data folder


@dataclass(frozen=True)
class Progress:
    """Where a job is: `stage` is outline, section (started), written (finished), skipped (finished earlier),
    done or cancelled; `done` of `total` sections are finished."""

    stage: str
    done: int
    total: int
    title: str = ""
    seconds: float = 0.0


@dataclass
class Reference:
    """A passage the report cites as [n]: where it is and its text, as the references list and the links show it."""

    n: int
    chunk_id: int
    path: str
    page: int | None
    heading: str
    text: str

    def source(self) -> dict:
        """The passage as the window's passage dialog and the chat store's sources take it (`given` False: the model
        may have been given only some of its sentences)."""
        return {"n": self.n, "path": self.path, "page": self.page, "heading": self.heading, "text": self.text,
                "cosine": 0.0, "given": False, "cited": True, "supported": True, "conflicts": []}


@dataclass
class SectionResult:
    """A finished section: its text with global [n] markers, and what the support check did to the model's draft."""

    title: str
    text: str
    citations: list[int]
    draft_claims: int = 0  # sentences of the model's draft that state something (a number, a name, a fact)
    draft_cited: int = 0  # sentences of the model's draft that cited a passage
    draft_supported: int = 0  # of those, the ones their cited passage supports (before any fix)
    cited: int = 0  # cited sentences in the final text
    supported: int = 0  # of those, the ones their cited passage supports (the same check)
    rebound: int = 0  # citations moved to the passage that supports the sentence
    rewritten: int = 0  # sentences rewritten once and then supported
    dropped: int = 0  # sentences dropped: unsupported, and the rewrite was not supported either
    off_topic: int = 0  # sentences dropped for sharing no word with the topic or the section (filler of a passage)
    quoted: bool = False  # nothing the model wrote held up: the section quotes its best passage
    seconds: float = 0.0
    run: int = 0  # which run of the job wrote it (resume leaves finished sections alone)


@dataclass
class ReportState:
    """Everything a report job has decided and written so far."""

    topic: str
    docs: list[str]
    model: str
    protocol: str = "orchestrated"  # or "survey" (MiniCPM4-Survey's own protocol)
    outline: list[Section] = field(default_factory=list)
    outline_note: str = ""  # why the outline is not the model's, when it is not
    sections: list[SectionResult | None] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)
    status: str = "new"  # new, running, cancelled, done
    runs: int = 0
    created: float = field(default_factory=time.time)
    survey: dict = field(default_factory=dict)  # MiniCPM4-Survey: its survey as its <answer> updates built it

    @property
    def done(self) -> int:
        """Sections finished."""
        return sum(s is not None for s in self.sections)

    def reference(self, chunk_id: int, path: str, page: int | None, heading: str, text: str) -> int:
        """The reference number of a passage, added to the list on first citation."""
        for ref in self.references:
            if ref.chunk_id == chunk_id and ref.text == text:
                return ref.n
        self.references.append(Reference(len(self.references) + 1, chunk_id, path, page, heading, text))
        return len(self.references)

    def to_dict(self) -> dict:
        """As the state file holds it."""
        data = asdict(self)
        data["outline"] = [s.to_dict() for s in self.outline]
        data["version"] = STATE_VERSION
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ReportState:
        """From the state file."""
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"report state version {data.get('version')!r} is not {STATE_VERSION}")
        return cls(topic=data["topic"], docs=list(data["docs"]), model=data["model"], protocol=data["protocol"],
                   outline=[Section.from_dict(s) for s in data["outline"]], outline_note=data["outline_note"],
                   sections=[SectionResult(**s) if s is not None else None for s in data["sections"]],
                   references=[Reference(**r) for r in data["references"]], status=data["status"],
                   runs=data["runs"], created=data["created"], survey=data.get("survey") or {})


def job_folder(root: Path, topic: str, docs: list[str], model: str) -> Path:
    """root/reports/<topic-slug>-<hash>: one folder per topic, document selection and model."""
    key = hashlib.sha1(json.dumps([topic.strip(), sorted(docs), model]).encode()).hexdigest()[:10]
    slug = re.sub(r"[^a-z0-9]+", "-", topic.lower()).strip("-")[:40] or "report"
    return root / REPORTS / f"{slug}-{key}"


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` so that a reader (or a kill) sees the old file or the new one, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(scratch, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(scratch, path)
    except OSError:
        scratch.unlink(missing_ok=True)
        raise


def save_state(folder: Path, state: ReportState) -> None:
    """Write the state file atomically."""
    write_atomic(folder / STATE_FILE, json.dumps(state.to_dict(), ensure_ascii=False, indent=1))


def load_state(folder: Path) -> ReportState | None:
    """The saved state, or None when there is none (a damaged file raises ValueError)."""
    path = folder / STATE_FILE
    if not path.is_file():
        return None
    try:
        return ReportState.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (KeyError, TypeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is damaged: {err}") from err
