"""Reports from documents (issue 24): a report per topic by the app's report job against the app's one-shot
Documents-mode answer on the same topic, on a deterministic corpus of 22 documents (5 topics x 4 documents, plus
2 unrelated ones) in Markdown, text, HTML and PDF. Both are scored by the same support check (app/docs/citations.py
through app/docs/report/write.py's supported_by), over the sentences that state something (claims: a number, a name
or a content word beyond the topic's):
  support_rate: the report's claims whose cited passage supports them (a claim without a citation has no support);
  support_rate_one_shot: the one-shot answers' claims that any passage the answer was given supports, cited or not
    (the app shows those passages under the answer; this model hardly ever cites inline, so judging it by its
    citations alone, support_rate_one_shot_cited_only, would say nothing of what it wrote);
  grounded_rate_report: the report's claims that any of its references supports (the same measure as one-shot's);
  support_rate_cited*: over cited sentences only; *_draft: the report's draft, the model's sentences before the
    check moved their citation, rewrote or dropped them.

    PYTHONPATH=$PWD .venv/bin/python bench/report.py [--model .cache/bench-tools/qwen2.5-coder-1.5b-instruct-int4]
        [--topics 5] [--max-new-tokens 200] [--sections 3] [--reuse-reports]

Prints one JSON line per topic and a summary line {"bench": "report-summary", ...}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WORK = REPO / ".cache" / "bench" / "report"
DEFAULT_MODEL = REPO / ".cache" / "bench-tools" / "qwen2.5-coder-1.5b-instruct-int4"

# (topic, [(file, heading, paragraph)]): made-up facts (no model knows them), numbers and names to cite
CORPUS = [
    ("The Velmora harbour: its equipment, staff and traffic", [
        ("velmora_equipment.md", "Equipment", "The Velmora harbour crane was installed in 1962 and lifts up to 84 "
         "tonnes. It is inspected every spring by the engineer Halvard Fenn. A second crane for containers arrived "
         "in 2011 and lifts 41 tonnes."),
        ("velmora_staff.txt", "Staff", "The harbour master of Velmora is Ottilie Brandt, who took office in 2019. "
         "She oversees forty pilots and a night crew of twelve. The pilots train for 18 months before they guide "
         "ships alone."),
        ("velmora_traffic.html", "Traffic", "In 2023 the harbour of Velmora handled 3,400 ship calls. Most cargo is "
         "timber and copper from the northern mines. The busiest month is October, with 410 calls."),
        ("velmora_history.pdf", "History", "The harbour of Velmora was founded in 1788 by the merchant Anselm "
         "Kroy. Its stone pier is 620 metres long. A fire in 1901 destroyed the old customs house."),
    ]),
    ("The Quillfield Garden Club: meetings, prizes and the orchard", [
        ("quillfield_meetings.md", "Meetings", "The Quillfield Garden Club meets every second Thursday in the "
         "Orchard Hall. Meetings start at 19:30 and last about two hours. The club has 86 members."),
        ("quillfield_prizes.txt", "Prizes", "The giant pumpkin prize went to Bertram Ashdown, whose pumpkin weighed "
         "412 kilograms. The rose prize went to Mirela Sto. The prizes are awarded in September."),
        ("quillfield_orchard.html", "Orchard", "The club's orchard has 64 apple trees and 12 pear trees. The oldest "
         "tree was planted in 1934. Volunteers prune the trees every February."),
        ("quillfield_budget.pdf", "Budget", "The Quillfield Garden Club spends 2,300 euros a year on seeds and "
         "tools. Membership costs 25 euros. The treasurer is Jonas Pell."),
    ]),
    ("The Nightjar project: team, budget and field work", [
        ("nightjar_team.md", "Team", "The Nightjar project is led by Dr. Kasimir Oyelaran, a marine biologist. "
         "His deputy is Dr. Ilse Varga. The team has nine researchers."),
        ("nightjar_budget.txt", "Budget", "The Nightjar project has a budget of 3.2 million euros for three years. "
         "Field work takes 40 percent of the budget. The project started in 2024."),
        ("nightjar_fieldwork.html", "Field work", "The Nightjar team tags birds on the Corvin marshes every May. In "
         "2024 it tagged 212 birds. Each tag weighs 1.4 grams."),
        ("nightjar_results.pdf", "Results", "The tagged nightjars flew 5,600 kilometres to their winter grounds. "
         "The longest single flight lasted 31 hours. The results were published in March 2025."),
    ]),
    ("The ferries of Lake Tessaly: timetable, fares and ships", [
        ("tessaly_timetable.md", "Timetable", "The ferry to Corvin Island leaves at 07:15 every morning from the "
         "north pier. The last ferry returns at 19:40. The crossing takes 50 minutes."),
        ("tessaly_fares.txt", "Fares", "A return ticket on the Corvin Island ferry costs 140 EUR for adults and 70 "
         "EUR for children. Bicycles travel free. Tickets are sold at the north pier kiosk."),
        ("tessaly_ships.html", "Ships", "The ferry company runs two ships, the Marta and the Sedge. The Marta "
         "carries 300 passengers and was built in 1998. The Sedge carries 180 passengers."),
        ("tessaly_safety.pdf", "Safety", "Every ferry on Lake Tessaly carries 12 lifeboats. Safety drills take "
         "place each April. The safety officer is Captain Runa Oberg."),
    ]),
    ("Grandma Ines's kitchen: cakes, preserves and the bakery", [
        ("ines_plum_cake.md", "Plum cake", "Grandma Ines's plum cake needs seven plums and bakes for 48 minutes at "
         "180 degrees. The cake keeps for three days in a tin."),
        ("ines_preserves.txt", "Preserves", "Grandma Ines makes 30 jars of apricot jam every July. She adds 600 "
         "grams of sugar per kilogram of fruit. The jars are sealed with wax."),
        ("ines_bakery.html", "Bakery", "Grandma Ines ran the Mill Street bakery from 1971 to 1999. It opened at "
         "06:00 on weekdays. Her apprentice was Tomas Lind."),
        ("ines_bread.pdf", "Bread", "Grandma Ines baked rye bread with a sourdough starter that was 40 years old. "
         "Each loaf weighed 900 grams and baked for 55 minutes."),
    ]),
]
UNRELATED = [("council_minutes.txt", "Minutes", "The council approved the new bus shelter. The library will open "
              "on Sundays from next year."), ("weather_notes.md", "Weather", "The winter was mild, with little snow "
              "and an early spring.")]
FILLER = ("The committee reviewed the minutes of the previous meeting and approved them without changes. Several "
          "members asked for the annual schedule to be published earlier in the year.")


def write_corpus(folder: Path) -> int:
    """The 22 documents; returns how many."""
    from tests.docs_corpus import write_pdf

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    documents = [d for _, docs in CORPUS for d in docs] + UNRELATED
    for name, heading, paragraph in documents:
        path = folder / name
        if name.endswith(".pdf"):
            write_pdf(path, [[heading, paragraph], [FILLER]])
        elif name.endswith(".html"):
            path.write_text(f"<html><body><h1>{heading}</h1><p>{paragraph}</p><p>{FILLER}</p></body></html>",
                            encoding="utf-8")
        elif name.endswith(".md"):
            path.write_text(f"# {heading}\n\n{paragraph}\n\n{FILLER}\n", encoding="utf-8")
        else:
            path.write_text(f"{heading}\n\n{paragraph}\n\n{FILLER}\n", encoding="utf-8")
    return len(documents)


def score(text: str, passages: dict[int, str], question: str) -> dict[str, int]:
    """Sentences of `text` that state something (claims), that cite a passage (cited), whose cited passage
    supports them (supported), and claims that any of `passages` supports (grounded), by the app's support check."""
    from app.docs.citations import cited_numbers, states_something
    from app.docs.claims import MARKER, claims, content_words, sentences
    from app.docs.report.write import supported_by

    asked = content_words(question)
    counts = {"claims": 0, "cited": 0, "supported": 0, "grounded": 0}
    for sentence in sentences(text):
        numbers = [n for n in cited_numbers(sentence, max(passages, default=0)) if n in passages]
        claim = states_something(claims(MARKER.sub("", sentence)), asked)
        counts["claims"] += claim
        if claim:  # grounded: some passage the text was written from supports it, cited or not
            counts["grounded"] += any(supported_by(sentence, p, question) for p in passages.values())
        if numbers:
            counts["cited"] += 1
            counts["supported"] += any(supported_by(sentence, passages[n], question) for n in numbers)
    return counts


