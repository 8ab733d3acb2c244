"""A source of an answer: which file, which page, its marks, the text exactly as the model was given it, and a
button that opens the file."""

from __future__ import annotations

import html

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPushButton, QTextBrowser, QVBoxLayout, QWidget

from app.docs.source_marks import NOT_SUPPORTED, conflict_lines, marks
from app.gui.docs_html import place


class PassageDialog(QDialog):
    """Shows one source of an answer."""

    def __init__(self, source: dict, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.source = source
        self.setWindowTitle(f"[{source['n']}] {place(source)}")
        self.resize(560, 360)
        how = marks(source)
        given = ("The text below is exactly what the model was given." if source.get("given")
                 else "The passage found for the question.")
        lines = [f"<b>[{source['n']}] {html.escape(place(source))}</b>"
                 + (f" <span style='color:gray'>({', '.join(how)})</span>" if how else ""),
                 f"<small>{html.escape(source['path'])}</small>", f"<small><i>{given}</i></small>"]
        lines += [f"<small style='color:#b3261e'>⚠ {NOT_SUPPORTED}: {html.escape(line)}</small>"
                  for line in conflict_lines([source])]
        self.place_label = QLabel("<br>".join(lines))
        self.place_label.setWordWrap(True)
        self.text = QTextBrowser()
        self.text.setPlainText(source["text"] if not source.get("removed") else self.tr(
            "The text of this passage was deleted when its document was removed from Documents (or the document "
            "index was deleted)."))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        self.open_button = QPushButton(self.tr("Open file"))
        self.open_button.clicked.connect(self.open_file)
        buttons.addButton(self.open_button, QDialogButtonBox.ButtonRole.ActionRole)
        layout = QVBoxLayout(self)
        layout.addWidget(self.place_label)
        layout.addWidget(self.text, 1)
        layout.addWidget(buttons)

    def open_file(self) -> bool:
        """Open the document in the system's viewer."""
        return QDesktopServices.openUrl(QUrl.fromLocalFile(self.source["path"]))
