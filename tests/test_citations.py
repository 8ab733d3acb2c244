"""Citations users can trust: "supported" only when an answer's sentence is backed by a source (its numbers and
names there, with enough of its words), numbers a source contradicts flagged, only what the prompt held listed as
given to the model, and every number of a [n, m] marker a link. Real text through the real functions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.docs.answer import DocsAnswer
from app.docs.citations import attribute, cited_numbers
from app.docs.cli import format_sources
from app.docs.retrieval import Passage
from app.gui.docs_html import sources_html
from app.gui.markdown_render import MarkdownRenderer
from app.gui.transcript_html import MessageView, transcript_html
from tests.docs_corpus import QUESTIONS, write_corpus

FERRY_QUESTION = "When does the ferry to Corvin Island leave?"
FERRY = "The ferry to Corvin Island leaves at 07:15 every morning from the north pier."
BAKERY = ("The Mill Street bakery opens at 07:15 on weekdays. It sells rye bread, seed rolls and a plum cake that "
          "regulars order a day ahead.")
FARES = ("Corvin Island ferry fares. A return ticket on the Corvin Island ferry costs 140 EUR for adults and 70 EUR "
         "for children. Bicycles travel free.")
INN = "The Harbour Inn on the north pier charges 120 EUR per night for a double room, breakfast included."
TIMETABLE = "The first ferry to Corvin Island leaves at 07:15 and the last one returns at 19:40."
FARE_QUESTION = "How much is a return ticket on the Corvin Island ferry?"


def passage(n: int, text: str, name: str) -> Passage:
    return Passage(n, n, f"/docs/{name}", None, "", text, 0.5, 0.01)


def marks(citations) -> dict[int, tuple[bool, bool, int]]:
    return {c.passage.n: (c.cited, c.supported, len(c.conflicts)) for c in citations}


# ------------------------------------------------------------------ supported, and only when supported

def test_a_bare_time_is_not_supported_by_an_unrelated_passage_holding_it() -> None:
    bakery = passage(1, BAKERY, "bakery.txt")
    assert attribute("At 07:15.", [bakery], FERRY_QUESTION) == [], "sharing 07:15 is not support"
    ferry = passage(2, FERRY, "travel_guide.html")
    assert marks(attribute("At 07:15.", [bakery, ferry], FERRY_QUESTION)) == {2: (False, True, 0)}
    # the model citing the bakery does not make it support the answer
    assert marks(attribute("At 07:15 [1].", [bakery, ferry], FERRY_QUESTION)) == {2: (False, True, 0),
                                                                                    1: (True, False, 0)}


def test_a_contradicted_price_is_flagged_not_supported() -> None:
    fares, inn = passage(1, FARES, "fares.txt"), passage(2, INN, "harbour_inn.md")
    for answer in ("A return ticket costs 120 EUR [1].", "A return ticket costs 120 EUR.", "It is €120."):
        citations = attribute(answer, [fares, inn], FARE_QUESTION)
        assert marks(citations) == {1: (answer.endswith("[1]."), False, 1)}, answer
        conflict = citations[0].conflicts[0]
        assert conflict.answer in ("120 EUR", "€120") and conflict.source == "140 EUR"
    # the number right, another fact wrong: the name the source lacks breaks support
    assert marks(attribute("A return ticket on the Velmora ferry costs 140 EUR [1].", [fares, inn],
                           FARE_QUESTION)) == {1: (True, False, 0)}


def test_a_contradicted_time_and_quantity_are_flagged() -> None:
    ferry = passage(1, TIMETABLE, "timetable.txt")
    [citation] = attribute("The first ferry leaves at 8:30 [1].", [ferry], FERRY_QUESTION)
    assert not citation.supported and [(c.answer, c.source) for c in citation.conflicts] == [("8:30", "07:15")]
    recipe = passage(1, "Grandma Ines's plum cake needs seven plums and bakes for 48 minutes at 180 degrees.",
                     "recipe_notes.txt")
    [citation] = attribute("It bakes for 45 minutes.", [recipe], "How long does Grandma Ines's plum cake bake?")
    assert [(c.answer, c.source) for c in citation.conflicts] == [("45 minutes", "48 minutes")]
    assert marks(attribute("It needs 7 plums and bakes for 48 minutes [1].", [recipe],
                           "How long does Grandma Ines's plum cake bake?")) == {1: (True, True, 0)}


@pytest.mark.parametrize(("question", "answer"), [
    (QUESTIONS[0].text, "The crane lifts up to 84 tonnes [1]."),
    (QUESTIONS[1].text, "The harbour master of Velmora is Ottilie Brandt [1]."),
    (QUESTIONS[2].text, "Bertram Ashdown won it; his pumpkin weighed 412 kilograms."),
    (QUESTIONS[3].text, "It bakes for 48 minutes at 180 degrees [1]."),
    (QUESTIONS[4].text, "Dr. Kasimir Oyelaran leads the Nightjar project [1]."),
    (QUESTIONS[5].text, "At 07:15, from the north pier [1]."),
])
def test_a_correct_answer_is_supported_by_its_passage_only(tmp_path, question: str, answer: str) -> None:
    """The corpus' own sentences (read back from the written files), one source per file."""
    from app.docs.extract import extract

    corpus = write_corpus(tmp_path)
    sources = [passage(n, " ".join(b.text for b in extract(path).blocks), path.name)
               for n, path in enumerate(sorted(corpus.iterdir()), start=1)]
    expected = next(q.file for q in QUESTIONS if q.text == question)
    n = next(p.n for p in sources if Path(p.path).name == expected)
    citations = attribute(answer.replace("[1]", f"[{n}]"), sources, question)
    assert [(Path(c.passage.path).name, c.cited, c.supported, c.conflicts) for c in citations] == [
        (expected, "[1]" in answer, True, ())], [(c.passage.path, c.supported) for c in citations]


