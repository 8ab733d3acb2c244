"""A small document corpus with made-up facts (no model can know them), in every format the index reads, plus
the bad files a user may add. Written by the tests themselves: the PDF with fpdf2, the .docx with python-docx."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

FILLER = ("The committee reviewed the minutes of the previous meeting and approved them without changes. "
          "Several members asked for the annual schedule to be published earlier in the year. "
          "Refreshments were provided by volunteers, and the meeting closed on time.")


@dataclass(frozen=True)
class Question:
    """A question whose answer is in exactly one passage of one file."""

    text: str
    file: str
    page: int | None
    passage: str  # a phrase of the passage that holds the answer
    answer: str  # a word the right answer contains


QUESTIONS = (
    Question("How many tonnes can the Velmora harbour crane lift?", "harbour_report.pdf", 2,
             "lifts up to 84 tonnes", "84"),
    Question("Who is the harbour master of Velmora?", "harbour_report.pdf", 3, "Ottilie Brandt", "Brandt"),
    Question("Who won the giant pumpkin prize at the Quillfield Garden Club?", "garden_club.md", None,
             "Bertram Ashdown", "Ashdown"),
    Question("How long does Grandma Ines's plum cake bake?", "recipe_notes.txt", None, "48 minutes", "48"),
    Question("Who leads the Nightjar project?", "project_plan.docx", None, "Kasimir Oyelaran", "Oyelaran"),
    Question("When does the ferry to Corvin Island leave?", "travel_guide.html", None, "07:15", "07:15"),
)
UNRELATED_QUESTION = "What is the boiling point of liquid nitrogen in kelvin?"


def write_pdf(path: Path, pages: list[list[str]]) -> Path:
    """A text PDF, one list of paragraphs per page."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for paragraphs in pages:
        pdf.add_page()
        for paragraph in paragraphs:
            pdf.multi_cell(0, 6, paragraph)
            pdf.ln(6)
    pdf.output(str(path))
    return path


def write_docx(path: Path, sections: list[tuple[str, list[str]]]) -> Path:
    """A Word document: (heading, paragraphs) sections."""
    import docx

    document = docx.Document()
    for heading, paragraphs in sections:
        document.add_heading(heading, level=1)
        for paragraph in paragraphs:
            document.add_paragraph(paragraph)
    document.save(str(path))
    return path


def write_corpus(folder: Path) -> Path:
    """Five documents (PDF, MD, TXT, DOCX, HTML) holding the QUESTIONS' facts among filler."""
    folder.mkdir(parents=True, exist_ok=True)
    write_pdf(folder / "harbour_report.pdf", [
        ["Velmora Harbour Annual Report", "This report describes the harbour of Velmora, its equipment and its "
         "staff. " + FILLER],
        ["Equipment", "The Velmora harbour crane was installed in 1962. The crane lifts up to 84 tonnes and is "
         "inspected every spring.", FILLER],
        ["Staff", "The harbour master of Velmora is Ottilie Brandt, who took office in 2019 and oversees forty "
         "pilots.", FILLER],
    ])
    (folder / "garden_club.md").write_text(
        "# Quillfield Garden Club\n\n" + FILLER + "\n\n## Meetings\n\nThe Quillfield Garden Club meets every second "
        "Thursday in the Orchard Hall.\n\n## Prizes\n\nThe giant pumpkin prize went to Bertram Ashdown, whose pumpkin "
        "weighed 412 kilograms.\n\n" + FILLER + "\n", encoding="utf-8")
    (folder / "recipe_notes.txt").write_text(
        "Recipe notes\n\n" + FILLER + "\n\nGrandma Ines's plum cake needs seven plums and bakes for 48 minutes at "
        "180 degrees.\n\nThe cake keeps for three days in a tin.\n", encoding="utf-8")
    write_docx(folder / "project_plan.docx", [
        ("Budget", ["The Nightjar project has a budget of 3.2 million euros for three years.", FILLER]),
        ("Team", ["The Nightjar project is led by Dr. Kasimir Oyelaran, a marine biologist."]),
    ])
    (folder / "travel_guide.html").write_text(
        "<html><head><title>Lake Tessaly guide</title><style>p {color: red}</style></head><body>"
        "<h1>Lake Tessaly</h1><p>" + FILLER + "</p><h2>Ferries</h2><p>The ferry to Corvin Island leaves at 07:15 "
        "every morning from the north pier.</p><script>var hidden = 'do not index';</script></body></html>",
        encoding="utf-8")
    return folder


def write_bad_files(folder: Path) -> dict[str, str]:
    """Files the index must skip, each with a word its message must contain."""
    from pypdf import PdfReader, PdfWriter

    folder.mkdir(parents=True, exist_ok=True)
    source = write_pdf(folder / ".plain.pdf", [["A secret page about the encrypted ledger."]])
    writer = PdfWriter(clone_from=PdfReader(source))
    writer.encrypt(user_password="hunter2", algorithm="RC4-128")
    with (folder / "encrypted.pdf").open("wb") as handle:
        writer.write(handle)
    source.unlink()
    good = write_pdf(folder / ".good.pdf", [["Some text that will be cut off."]])
    (folder / "corrupt.pdf").write_bytes(b"%PDF-1.7\n" + os.urandom(2000))
    good.unlink()
    _write_image_only_pdf(folder / "scan.pdf")
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 64)
    with (folder / "huge.txt").open("wb") as handle:  # sparse: 200 MB on paper, nothing on disk
        handle.truncate(200 * 2**20)
    return {"encrypted.pdf": "encrypted", "corrupt.pdf": "damaged", "scan.pdf": "no text layer",
            "binary.txt": "binary", "huge.txt": "limit"}


def _write_image_only_pdf(path: Path) -> None:
    """A 'scanned' page: a picture of text, no text layer."""
    from fpdf import FPDF
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (400, 120), "white")
    ImageDraw.Draw(image).text((10, 50), "Scanned: the vault code is 5521", fill="black")
    pdf = FPDF()
    pdf.add_page()
    pdf.image(image, x=10, y=10, w=150)
    pdf.output(str(path))
