"""The app's icons: small SVGs in resources/icons drawn in the palette's text colour, rendered at every size a
screen may ask for (high-DPI screens get sharp pixels)."""

from __future__ import annotations

import logging
from functools import lru_cache

from PySide6.QtCore import QByteArray, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer

from app.resources import resource_path

log = logging.getLogger(__name__)
SIZES = (16, 20, 24, 32, 48, 64)  # logical 16-32 px at scales 1-2 (QIcon picks the nearest pixels)


def icon(name: str, color: QColor | str) -> QIcon:
    """`resources/icons/NAME.svg` in `color`; an empty icon (logged) when the file is missing."""
    return QIcon(_icon(name, QColor(color).name()))


@lru_cache(maxsize=256)
def _icon(name: str, color: str) -> QIcon:
    path = resource_path("icons", f"{name}.svg")
    try:
        svg = path.read_text(encoding="utf-8").replace("#COLOR", color)
    except OSError as err:
        log.warning("icon %s not found: %s", name, err)
        return QIcon()
    renderer = QSvgRenderer(QByteArray(svg.encode()))
    result = QIcon()
    for size in SIZES:
        result.addPixmap(_pixmap(renderer, size))
    return result


def _pixmap(renderer: QSvgRenderer, size: int) -> QPixmap:
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    return QPixmap.fromImage(image)
