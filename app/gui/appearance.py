"""Theme (light / dark / follow system) and language (Qt translation files in resources/i18n)."""

from __future__ import annotations

from PySide6.QtCore import QTranslator
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from app.resources import resource_path

I18N = resource_path("i18n")
_translators: list[QTranslator] = []


def apply_theme(app: QApplication, theme: str) -> None:
    """Fusion with a dark palette, a light palette, or the platform's own look."""
    if theme == "system":
        app.setPalette(app.style().standardPalette())
        return
    app.setStyle("Fusion")
    palette = QPalette()
    if theme == "dark":
        colours = {QPalette.ColorRole.Window: "#2b2b2b", QPalette.ColorRole.WindowText: "#e6e6e6",
                   QPalette.ColorRole.Base: "#1e1e1e", QPalette.ColorRole.AlternateBase: "#2b2b2b",
                   QPalette.ColorRole.Text: "#e6e6e6", QPalette.ColorRole.Button: "#353535",
                   QPalette.ColorRole.ButtonText: "#e6e6e6", QPalette.ColorRole.Highlight: "#3d6fb4",
                   QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.Link: "#7fb0ff",
                   QPalette.ColorRole.PlaceholderText: "#8a8a8a", QPalette.ColorRole.ToolTipBase: "#353535",
                   QPalette.ColorRole.ToolTipText: "#e6e6e6"}
        for role, colour in colours.items():
            palette.setColor(role, QColor(colour))
    app.setPalette(palette)


def is_dark(app: QApplication) -> bool:
    """Whether the current palette is dark (picks the code colour scheme)."""
    return app.palette().window().color().lightness() < 128


def apply_language(app: QApplication, language: str) -> bool:
    """Install the translation for `language` (English needs none); True when one was installed."""
    for translator in _translators:
        app.removeTranslator(translator)
    _translators.clear()
    if language == "en":
        return False
    translator = QTranslator()
    if not translator.load(str(I18N / f"cpmdesk_{language}.qm")):
        return False
    app.installTranslator(translator)
    _translators.append(translator)
    return True
