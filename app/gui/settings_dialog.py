"""Settings: system prompt, generation settings, device, theme and language; other pages (Tools, API) as tabs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.answer_limits import max_new_tokens_limit
from app.app_settings import LANGUAGES, THEMES, AppSettings
from app.engine.model_defaults import Sampling


class SettingsDialog(QDialog):
    """Edits a copy of AppSettings; `result_settings()` returns it after OK. The sampling rows are the model in
    `model`'s (kept per model). `context`: the loaded model's context in tokens, which bounds max new tokens."""

    privacy_requested = Signal()

    def __init__(self, settings: AppSettings, devices: list[str], parent=None, model: Path | None = None,
                 context: int | None = None, pages: list[tuple[str, QWidget]] | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Settings"))
        self._base, self._model = settings, model
        sampling = settings.sampling(model)
        self.system_prompt = QPlainTextEdit(settings.system_prompt)
        self.system_prompt.setPlaceholderText(self.tr("Optional instructions for every new chat"))
        self.max_new_tokens = _spin(QSpinBox(), 1, 65536, settings.max_new_tokens)
        self.temperature = _spin(QDoubleSpinBox(), 0.0, 2.0, sampling.temperature, 0.05)
        self.top_p = _spin(QDoubleSpinBox(), 0.05, 1.0, sampling.top_p, 0.05)
        self.top_k = _spin(QSpinBox(), 0, 1000, sampling.top_k)
        self.repetition_penalty = _spin(QDoubleSpinBox(), 0.8, 2.0, sampling.repetition_penalty, 0.05)
        self.repetition_guard = QCheckBox(self.tr("Stop the model repeating itself"))
        self.repetition_guard.setChecked(sampling.repetition_guard)
        self.device = QComboBox()
        self.device.addItems(devices)
        self.device.setCurrentText(settings.device if settings.device in devices else devices[0])
        self.context = _spin(QSpinBox(), 0, 1 << 20, int(settings.context or 0))
        self.context.setSingleStep(1024)
        self.context.setSpecialValueText(self.tr("The model's own"))
        self._model_context = context
        self.max_tokens_hint = QLabel()
        self.context.valueChanged.connect(self._bound_max_new_tokens)
        self._bound_max_new_tokens()
        self.use_draft = QCheckBox(self.tr("Use the model's draft to answer faster (when it has one)"))
        self.use_draft.setChecked(bool(settings.use_draft))
        self.theme = QComboBox()
        for theme in THEMES:
            self.theme.addItem({"system": self.tr("Follow system"), "light": self.tr("Light"),
                                "dark": self.tr("Dark")}[theme], theme)
        self.theme.setCurrentIndex(THEMES.index(settings.theme) if settings.theme in THEMES else 0)
        self.language = QComboBox()
        for code, name in LANGUAGES.items():
            self.language.addItem(name, code)
        self.language.setCurrentIndex(max(0, self.language.findData(settings.language)))
        general = QWidget()
        form = QFormLayout(general)
        form.addRow(self.tr("System prompt"), self.system_prompt)
        form.addRow(self.tr("Max new tokens"), self.max_new_tokens)
        form.addRow("", self.max_tokens_hint)
        if model is not None:
            form.addRow(self.tr("Sampling for"), QLabel(model.name))
        form.addRow(self.tr("Temperature (0 = greedy)"), self.temperature)
        form.addRow(self.tr("Top-p"), self.top_p)
        form.addRow(self.tr("Top-k (0 = off)"), self.top_k)
        form.addRow(self.tr("Repetition penalty"), self.repetition_penalty)
        form.addRow(self.tr("Repetition guard"), self.repetition_guard)
        form.addRow(self.tr("Device"), self.device)
        form.addRow(self.tr("Assisted generation"), self.use_draft)
        form.addRow(self.tr("Context (tokens)"), self.context)
        form.addRow(self.tr("Theme"), self.theme)
        form.addRow(self.tr("Language"), self.language)
        self.privacy_button = QPushButton(self.tr("What is stored, and deleting it…"))
        self.privacy_button.clicked.connect(self.privacy_requested)
        form.addRow(self.tr("Privacy && data"), self.privacy_button)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.tabs = QTabWidget()
        self.tabs.addTab(general, self.tr("General"))
        self.pages = [page for _title, page in pages or []]
        for title, page in pages or []:
            self.tabs.addTab(page, title)
        self.accepted.connect(lambda: [page.apply() for page in self.pages])
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(buttons)

    def _bound_max_new_tokens(self) -> None:
        """Max new tokens at most what the context allows (the chosen context, else the loaded model's)."""
        context = self.context.value() or self._model_context
        if context is None:
            self.max_tokens_hint.setText("")
            return
        limit = max_new_tokens_limit(context)
        self.max_new_tokens.setMaximum(limit)  # a larger value is cut to it
        self.max_tokens_hint.setText(self.tr("At most {0}: the context holds {1} tokens, prompt included")
                                     .format(limit, context))

    def result_settings(self) -> AppSettings:
        """The edited settings."""
        result = replace(self._base, system_prompt=self.system_prompt.toPlainText().strip(),
                         max_new_tokens=self.max_new_tokens.value(), device=self.device.currentText(),
                         use_draft=self.use_draft.isChecked(), context=self.context.value(),
                         theme=self.theme.currentData(),
                         language=self.language.currentData(), model_sampling=dict(self._base.model_sampling))
        result.set_sampling(self._model, self.sampling())
        return result

    def sampling(self) -> Sampling:
        """The sampling rows as they stand."""
        return Sampling(temperature=round(self.temperature.value(), 2), top_p=round(self.top_p.value(), 2),
                        top_k=self.top_k.value(), repetition_penalty=round(self.repetition_penalty.value(), 2),
                        repetition_guard=self.repetition_guard.isChecked())


def _spin(box, low, high, value, step=None):
    box.setRange(low, high)
    if step is not None:
        box.setSingleStep(step)
        box.setDecimals(2)
    box.setValue(value)
    return box
