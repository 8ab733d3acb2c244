"""The bar above the conversation: the model picker (name, size, quantization, draft, context), the device, and the
Reasoning and Documents switches. It only shows and reports; the window loads models and applies settings."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QCheckBox, QComboBox, QFrame, QHBoxLayout, QLabel, QWidget

from app.gui.icons import icon
from app.gui.model_card import ModelCard

MANAGE = "manage"  # the picker's last entry: open Models…


class PickerCombo(QComboBox):
    """A combo that says when its list is about to open (the window refreshes the models first)."""

    about_to_show = Signal()

    def showPopup(self) -> None:
        self.about_to_show.emit()
        super().showPopup()


class HeaderBar(QFrame):
    """Emits `model_chosen(folder)`, `device_chosen(name)` and `manage_models` when the user picks them."""

    model_chosen = Signal(object)
    device_chosen = Signal(str)
    manage_models = Signal()

    def __init__(self, reasoning: QCheckBox, documents: QCheckBox, tools: QCheckBox | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("HeaderBar")
        self.reasoning, self.documents, self.tools = reasoning, documents, tools
        self.model_picker = PickerCombo()
        self.model_picker.setObjectName("ModelPicker")
        self.model_picker.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.model_picker.setMinimumContentsLength(28)
        self.model_picker.setIconSize(QSize(16, 16))
        self.model_picker.activated.connect(self._on_model_activated)
        self.device_label = QLabel()
        self.device = QComboBox()
        self.device.setObjectName("DevicePicker")
        self.device.activated.connect(lambda i: self.device_chosen.emit(self.device.itemText(i)))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 6, 12, 6)
        layout.setSpacing(10)
        layout.addWidget(self.model_picker)
        layout.addWidget(self.device_label)
        layout.addWidget(self.device)
        layout.addStretch(1)
        layout.addWidget(self.reasoning)
        layout.addWidget(self.documents)
        if tools is not None:
            layout.addWidget(tools)
        self._current: Path | None = None
        self._cards: list[ModelCard] = []
        self.retranslate()

    def retranslate(self) -> None:
        """Texts and accessible names in the current language."""
        self.device_label.setText(self.tr("Device"))
        self.model_picker.setAccessibleName(self.tr("Model"))
        self.model_picker.setToolTip(self.tr("The model that answers: size, quantization, draft and context"))
        self.device.setAccessibleName(self.tr("Device"))
        self.device.setToolTip(self.tr("Where the model runs (applies after the current answer)"))
        self.reasoning.setText(self.tr("Reasoning"))
        self.reasoning.setAccessibleName(self.tr("Reasoning"))
        self.documents.setText(self.tr("Documents"))
        self.documents.setAccessibleName(self.tr("Documents"))
        if self.tools is not None:
            self.tools.setText(self.tr("Tools"))
            self.tools.setAccessibleName(self.tr("Tools"))
        self.set_models(self._cards, self._current)
        self.updateGeometry()

    def restyle(self) -> None:
        """Icons in the palette's colours (after a theme change)."""
        self.set_models(self._cards, self._current)

    def set_models(self, cards: list[ModelCard], current: Path | None, loading: bool = False) -> None:
        """List `cards` (the current one selected; `loading`: it is still being loaded)."""
        self._cards, self._current = list(cards), current
        colour = self.palette().color(QPalette.ColorRole.WindowText)
        picker = self.model_picker
        picker.blockSignals(True)
        picker.clear()
        selected = -1
        for card in cards:
            is_current = current is not None and card.folder.resolve() == Path(current).resolve()
            text = self.line(card)
            if is_current and loading:
                text = self.tr("Loading {0}…").format(card.name)
            picker.addItem(icon("model", colour), text, str(card.folder))
            picker.setItemData(picker.count() - 1, self.line(card), Qt.ItemDataRole.ToolTipRole)
            if is_current:
                selected = picker.count() - 1
        if not cards or selected == -1:
            picker.insertItem(0, icon("model", colour),
                              self.tr("Loading model…") if loading else self.tr("No model loaded"), "")
            selected = 0
        picker.insertSeparator(picker.count())
        picker.addItem(icon("settings", colour), self.tr("Manage models…"), MANAGE)
        picker.setCurrentIndex(selected)
        picker.blockSignals(False)

    def line(self, card: ModelCard) -> str:
        """A model as the picker lists it: name · size · quantization · draft · context."""
        draft = {"draft on": self.tr("draft on"), "draft off": self.tr("draft off")}.get(card.draft, card.draft)
        context = self.tr("{0} tokens").format(f"{card.context:,}") if card.context else ""
        return " · ".join(filter(None, (card.name, card.size, card.quantization, draft, context)))

    def set_devices(self, devices: list[str], current: str) -> None:
        """The devices to pick from, `current` selected."""
        self.device.blockSignals(True)
        self.device.clear()
        self.device.addItems(devices)
        self.device.setCurrentText(current if current in devices else (devices[0] if devices else ""))
        self.device.blockSignals(False)

    def model_folders(self) -> list[Path]:
        """The listed models' folders, in order."""
        return [Path(self.model_picker.itemData(i)) for i in range(self.model_picker.count())
                if self.model_picker.itemData(i) not in (None, "", MANAGE)]

    def _on_model_activated(self, index: int) -> None:
        data = self.model_picker.itemData(index)
        if data == MANAGE:
            self.set_models(self._cards, self._current)  # the picker keeps showing the model in use
            self.manage_models.emit()
        elif data and (self._current is None or Path(data).resolve() != Path(self._current).resolve()):
            self.model_chosen.emit(Path(data))
