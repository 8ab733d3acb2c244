"""The report as Markdown (with a references list whose links open the passages' files at their page), as HTML
(markdown-it, already a dependency; [n] links to the reference, or to the window's `source:` links) and as PDF.

PDF: Qt's QTextDocument + QPdfWriter (PySide6 is already a dependency of the app) rather than fpdf2, which is a
test-only dependency and whose core fonts cannot write Chinese or most non-Latin text; Qt lays the HTML out with
the system's fonts."""

from __future__ import annotations

import html
import os
import time
from collections.abc import Callable
from pathlib import Path

from app.docs.claims import MARKER
from app.docs.report.state import Reference, ReportState

EXCERPT = 180  # characters of the passage quoted in the references list
QUOTED_NOTE = ("Nothing the model wrote for this section was supported by the documents; it quotes the passage "
               "that matches it best.")


def where(ref: Reference) -> str:
    """`file.pdf, page 2` / `notes.md, Heading` / `file.txt`."""
    name = Path(ref.path.replace("\\", "/")).name
    if ref.page is not None:
        return f"{name}, page {ref.page}"
    return f"{name}, {ref.heading}" if ref.heading else name


def passage_url(ref: Reference) -> str:
    """A link that opens the passage's file (at its page, for PDFs)."""
    url = Path(ref.path).absolute().as_uri() if ref.path else ""
    return f"{url}#page={ref.page}" if url and ref.page is not None else url


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= EXCERPT else flat[:EXCERPT].rsplit(" ", 1)[0] + "…"


def unfinished_note(state: ReportState) -> str:
    """The line an unfinished report starts with ("" when it is done)."""
    if state.status == "done":
        return ""
    total = len(state.outline)
    if not total:
        return "This report is unfinished: no section is written yet. Run the report again to continue."
    return (f"This report is unfinished: {state.done} of {total} sections are written. Run the report again to "
            "finish it; finished sections are kept.")


def to_markdown(state: ReportState) -> str:
    """The report: title, notes, sections (unwritten ones marked), references."""
    day = time.strftime("%Y-%m-%d", time.localtime(state.created))
    lines = [f"# {state.topic}", "",
             f"*Written by {state.model} from your documents on {day}. "
             "Every cited sentence was checked against its passage; sentences no passage supports were rewritten "
             "or left out.*", ""]
    if state.status == "done" and not state.outline:
        lines += ["> The model wrote no section of this report.", ""]
    for note in (unfinished_note(state), state.outline_note):
        if note:
            lines += [f"> {note}", ""]
    for i, section in enumerate(state.outline):
        result = state.sections[i] if i < len(state.sections) else None
        lines += [f"## {i + 1}. {section.title}", ""]
        if result is None:
            lines += ["*Not written yet.*", ""]
            continue
        lines += [result.text, ""]
        if result.quoted:
            lines += [f"*{QUOTED_NOTE}*", ""]
    if state.references:
        lines += ["## References", ""]
        for ref in state.references:
            lines.append(f"{ref.n}. [{where(ref)}]({passage_url(ref)}) — “{_excerpt(ref.text)}”")
        lines.append("")
    return "\n".join(lines)


def _linked(body: str, link: Callable[[int], str], count: int) -> str:
    def group(marker) -> str:
        parts = []
        for number in marker.group(1).replace(" ", "").split(","):
            parts.append(f'<a href="{link(int(number))}">{number}</a>' if number.isdigit()
                         and 1 <= int(number) <= count else number)
        return "[" + ",".join(parts) + "]"

    return MARKER.sub(group, body)


def to_html(state: ReportState, link: Callable[[int], str] | None = None, standalone: bool = True) -> str:
    """The report as HTML; each [n] links to `link(n)` (default: the reference in the list, which links to the
    passage's file and quotes the passage)."""
    from markdown_it import MarkdownIt

    link = link or (lambda n: f"#ref-{n}")
    render = MarkdownIt("commonmark").render
    parts = [f"<h1>{html.escape(state.topic)}</h1>"]
    head, _, _ = to_markdown(state).partition("\n## ")
    parts.append(render(head.split("\n", 1)[1] if "\n" in head else ""))
    for i, section in enumerate(state.outline):
        result = state.sections[i] if i < len(state.sections) else None
        parts.append(f"<h2>{i + 1}. {html.escape(section.title)}</h2>")
        body = render(result.text) if result is not None else "<p><i>Not written yet.</i></p>"
        parts.append(_linked(body, link, len(state.references)))
        if result is not None and result.quoted:
            parts.append(f"<p><small><i>{html.escape(QUOTED_NOTE)}</i></small></p>")
    if state.references:
        rows = [f'<li id="ref-{r.n}" value="{r.n}"><a href="{html.escape(passage_url(r))}">{html.escape(where(r))}'
                f"</a> — <i>“{html.escape(_excerpt(r.text))}”</i></li>" for r in state.references]
        parts.append(f"<h2>References</h2><ol>{''.join(rows)}</ol>")
    body = "\n".join(parts)
    if not standalone:
        return body
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(state.topic)}</title></head>'
            f"<body>{body}</body></html>")


def to_pdf(state: ReportState, path: Path) -> Path:
    """The report as a PDF (A4), laid out by Qt from the HTML. Creates an offscreen Qt application when none runs
    (the terminal)."""
    from PySide6.QtGui import QGuiApplication, QPageSize, QPdfWriter, QTextDocument

    if QGuiApplication.instance() is None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        _keep.append(QGuiApplication([]))
    writer = QPdfWriter(str(path))
    writer.setPageSize(QPageSize(QPageSize.PageSizeId.A4))
    writer.setTitle(state.topic)
    document = QTextDocument()
    document.setHtml(to_html(state, standalone=False))
    document.print_(writer)
    return path


_keep: list = []  # the terminal's Qt application lives as long as the process


def export(state: ReportState, path: Path) -> Path:
    """Write the report to `path` in the format its extension names: .md, .html/.htm or .pdf."""
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        return to_pdf(state, path)
    text = to_html(state) if suffix in (".html", ".htm") else to_markdown(state)
    path.write_text(text, encoding="utf-8")
    return path