def test_restating_the_question_supports_nothing_and_a_wrong_count_in_words_is_flagged() -> None:
    staff = passage(1, "The harbour master of Velmora is Ottilie Brandt, who took office in 2019 and oversees forty "
                       "pilots.", "harbour_report.pdf")
    question = "Who is the harbour master of Velmora?"
    assert marks(attribute("[1] The harbour master of Velmora is the harbour master of Velmora.", [staff],
                           question)) == {1: (True, False, 0)}
    assert marks(attribute("She oversees 40 pilots [1].", [staff], question)) == {1: (True, True, 0)}
    [citation] = attribute("She took office in 2017 and oversees 45 pilots [1].", [staff], question)
    assert [(c.answer, c.source) for c in citation.conflicts] == [("2017", "2019"), ("45 pilots", "forty pilots")]


def test_marker_forms_name_their_sources() -> None:
    assert cited_numbers("See [1, 3] and [2][4]; also [9] and [2-3].", 4) == [1, 3, 2, 4]
    assert cited_numbers("Ranges: [1-3].", 5) == [1, 2, 3]


# ------------------------------------------------------------------ what the window and the terminal show

def test_the_window_and_the_terminal_say_a_contradicted_number_is_not_supported() -> None:
    fares, inn, timetable = passage(1, FARES, "fares.txt"), passage(2, INN, "harbour_inn.md"), \
        passage(3, TIMETABLE, "timetable.txt")
    text = "A return ticket costs 120 EUR [1]."
    answer = DocsAnswer(text, [fares, inn, timetable], attribute(text, [fares, inn, timetable], FARE_QUESTION))
    sources = answer.sources_metadata()
    assert [(s["n"], s["given"], s["cited"], s["supported"]) for s in sources] == [
        (1, True, True, False), (2, True, False, False), (3, True, False, False)]
    shown = re.sub(r"<[^>]+>", "", sources_html(5, sources))
    assert "⚠ Not supported by the sources: the answer says 120 EUR; [1] says 140 EUR" in shown
    assert "[1] fares.txt (cited, contradicts the answer)" in shown and "supported)" not in shown
    assert "No sentence of the answer is supported by these sources." in shown
    printed = format_sources(answer)
    assert printed.splitlines()[:2] == ["Not supported by the sources: the answer says 120 EUR; [1] says 140 EUR",
                                        "Sources, as given to the model:"]
    good = "A return ticket costs 140 EUR for adults [1]."
    ok = DocsAnswer(good, [fares, inn], attribute(good, [fares, inn], FARE_QUESTION)).sources_metadata()
    assert re.sub(r"<[^>]+>", "", sources_html(6, ok)).count("(cited, supported)") == 1
    assert "Not supported" not in sources_html(6, ok)


