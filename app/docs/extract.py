"""Text out of a file, as blocks (paragraphs) that keep their page number and the heading they sit under."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from app.docs.blocks import Block
from app.docs.formats import MAX_FILE_BYTES, DocumentError, kind_of
from app.docs.html_text import html_blocks

_SNIFF_BYTES = 65536
logging.getLogger("pypdf").setLevel(logging.ERROR)  # damaged PDFs are reported once, as a skip reason


@dataclass(frozen=True)
class Extracted:
    """A document's text."""

    blocks: list[Block]
    pages: int  # PDF pages, or 1


def extract(path: Path, max_bytes: int = MAX_FILE_BYTES) -> Extracted:
    """The text of a supported file; raises DocumentError (with the reason) for anything it cannot read."""
    kind = kind_of(path.name)
    if kind is None:
        raise DocumentError(f"unsupported file type {path.suffix or '(none)'}; cpmdesk reads PDF, TXT, MD, DOCX, HTML")
    size = path.stat().st_size
    if size > max_bytes:
        raise DocumentError(f"{size / 2**20:.0f} MB is over the {max_bytes / 2**20:.0f} MB limit for one document; "
                            "split it into smaller files")
    if size == 0:
        raise DocumentError("the file is empty")
    if kind == "pdf":
        result = _pdf(path)
    elif kind == "docx":
        result = _docx(path)
    else:
        text = read_text(path)
        blocks = html_blocks(text) if kind == "html" else markdown_blocks(text)
        result = Extracted(blocks, 1)
    if not any(b.text.strip() for b in result.blocks):
        raise DocumentError("no text found in the file")
    return result


def read_text(path: Path) -> str:
    """A text file's content (UTF-8, UTF-16 with BOM, or Windows-1252); binary content raises DocumentError."""
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # a cut-off or damaged UTF-16 file still gives its text
        text = data[:len(data) // 2 * 2].decode("utf-16", errors="replace")
    elif b"\x00" in data[:_SNIFF_BYTES]:
        raise DocumentError("this is binary data, not text (renamed file?); open it in its own program and save it "
                            "as text")
    else:
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("cp1252", errors="replace")
    controls = sum(1 for ch in text[:_SNIFF_BYTES] if ord(ch) < 32 and ch not in "\t\r\n\f") + text.count("\ufffd")
    if controls > 0.02 * min(len(text), _SNIFF_BYTES):
        raise DocumentError("this is binary data, not text (renamed file?); open it in its own program and save it "
                            "as text")
    return text


_MD_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.+?)\s*#*\s*$")


def markdown_blocks(text: str) -> list[Block]:
    """Paragraphs separated by blank lines; Markdown `#` headings become the heading of what follows."""
    blocks: list[Block] = []
    heading, lines = "", []

    def flush() -> None:
        paragraph = " ".join(line.strip() for line in lines).strip()
        if paragraph:
            blocks.append(Block(paragraph, None, heading))
        lines.clear()

    for line in text.splitlines():
        match = _MD_HEADING.match(line)
        if match:
            flush()
            heading = match.group(2)
        elif line.strip():
            lines.append(line)
        else:
            flush()
    flush()
    return blocks


def _pdf(path: Path) -> Extracted:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError, PyPdfError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentError("the PDF is encrypted with a password; save an unprotected copy and add that")
        blocks: list[Block] = []
        for number, page in enumerate(reader.pages, 1):
            text = page.extract_text() or ""
            for paragraph in re.split(r"\n\s*\n", text):
                paragraph = " ".join(paragraph.split())
                if paragraph:
                    blocks.append(Block(paragraph, number))
        pages = len(reader.pages)
    except DocumentError:
        raise
    except FileNotDecryptedError as err:
        raise DocumentError("the PDF is encrypted with a password; save an unprotected copy and add that") from err
    except LimitReachedError as err:  # pypdf's guards: reference loops, sizes past its limits
        raise DocumentError(f"the PDF is damaged or built to exhaust readers ({err}); re-download or re-export "
                            "it") from err
    except (NotImplementedError, DependencyError) as err:  # e.g. an encryption algorithm pypdf lacks a backend for
        raise DocumentError(f"the PDF uses a feature that cannot be read here ({err})") from err
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError, RecursionError) as err:
        raise DocumentError(f"the PDF is damaged or not a PDF ({type(err).__name__}); re-download or re-export it") \
            from err
    if not blocks:
        raise DocumentError(f"no text layer in this PDF ({pages} page(s) of images: a scan?); run OCR on it first")
    return Extracted(blocks, pages)


def _docx(path: Path) -> Extracted:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, KeyError, ValueError, OSError) as err:
        raise DocumentError("the .docx file is damaged or not a Word document; open and re-save it in Word") from err
    except Exception as err:  # zipfile.BadZipFile, lxml errors: all mean a broken file
        raise DocumentError(f"the .docx file is damaged ({type(err).__name__}); open and re-save it in Word") from err
    blocks: list[Block] = []
    heading = ""
    for paragraph in document.paragraphs:
        text = paragraph.text.strip()
        if not text:
            continue
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        if style.startswith("Heading") or style == "Title":
            heading = text
        else:
            blocks.append(Block(text, None, heading))
    for table in document.tables:
        for row in table.rows:
            cells = " | ".join(cell.text.strip() for cell in row.cells if cell.text.strip())
            if cells:
                blocks.append(Block(cells, None, heading))
    return Extracted(blocks, 1)
