"""The words shown for an answer's stored sources (`DocsAnswer.sources_metadata`), the same in the window and the
terminal. The marks are defined in app/docs/citations.py."""

from __future__ import annotations

NOT_SUPPORTED = "Not supported by the sources"
GIVEN_TITLE = "Sources, as given to the model"
OLD_TITLE = "Passages found for this question"  # answers stored before sources said what the prompt held


def marks(source: dict) -> list[str]:
    """"cited", "supported", "contradicts the answer": what the answer does with one source. The word-overlap
    "matched" mark of older answers is not shown: it did not mean the source supports the answer."""
    shown = [word for word in ("cited", "supported") if source.get(word)]
    if source.get("conflicts"):
        shown.append("contradicts the answer")
    return shown


def conflict_lines(sources: list[dict]) -> list[str]:
    """One line per number of the answer that a source contradicts: `the answer says 120 EUR; [1] says 140 EUR`."""
    lines = []
    for source in sources:
        for conflict in source.get("conflicts") or ():
            line = f"the answer says {conflict['answer']}; [{source['n']}] says {conflict['source']}"
            if line not in lines:
                lines.append(line)
    return lines


def title(sources: list[dict]) -> str:
    """The heading of the list: the sources as the prompt held them, or (older answers) the passages found."""
    return GIVEN_TITLE if all(s.get("given") for s in sources) else OLD_TITLE


def unsupported_note(sources: list[dict]) -> str:
    """A line when sources were given but no sentence of the answer is supported by any of them."""
    if sources and all(s.get("given") for s in sources) and not any(s.get("supported") for s in sources):
        return "No sentence of the answer is supported by these sources."
    return ""