def test_an_answer_stored_with_the_old_word_overlap_mark_is_not_shown_as_supported() -> None:
    old = [{"n": 1, "path": "/docs/bakery.txt", "page": None, "heading": "", "text": BAKERY, "cosine": 0.4,
            "cited": False, "matched": True}]
    shown = re.sub(r"<[^>]+>", "", sources_html(1, old))
    assert "Passages found for this question:" in shown and "supported" not in shown and "quoted" not in shown


def test_each_number_of_a_marker_is_a_link_and_code_is_left_alone() -> None:
    sources = [{"n": n, "path": f"/docs/{n}.txt", "page": None, "heading": "", "text": "x", "given": True}
               for n in (1, 2)]
    content = "Both say so [1, 2], twice [1][2]; [3] is no source.\n\n`items[1]` stays code."
    html, _ = transcript_html([MessageView(7, "assistant", content, sources=sources)], MarkdownRenderer())
    body = html.split("Sources, as given to the model")[0]
    assert '[<a href="source:7:1">1</a>, <a href="source:7:2">2</a>]' in body
    assert '[<a href="source:7:1">1</a>][<a href="source:7:2">2</a>]' in body
    assert "[3]" in body and "source:7:3" not in html
    assert "<code>items[1]</code>" in body
    assert len(re.findall(r'href="source:7:\d"', body)) == 4


# ------------------------------------------------------------------ given to the model = what the prompt held

def _prompt_sources(prompt: str) -> list[tuple[int, str]]:
    from app.docs.answer import INSTRUCTIONS

    listed = prompt.split("\n\nSources:\n", 1)[1].rsplit(f"\n\n{INSTRUCTIONS}", 1)[0]
    parts = re.split(r"(?:^|\n)\[(\d+)\] ", listed)
    assert parts[0] == "", listed
    return [(int(n), text) for n, text in zip(parts[1::2], parts[2::2], strict=True)]


@pytest.mark.slow
def test_given_to_the_model_is_exactly_what_the_prompt_held(tmp_path, default_model, embedding_model) -> None:
    from app.docs.answer import DEFAULT_TOKEN_BUDGET, DEFAULT_TOP_K, FOCUS_SENTENCES, answer_from_documents
    from app.docs.embedder import Embedder
    from app.docs.indexer import Indexer
    from app.docs.retrieval import retrieve
    from app.docs.store import DocStore
    from app.engine import ChatEngine, Conversation, GenerationSettings, Message

    corpus = write_corpus(tmp_path / "corpus")
    for name, text in (("fares.txt", FARES), ("harbour_inn.md", INN), ("timetable.txt", TIMETABLE)):
        (corpus / name).write_text(text + "\n", encoding="utf-8")
    store, embedder = DocStore(tmp_path / "docs.sqlite3"), Embedder(embedding_model)
    try:
        Indexer(store, lambda: embedder).run([corpus])
        engine = ChatEngine(default_model)
        settings = GenerationSettings(max_new_tokens=12)
        retrieved = retrieve(store, embedder, FARE_QUESTION, DEFAULT_TOP_K, DEFAULT_TOKEN_BUDGET, engine.count_tokens)
        for read_whole in (False, True):
            conversation = Conversation("Be brief.", [Message("user", FARE_QUESTION)])
            answer = answer_from_documents(engine, store, embedder, conversation, settings, read_whole=read_whole)
            # the prompt kept with the answer is the one the engine was given: it has the reply's token count
            asked = Conversation("Be brief.", [Message("user", answer.prompt)])
            assert engine.count_tokens(engine.render(asked.prompt_messages(), None)) == answer.reply.prompt_tokens
            held = _prompt_sources(answer.prompt)
            stored = answer.sources_metadata()
            assert sorted((s["n"], s["text"]) for s in stored) == held, "every source listed, as it was sent"
            assert all(s["given"] for s in stored) and [n for n, _ in held] == list(range(1, len(held) + 1))
            assert [(p.n, p.text) for p in answer.passages] == held
            if read_whole:
                assert answer.note and all(p.chunk_id == -1 for p in answer.passages)
            else:
                # three sentences were kept: passages without one are not listed, the others only by those
                kept = sum(len(re.findall(r"[.!?](?:\s|$)", text)) for _, text in held)
                assert kept == FOCUS_SENTENCES < sum(len(re.findall(r"[.!?](?:\s|$)", p.text)) for p in retrieved)
                assert all(p.text not in answer.prompt for p in retrieved if len(p.text) > 120)
                assert len(held) < len(retrieved) or any(t not in {p.text for p in retrieved} for _, t in held)
    finally:
        store.close()
