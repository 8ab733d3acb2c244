"""A report job: cancellable, resumable, with progress per section. Its state (outline, references, finished
sections) and the report so far are written atomically to its folder after every step; running the job again on
the same folder finishes it without redoing finished sections."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from app.docs.embedder import Embedder
from app.docs.report.export import to_markdown
from app.docs.report.outline import Section, fallback_outline, outline_prompt, parse_outline
from app.docs.report.state import REPORT_FILE, Progress, ReportState, job_folder, load_state, save_state, write_atomic
from app.docs.report.survey import is_survey_model, run_survey
from app.docs.report.write import Writing, write_section
from app.docs.store import DocStore
from app.engine import ChatEngine, GenerationSettings

log = logging.getLogger(__name__)

DEFAULT_SECTIONS = 4
OUTLINE_TOKENS = 160
FALLBACK_NOTE = ("The model's outline could not be used, so the sections follow the documents that match the "
                 "topic.")


class ReportJob:
    """Writes the report on `topic` into `folder` (data folder/reports/<topic>-<key> unless given)."""

    def __init__(self, engine: ChatEngine, store: DocStore, embedder: Embedder, topic: str, root: Path,
                 docs: list[str] | None = None, settings: GenerationSettings | None = None,
                 sections: int = DEFAULT_SECTIONS, folder: Path | None = None) -> None:
        self.engine, self.store, self.embedder = engine, store, embedder
        self.topic = topic.strip()
        self.docs = sorted(docs or [])
        self.settings = settings or GenerationSettings(max_new_tokens=256)
        self.sections = sections
        self.folder = folder or job_folder(root, self.topic, self.docs, engine.name)

    @property
    def report_path(self) -> Path:
        """The report as Markdown (partial until the job is done)."""
        return self.folder / REPORT_FILE

    def existing(self) -> ReportState | None:
        """The state an earlier run left (None: none)."""
        return load_state(self.folder)

    def run(self, on_progress: Callable[[Progress], None] | None = None,
            cancel: threading.Event | None = None, fresh: bool = False) -> ReportState:
        """Write (or finish) the report; returns its state, `status` "done" or "cancelled"."""
        cancel = cancel or threading.Event()
        progress = on_progress or (lambda _p: None)
        state = None if fresh else self.existing()
        if state is None:
            survey = is_survey_model(self.engine.folder)
            state = ReportState(self.topic, self.docs, self.engine.name, "survey" if survey else "orchestrated")
        state.runs += 1
        state.status = "running"
        self._save(state)
        writing = Writing(self.engine, self.store, self.embedder, self.settings, cancel, tuple(self.docs))
        if state.protocol == "survey":
            run_survey(writing, state, lambda: self._save(state), progress)
        else:
            self._orchestrated(writing, state, progress)
        finished = state.done == len(state.outline) and (bool(state.outline) or state.protocol == "survey")
        state.status = "done" if finished and not (cancel.is_set() and not state.outline) else "cancelled"
        self._save(state)
        progress(Progress(state.status, state.done, len(state.outline)))
        return state

    def _orchestrated(self, writing: Writing, state: ReportState, progress: Callable[[Progress], None]) -> None:
        if not state.outline:
            progress(Progress("outline", 0, 0))
            state.outline, state.outline_note = self.plan(writing)
            if writing.cancel.is_set():
                state.outline, state.outline_note = [], ""
                return
            state.sections = [None] * len(state.outline)
            self._save(state)
        total = len(state.outline)
        for i, section in enumerate(state.outline):
            if state.sections[i] is not None:
                progress(Progress("skipped", state.done, total, section.title))
                continue
            if writing.cancel.is_set():
                return
            progress(Progress("section", state.done, total, section.title))
            references = len(state.references)
            result = write_section(writing, self.topic, section, state)
            if result is None:  # cancelled mid-section: its references go with it
                del state.references[references:]
                return
            result.run = state.runs
            state.sections[i] = result
            self._save(state)
            progress(Progress("written", state.done, total, section.title, result.seconds))

    def plan(self, writing: Writing) -> tuple[list[Section], str]:
        """The model's outline, or the documents' (and a note saying so) when the model's cannot be used."""
        text = writing.ask(outline_prompt(self.topic, self.sections), OUTLINE_TOKENS)
        sections = parse_outline(text, self.topic)
        if sections is not None:
            return sections, ""
        log.info("unusable outline from %s: %r", self.engine.name, text[:300])
        return fallback_outline(self.topic, writing.search(self.topic, top_k=8), self.sections), FALLBACK_NOTE

    def _save(self, state: ReportState) -> None:
        save_state(self.folder, state)
        write_atomic(self.report_path, to_markdown(state))
