"""Reports from the documents (issue 24): the outline and survey-protocol parsers on canned text, then a real report
by the default model (SmolLM2-135M) on the test corpus: sections, citations whose passages hold the cited claims'
key terms, cancel leaving a readable partial report, resume finishing it, and a killed `cpmdesk report` process
resumed without redoing its finished sections."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QUrl

from app.docs.claims import MARKER, claims, same_word, sentences, stem
from app.docs.report.outline import fallback_outline, parse_outline
from app.docs.report.survey import _cites_to_markers, apply_update, is_survey_model, parse_step
from app.docs.retrieval import Passage
from tests.docs_corpus import write_corpus
from tests.test_gui import LONG

TOPIC = "The Velmora harbour: its crane and its harbour master"
MAX_NEW_TOKENS = 80


# ------------------------------------------------------------------ parsers (no model)

def test_outline_is_read_from_lists_json_and_headings_and_junk_is_refused() -> None:
    numbered = "Here is the plan:\n1. Equipment: the crane and its inspections\n2) Staff - the harbour master\n" \
               "3. **Equipment**: again\n"
    assert [(s.title, s.covers) for s in parse_outline(numbered, TOPIC)] == [
        ("Equipment", "the crane and its inspections"), ("Staff", "the harbour master")]
    as_json = '```json\n[{"title": "History", "covers": "when it was built"}, {"title": "People"}]\n```'
    assert [s.title for s in parse_outline(as_json, TOPIC)] == ["History", "People"]
    assert [s.title for s in parse_outline("## Cranes\n## Pilots\n## Cranes\n", TOPIC)] == ["Cranes", "Pilots"]
    for junk in ("The Velmora, a shipyard in Italy, was built in 1910.", "1. Title\n2. ...\n", "", "- x\n- y"):
        assert parse_outline(junk, TOPIC) is None, junk
    passages = [Passage(1, 1, "/d/harbour_report.pdf", 2, "", "crane", 0.6, 0.1),
                Passage(2, 2, "/d/harbour_report.pdf", 3, "", "staff", 0.5, 0.1),
                Passage(3, 3, "/d/plan.docx", None, "Team", "team", 0.4, 0.1)]
    assert [s.title for s in fallback_outline(TOPIC, passages, 3)] == ["Overview", "Harbour report, page 2",
                                                                       "Harbour report, page 3"]
    assert len(fallback_outline(TOPIC, [])) == 2, "an outline always has sections"


def test_survey_protocol_turns_are_parsed_and_applied() -> None:
    plan = ('<think>I plan first.</think>\n<answer>{"update": "plan", "content": {"title": "Harbours", '
            '"sections": [{"title": "Cranes", "plan": "lifting"}, {"title": "Staff", "plan": "people"}]}}</answer>\n'
            '<think>Search.</think>\n<tool_call>{"name": "search_engine", "arguments": {"query": ["crane tonnes", '
            '"harbour master"]}}</tool_call>')
    step = parse_step(plan)
    assert step.tool is not None and step.tool.name == "search_engine"
    assert step.tool.queries == ("crane tonnes", "harbour master")
    survey: dict = {}
    assert apply_update(survey, step.update) and [s["title"] for s in survey["sections"]] == ["Cranes", "Staff"]
    assert not apply_update(survey, step.update), "the plan is given once"
    # a bare \cite (invalid JSON escape) and a tool call missing its closing brace, as the protocol's own examples
    write = ('<answer>{"update": "section-1", "content": "The crane lifts 84 tonnes \\cite{p3, p9}."}</answer>\n'
             '<tool_call> {"name": "finalize", "arguments": {} </tool_call>')
    step = parse_step(write)
    assert step.tool is not None and step.tool.name == "finalize"
    assert apply_update(survey, step.update)
    marked = _cites_to_markers(survey["sections"][0]["content"], {"p3": 1, "p9": 2})
    assert marked == "The crane lifts 84 tonnes [1][2]."
    assert not apply_update(survey, {"update": "section-7", "content": "x"}), "no such section"
    assert parse_step("<answer>{}</answer><tool_call>{}</tool_call>") == parse_step("no tags at all")
    assert parse_step("nothing").update is None and parse_step("nothing").tool is None


def test_survey_model_is_detected_by_name_and_config(tmp_path) -> None:
    plain = tmp_path / "minicpm4-8b-int4"
    plain.mkdir()
    (plain / "config.json").write_text(json.dumps({"_name_or_path": "openbmb/MiniCPM4-8B"}))
    assert not is_survey_model(plain)
    renamed = tmp_path / "my-model"
    renamed.mkdir()
    (renamed / "config.json").write_text(json.dumps({"_name_or_path": "openbmb/MiniCPM4-Survey"}))
    assert is_survey_model(renamed) and is_survey_model(tmp_path / "MiniCPM4-Survey-int4")


# ------------------------------------------------------------------ a real report (the default model)

def holds_key_terms(sentence: str, passage: str) -> bool:
    """The sentence's numbers and names are in the passage, and at least half of its content words."""
    said, source = claims(MARKER.sub("", sentence)), claims(passage)
    vocabulary = {stem(w) for w in passage.replace("\n", " ").split()} | source.words | source.names
    values = {n.value for part in sentences(passage) for n in claims(part).numbers}
    words = said.words
    found = sum(any(same_word(w, v.strip(".,;:()“”\"'")) for v in vocabulary) for w in words)
    return {n.value for n in said.numbers} <= values and said.names <= vocabulary | source.words \
        and found >= 0.5 * len(words)


