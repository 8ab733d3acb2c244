"""Theme (light / dark / follow the system's colour scheme) and language (Qt translation files in resources/i18n)."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTranslator
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from app.gui.html_style import Colours, colours
from app.resources import resource_path

I18N = resource_path("i18n")
_translators: list[QTranslator] = []


def effective_theme(theme: str, scheme: Qt.ColorScheme) -> str:
    """"light" or "dark": the chosen theme, or the system's colour scheme when the theme is "system"."""
    if theme in ("light", "dark"):
        return theme
    return "dark" if scheme == Qt.ColorScheme.Dark else "light"


def system_scheme() -> Qt.ColorScheme:
    """The platform's colour scheme now (Unknown where it says nothing)."""
    return QGuiApplication.styleHints().colorScheme()


def apply_theme(app: QApplication, theme: str, scheme: Qt.ColorScheme | None = None) -> str:
    """Fusion with the light or dark palette and the app's style sheet; `theme` "system" follows `scheme` (default:
    the system's now). Returns the theme applied ("light" or "dark")."""
    name = effective_theme(theme, system_scheme() if scheme is None else scheme)
    c = colours(name == "dark")
    if app.style().name().lower() != "fusion":  # setting it again would re-polish every widget for nothing
        app.setStyle("Fusion")
    palette = QPalette()
    roles = {QPalette.ColorRole.Window: c.window, QPalette.ColorRole.WindowText: c.text,
             QPalette.ColorRole.Base: c.base, QPalette.ColorRole.AlternateBase: c.window,
             QPalette.ColorRole.Text: c.text, QPalette.ColorRole.Button: c.base if name == "light" else "#2a2d33",
             QPalette.ColorRole.ButtonText: c.text, QPalette.ColorRole.Highlight: c.accent,
             QPalette.ColorRole.HighlightedText: c.accent_text, QPalette.ColorRole.Link: c.accent,
             QPalette.ColorRole.PlaceholderText: c.muted, QPalette.ColorRole.ToolTipBase: c.base,
             QPalette.ColorRole.ToolTipText: c.text,
             QPalette.ColorRole.Mid: "#c3c8d0" if name == "light" else "#4a4f58"}
    for role, colour in roles.items():
        palette.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(c.muted))
    if app.palette() != palette:
        app.setPalette(palette)
    sheet = style_sheet(c)
    if app.styleSheet() != sheet:  # each change re-polishes every widget of the app
        app.setStyleSheet(sheet)
    return name


def style_sheet(c: Colours) -> str:
    """The app's own widgets (by object name); everything else keeps Fusion's look in the palette's colours."""
    return f"""
#HeaderBar {{ background: {c.base}; border: none; border-bottom: 1px solid {c.border}; }}
#ModelPicker, #DevicePicker {{ padding: 4px 8px; border: 1px solid {c.border}; border-radius: 6px;
    background: {c.window}; }}
#ModelCard {{ background: {c.base}; border: 1px solid {c.border}; border-radius: 10px; }}
#ModelCardName {{ font-size: 15px; font-weight: 600; }}
#WelcomeTitle {{ font-size: 22px; font-weight: 600; }}
#Muted {{ color: {c.muted}; }}
#ExamplePrompt {{ text-align: left; padding: 10px 12px; border: 1px solid {c.border}; border-radius: 8px;
    background: {c.base}; }}
#ExamplePrompt:hover {{ border-color: {c.accent}; }}
#LinkButton {{ color: {c.accent}; border: none; padding: 4px 8px; }}
#LinkButton:hover {{ text-decoration: underline; }}
#Composer {{ border: 1px solid {c.border}; border-radius: 10px; padding: 6px; background: {c.base}; }}
#Composer:focus {{ border-color: {c.accent}; }}
#SendButton {{ background: {c.accent}; color: {c.accent_text}; border: none; border-radius: 8px;
    padding: 6px 16px; font-weight: 600; }}
#SendButton:disabled {{ background: {c.border}; color: {c.muted}; }}
#Transcript {{ border: none; background: {c.base}; }}
#ChatList QListWidget {{ border: none; background: {c.window}; }}
#ChatList QListWidget::item {{ padding: 6px 8px; border-radius: 6px; }}
#ChatList QListWidget::item:selected {{ background: {c.user_bubble}; color: {c.text}; }}
#ChatList QLineEdit {{ padding: 5px 8px; border: 1px solid {c.border}; border-radius: 6px; background: {c.base}; }}
"""


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