def one_shot(engine, store, embedder, topic: str, settings) -> tuple[dict[str, int], str, float]:
    """The app's Documents-mode answer on the topic (as the window gives it): its counts, text and seconds."""
    from app.docs.answer import answer_from_documents
    from app.engine import Conversation, Message

    started = time.monotonic()
    answer = answer_from_documents(engine, store, embedder, Conversation(messages=[Message(
        "user", f"Write a short report on: {topic}")]), settings, False)
    return score(answer.text, {p.n: p.text for p in answer.passages}, topic), answer.text, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--topics", type=int, default=5)
    parser.add_argument("--max-new-tokens", type=int, default=200)
    parser.add_argument("--sections", type=int, default=3)
    parser.add_argument("--reuse-reports", action="store_true", help="score the finished reports an earlier run "
                        "left in .cache/bench/report/reports instead of writing them again (one-shot answers are "
                        "made again; no report timing)")
    args = parser.parse_args()
    os.environ.setdefault("CPMDESK_DATA_DIR", str(WORK / "data"))
    from app.docs.embedder import load_embedder
    from app.docs.indexer import Indexer
    from app.docs.report.job import ReportJob
    from app.docs.store import DocStore
    from app.engine import ChatEngine, GenerationSettings

    if not args.reuse_reports:
        shutil.rmtree(WORK / "reports", ignore_errors=True)
    (WORK / "index.sqlite3").unlink(missing_ok=True)
    documents = write_corpus(WORK / "corpus")
    store = DocStore(WORK / "index.sqlite3")
    embedder = load_embedder(log=lambda m: print(m, file=sys.stderr))
    Indexer(store, lambda: embedder).run([WORK / "corpus"])
    engine = ChatEngine(args.model)
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens)
    totals: dict[str, int] = {}
    seconds: list[float] = []
    sections = 0
    for topic, _docs in CORPUS[: args.topics]:
        job = ReportJob(engine, store, embedder, topic, WORK, settings=settings, sections=args.sections)
        started = time.monotonic()
        state = job.run(lambda p: print(f"  {p.stage} {p.done}/{p.total} {p.title}", file=sys.stderr, flush=True),
                        threading.Event(), fresh=not args.reuse_reports)
        elapsed = time.monotonic() - started
        seconds.append(elapsed)
        sections += len(state.outline)
        done = [s for s in state.sections if s is not None]
        references = {r.n: r.text for r in state.references}
        final = {"claims": 0, "cited": 0, "supported": 0, "grounded": 0}
        for section in done:
            for key, value in score(section.text, references, topic).items():
                final[key] += value
        draft = {"claims": sum(s.draft_claims for s in done), "cited": sum(s.draft_cited for s in done),
                 "supported": sum(s.draft_supported for s in done)}
        first, text, one_s = one_shot(engine, store, embedder, topic, settings)
        for name, counts in (("report", final), ("draft", draft), ("one_shot", first)):
            for key, value in counts.items():
                totals[f"{name}_{key}"] = totals.get(f"{name}_{key}", 0) + value
        print(json.dumps({"bench": "report", "topic": topic, "model": engine.name, "seconds": round(elapsed, 1),
                          "sections": len(state.outline), "outline_fallback": bool(state.outline_note),
                          "references": len(state.references), "rebound": sum(s.rebound for s in done),
                          "rewritten": sum(s.rewritten for s in done), "dropped": sum(s.dropped for s in done),
                          "quoted": sum(s.quoted for s in done), "report": final, "draft": draft, "one_shot": first,
                          "one_shot_s": round(one_s, 1), "one_shot_text": text[:240]}, ensure_ascii=False),
              flush=True)
    store.close()

    def rate_of(name: str, key: str) -> float:  # of the claims
        return round(totals.get(f"{name}_{key}", 0) / totals[f"{name}_claims"], 3) if totals.get(f"{name}_claims") \
            else 0.0

    def rate(name: str, over: str = "cited") -> float:
        return round(totals.get(f"{name}_supported", 0) / totals[f"{name}_{over}"], 3) \
            if totals.get(f"{name}_{over}") else 0.0

    # support_rate*: of the sentences that state something, the share whose cited passage supports them (a claim
    # with no citation has no support); *_cited: the same over cited sentences only (undefined, 0, with none)
    print(json.dumps({"bench": "report-summary", "topics": len(seconds), "documents": documents,
                      "model": engine.name, "mean_report_s": None if args.reuse_reports
                      else round(sum(seconds) / max(1, len(seconds)), 1),
                      "sections": sections, "claims_report": totals.get("report_claims", 0),
                      "claims_one_shot": totals.get("one_shot_claims", 0),
                      "cited_report": totals.get("report_cited", 0), "cited_one_shot": totals.get("one_shot_cited", 0),
                      "support_rate_draft": rate("draft", "claims"), "support_rate_cited": rate("report"),
                      "support_rate_cited_draft": rate("draft"), "support_rate_cited_one_shot": rate("one_shot"),
                      "support_rate_one_shot_cited_only": rate("one_shot", "claims"),
                      "grounded_rate_report": rate_of("report", "grounded"),
                      "support_rate": rate("report", "claims"),
                      "support_rate_one_shot": rate_of("one_shot", "grounded")}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