@pytest.mark.slow
def test_report_in_the_window_stops_resumes_and_cites_passages_holding_the_claims(qtbot, tmp_path, data_dir,
                                                                                   default_model) -> None:
    """Write a report → Stop after the first section → the partial report is shown and on disk → Write again
    finishes it without rewriting the first section; every [n] opens a passage holding the claim's key terms.
    Then the MiniCPM4-Survey loop on the same model and index."""
    from app.docs.library import DocsLibrary
    from app.docs.report.job import ReportJob
    from app.docs.report.state import REPORTS, ReportState, save_state
    from app.engine import ChatEngine, GenerationSettings
    from app.gui.report_dialog import ReportDialog
    from app.gui.workers import Threads

    library = DocsLibrary(tmp_path / "docs.sqlite3")
    library.indexer().run([write_corpus(tmp_path / "corpus")])
    engine = ChatEngine(default_model)
    threads = Threads()
    dialog = ReportDialog(library, threads, lambda: engine, tmp_path, settings=GenerationSettings(
        max_new_tokens=MAX_NEW_TOKENS), sections=2)
    qtbot.addWidget(dialog, before_close_func=lambda d: (d.stop(), threads.wait_all(), library.close()))
    dialog.show()
    dialog.topic.setText(TOPIC)
    stages: list[str] = []
    with qtbot.waitSignal(dialog.report_finished, timeout=LONG) as first:
        assert dialog.start() and dialog.is_writing and not dialog.write_button.isEnabled()
        dialog.worker.progress.connect(lambda p: (stages.append(p.stage), p.stage == "written" and dialog.stop()))
    partial = first.args[0]
    assert partial.status == "cancelled" and partial.done == 1 and len(partial.outline) == 2
    assert stages[:3] == ["outline", "section", "written"]
    shown = dialog.view.toPlainText()
    assert "1 of 2 sections are written" in shown and "Not written yet." in shown and "Write again" in \
        dialog.status.text()
    [folder] = (tmp_path / REPORTS).iterdir()
    assert partial.sections[0].text in (folder / "report.md").read_text(encoding="utf-8"), "readable on disk"

    with qtbot.waitSignal(dialog.report_finished, timeout=LONG) as second:
        assert dialog.start()
    state = second.args[0]
    assert state.status == "done" and state.runs == 2 and dialog.status.text().startswith("Done: 2 sections")
    assert [s.run for s in state.sections] == [1, 2] and state.sections[0] == partial.sections[0]
    cited = 0
    for section in state.sections:
        assert section.text.strip()
        for sentence in sentences(section.text):
            for n in [int(n) for group in MARKER.findall(sentence) for n in group.split(",")]:
                ref = state.references[n - 1]
                assert ref.n == n and Path(ref.path).name == "harbour_report.pdf", (sentence, ref.path)
                assert holds_key_terms(sentence, ref.text), (sentence, ref.text)
                cited += 1
    assert cited >= 2 and all(s.supported == s.cited for s in state.sections)
    assert 'href="source:0:1"' in dialog.view.toHtml()
    passage = dialog.open_link(QUrl("source:0:1"))
    assert passage is not None and passage.text.toPlainText() == state.references[0].text
    assert "harbour_report.pdf" in passage.windowTitle()
    markdown = dialog.save(tmp_path / "report.md").read_text(encoding="utf-8")
    assert "unfinished" not in markdown and "](file://" in markdown and "## References" in markdown
    html = dialog.save(tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'href="#ref-1"' in html and 'id="ref-1"' in html and "harbour_report.pdf#page=" in html
    pdf = dialog.save(tmp_path / "report.pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 1000

    # the MiniCPM4-Survey loop's plumbing on a model that does not know the protocol (no Survey weights offline):
    # its turn is read, the step is saved, and the job ends done with a readable (empty) report
    survey = ReportJob(engine, library.store, library.embedder(), "Cranes", tmp_path / "survey",
                       settings=GenerationSettings(max_new_tokens=40))
    save_state(survey.folder, ReportState("Cranes", [], engine.name, protocol="survey"))
    ended = survey.run()
    assert ended.protocol == "survey" and ended.status == "done" and ended.survey["step"] == 1
    assert json.loads((survey.folder / "state.json").read_text())["survey"]["step"] == 1
    assert "wrote no section" in survey.report_path.read_text(encoding="utf-8")


@pytest.mark.slow
def test_killed_report_resumes_without_redoing_finished_sections(tmp_path, default_model,
                                                                 embedding_model) -> None:
    from app.docs.embedder import Embedder
    from app.docs.indexer import Indexer
    from app.docs.store import DocStore

    data = tmp_path / "data"
    (data / "models").mkdir(parents=True)
    (data / "models" / embedding_model.name).symlink_to(embedding_model)
    store = DocStore(data / "docs.sqlite3")
    embedder = Embedder(embedding_model)
    Indexer(store, lambda: embedder).run([write_corpus(tmp_path / "corpus")])
    store.close()
    env = {**os.environ, "CPMDESK_DATA_DIR": str(data)}
    command = [sys.executable, "-m", "app", "report", "Grandma Ines's plum cake and the Nightjar project",
               "--model", str(default_model), "--max-new-tokens", str(MAX_NEW_TOKENS), "--sections", "2"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def written() -> int:
        for path in (data / "reports").glob("*/state.json"):
            try:
                return sum(s is not None for s in json.loads(path.read_text())["sections"])
            except (ValueError, KeyError):
                return 0
        return 0

    deadline = time.monotonic() + 240
    while written() < 1 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, f"the report ended before it could be killed: {process.stderr.read()[-2000:]}"
    process.send_signal(signal.SIGKILL)
    process.wait()
    [job] = list((data / "reports").iterdir())
    before = json.loads((job / "state.json").read_text())
    assert before["status"] == "running" and 1 <= sum(s is not None for s in before["sections"]) < 2
    assert "sections are written" in (job / "report.md").read_text(encoding="utf-8"), "the partial report is readable"
    out = tmp_path / "report.md"
    resume = [sys.executable, "-m", "app", "report", "--resume", *command[5:], "--out", str(out)]  # no topic: the
    result = subprocess.run(resume, env=env, capture_output=True, text=True, timeout=400)  # latest unfinished one
    assert result.returncode == 0, result.stderr[-2000:]
    after = json.loads((job / "state.json").read_text())
    assert after["status"] == "done" and after["runs"] == 2
    finished = [i for i, s in enumerate(before["sections"]) if s is not None]
    for i in finished:
        assert after["sections"][i] == before["sections"][i], "a finished section is not written again"
        assert f"{after['outline'][i]['title']}: already written (kept)" in result.stderr
    assert [s["run"] for i, s in enumerate(after["sections"]) if i not in finished] == [2] * (2 - len(finished))
    assert out.read_text(encoding="utf-8").count("## ") == len(after["outline"]) + 1  # sections + references


def test_docs_limit_retrieval_to_files_and_folders(tmp_path, embedding_model) -> None:
    from app.docs.embedder import Embedder
    from app.docs.indexer import Indexer
    from app.docs.retrieval import retrieve, within
    from app.docs.store import DocStore

    assert within("/a/b/c.txt", ("/a/b",)) and within("/a/b/c.txt", ("/a/b/c.txt",))
    assert not within("/a/bc/c.txt", ("/a/b",)) and not within("/a/b.txt", ("/a/b",))
    corpus = write_corpus(tmp_path / "corpus")
    store = DocStore(tmp_path / "docs.sqlite3")
    embedder = Embedder(embedding_model)
    try:
        Indexer(store, lambda: embedder).run([corpus])
        question = "How many tonnes can the Velmora harbour crane lift?"
        assert {Path(p.path).name for p in retrieve(store, embedder, question, paths=(str(corpus),))} >= {
            "harbour_report.pdf"}
        only = retrieve(store, embedder, question, paths=(str(corpus / "harbour_report.pdf"),))
        assert only and {Path(p.path).name for p in only} == {"harbour_report.pdf"}
        assert retrieve(store, embedder, question, paths=(str(corpus / "recipe_notes.txt"),)) == []
    finally:
        store.close()


def test_reports_are_listed_in_privacy_and_data_and_deleted(tmp_path) -> None:
    from app import data_inventory
    from app.docs.report.outline import Section
    from app.docs.report.state import ReportState, job_folder, load_state, save_state
    from app.store import ChatStore

    store = ChatStore(tmp_path / "chats.sqlite3")
    try:
        assert "reports" not in {i.key for i in data_inventory.inventory(tmp_path, store)}
        folder = job_folder(tmp_path, TOPIC, [], "some-model")
        state = ReportState(TOPIC, [], "some-model", outline=[Section("Cranes", "lifting")], sections=[None])
        state.reference(7, "/d/harbour_report.pdf", 2, "", "The crane lifts up to 84 tonnes.")
        save_state(folder, state)
        assert load_state(folder) == state, "the state file round-trips"
        [item] = [i for i in data_inventory.inventory(tmp_path, store) if i.key == "reports"]
        assert item.count == 1 and item.size_bytes > 0
        data_inventory.delete_reports(tmp_path)
        assert not (tmp_path / "reports").exists()
        assert "reports" not in {i.key for i in data_inventory.inventory(tmp_path, store)}
    finally:
        store.close()
