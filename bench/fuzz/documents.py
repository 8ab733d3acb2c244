"""Fuzz the document extractors (app/docs/extract.py: PDF via pypdf, DOCX via python-docx, HTML, Markdown, text).

    .venv/bin/python bench/fuzz/documents.py bench/fuzz/corpus/documents -max_total_time=600 -timeout=20 \
        -rss_limit_mb=3072

The first input byte picks the file type, the rest is the file. Anything other than DocumentError (the extractor's
"cannot read this file, because …") is a crash, as are a hang (-timeout) and a huge allocation (-rss_limit_mb).
`python bench/fuzz/documents.py --seeds DIR` writes the seed corpus (small valid files of every type).
"""

from __future__ import annotations

import contextlib
import sys

from common import REPO, run, scratch

SUFFIXES = (".pdf", ".docx", ".txt", ".md", ".html")
_WORK = scratch()


def test_one(data: bytes) -> None:
    """Extract one input; DocumentError is the only accepted failure."""
    from app.docs.extract import extract
    from app.docs.formats import DocumentError

    if not data:
        return
    path = _WORK / f"input{SUFFIXES[data[0] % len(SUFFIXES)]}"
    path.write_bytes(data[1:])
    with contextlib.suppress(DocumentError):  # the one accepted refusal: "cannot read this file, because …"
        extract(path)


def write_seeds(folder) -> None:
    """Small valid documents of every type, each prefixed with its type byte."""
    from pathlib import Path

    from tests.docs_corpus import write_docx, write_pdf

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pdf = write_pdf(_WORK / "seed.pdf", [["The harbour crane lifts 84 tonnes."], ["Second page.", "More text."]])
    docx = write_docx(_WORK / "seed.docx", [("Plan", ["Kasimir leads the project."])])
    seeds = {"pdf": bytes([0]) + pdf.read_bytes(), "docx": bytes([1]) + docx.read_bytes(),
             "txt": bytes([2]) + "Plum cake bakes 48 minutes.\n\nCafé ünïcode".encode(),
             "txt16": bytes([2]) + "utf-16 text".encode("utf-16"),
             "md": bytes([3]) + b"# Garden\n\nBertram won.\n\n## Prize\ntext ##\n",
             "html": bytes([4]) + b"<html><h1>Ferry</h1><p>Leaves at 07:15.</p><script>x</script><ul><li>a</ul>"}
    for name, data in seeds.items():
        (folder / name).write_bytes(data)


def _instrumented() -> None:
    import docx  # noqa: F401
    import pypdf  # noqa: F401

    import app.docs.extract
    import app.docs.html_text  # noqa: F401


if __name__ == "__main__":
    if sys.argv[1:2] == ["--seeds"]:
        write_seeds(sys.argv[2] if len(sys.argv) > 2 else REPO / "bench" / "fuzz" / "corpus" / "documents")
    else:
        run(test_one, _instrumented)
