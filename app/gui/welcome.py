"""The empty chat: the loaded model's card, example prompts that fill the message box, and how to add documents
and models."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QFrame, QGridLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.gui.icons import icon
from app.gui.model_card import ModelCard


class WelcomePanel(QWidget):
    """Emits `prompt_chosen(text)`, `documents_requested` and `models_requested`."""

    prompt_chosen = Signal(str)
    documents_requested = Signal()
    models_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Welcome")
        self._card: ModelCard | None = None
        self._loading = False
        self.title = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.title.setObjectName("WelcomeTitle")
        self.card = QFrame()
        self.card.setObjectName("ModelCard")
        self.card_icon = QLabel()
        self.card_name = QLabel()
        self.card_name.setObjectName("ModelCardName")
        self.card_details = QLabel(wordWrap=True)
        self.card_details.setObjectName("Muted")
        card_layout = QHBoxLayout(self.card)
        card_layout.setContentsMargins(16, 12, 16, 12)
        card_layout.addWidget(self.card_icon, 0, Qt.AlignmentFlag.AlignTop)
        text = QVBoxLayout()
        text.addWidget(self.card_name)
        text.addWidget(self.card_details)
        card_layout.addLayout(text, 1)
        self.examples_label = QLabel()
        self.examples_label.setObjectName("Muted")
        self.example_buttons = [QPushButton() for _ in range(4)]
        grid = QGridLayout()
        grid.setSpacing(10)
        for index, button in enumerate(self.example_buttons):
            button.setObjectName("ExamplePrompt")
            button.setCursor(Qt.CursorShape.PointingHandCursor)
            button.clicked.connect(lambda _=False, b=button: self.prompt_chosen.emit(b.property("prompt")))
            grid.addWidget(button, index // 2, index % 2)
        self.documents_button, self.models_button = QPushButton(), QPushButton()
        for button in (self.documents_button, self.models_button):
            button.setObjectName("LinkButton")
            button.setFlat(True)
            button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.documents_button.clicked.connect(self.documents_requested)
        self.models_button.clicked.connect(self.models_requested)
        links = QHBoxLayout()
        links.addStretch(1)
        links.addWidget(self.documents_button)
        links.addWidget(self.models_button)
        links.addStretch(1)
        self.hint = QLabel(alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.hint.setObjectName("Muted")
        column = QVBoxLayout()
        column.setSpacing(14)
        column.addWidget(self.title)
        column.addWidget(self.card)
        column.addSpacing(6)
        column.addWidget(self.examples_label)
        column.addLayout(grid)
        column.addSpacing(6)
        column.addWidget(self.hint)
        column.addLayout(links)
        body = QWidget()
        body.setLayout(column)
        body.setMaximumWidth(680)
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(body, 10)
        row.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(2)
        self.retranslate()

    def examples(self) -> list[str]:
        """The example prompts, in the current language."""
        return [self.tr("Explain the Pythagorean theorem with a formula"),
                self.tr("Write a Python function that tests for primes"),
                self.tr("Give me three tips for a clear email"),
                self.tr("Translate “Good morning” into French")]

    def retranslate(self) -> None:
        """Every text in the current language."""
        self.setAccessibleName(self.tr("Welcome"))
        self.title.setText(self.tr("What can I help you with?"))
        self.examples_label.setText(self.tr("Try one of these:"))
        for button, text in zip(self.example_buttons, self.examples(), strict=True):
            button.setText(text)
            button.setProperty("prompt", text)
            button.setAccessibleName(self.tr("Example prompt: {0}").format(text))
        self.hint.setText(self.tr("Everything runs on this computer. Answer from your own files with Documents, "
                                  "or add more models."))
        self.documents_button.setText(self.tr("Add documents…"))
        self.documents_button.setAccessibleName(self.tr("Add documents"))
        self.models_button.setText(self.tr("Add models…"))
        self.models_button.setAccessibleName(self.tr("Add models"))
        self.set_model(self._card, self._loading)

    def set_model(self, card: ModelCard | None, loading: bool = False) -> None:
        """Show the loaded model's card (None: none loaded; `loading`: it is being loaded)."""
        self._card, self._loading = card, loading
        colour = self.palette().color(QPalette.ColorRole.Highlight)
        self.card_icon.setPixmap(icon("model", colour).pixmap(28, 28))
        self.documents_button.setIcon(icon("documents", colour))
        self.models_button.setIcon(icon("model", colour))
        if card is None:
            self.card_name.setText(self.tr("Loading model…") if loading else self.tr("No model loaded"))
            self.card_details.setText("" if loading else self.tr("Choose or add one in Models…"))
        else:
            self.card_name.setText(self.tr("Loading {0}…").format(card.name) if loading else card.name)
            details = [self.tr("Size: {0}").format(card.size), self.tr("Quantization: {0}").format(card.quantization)]
            if card.context:
                details.append(self.tr("Context: {0} tokens").format(f"{card.context:,}"))
            details.append({"draft on": self.tr("draft on"), "draft off": self.tr("draft off")}.get(card.draft,
                                                                                                card.draft))
            self.card_details.setText(" · ".join(details))
        self.card.setAccessibleName(self.tr("Model: {0}").format(self.card_name.text()))
