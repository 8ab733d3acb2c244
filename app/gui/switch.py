"""A checkbox drawn as an on/off switch (the header's Reasoning and Documents); it is still a QCheckBox, so
keyboard, accessibility and `toggled` work as for any checkbox."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QCheckBox

TRACK_W, TRACK_H, GAP = 30, 16, 8


class Switch(QCheckBox):
    """A toggle switch with its text on the right."""

    def sizeHint(self) -> QSize:
        text = self.fontMetrics().horizontalAdvance(self.text())
        return QSize(TRACK_W + GAP + text + 4, max(TRACK_H + 6, self.fontMetrics().height() + 6))

    def hitButton(self, pos) -> bool:
        return self.rect().contains(pos)

    def paintEvent(self, _event: QPaintEvent) -> None:
        palette = self.palette()
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        top = (self.height() - TRACK_H) / 2
        track = QRectF(1, top, TRACK_W, TRACK_H)
        on = self.isChecked()
        enabled = self.isEnabled()
        colour = palette.color(QPalette.ColorRole.Highlight) if on else palette.color(QPalette.ColorRole.Mid)
        if not enabled:
            colour.setAlpha(90)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        painter.drawRoundedRect(track, TRACK_H / 2, TRACK_H / 2)
        knob = TRACK_H - 4
        x = track.right() - knob - 2 if on else track.left() + 2
        knob_role = QPalette.ColorRole.Base if enabled else QPalette.ColorRole.Button
        painter.setBrush(palette.color(knob_role))
        painter.drawEllipse(QRectF(x, top + 2, knob, knob))
        if self.hasFocus():
            focus = palette.color(QPalette.ColorRole.Highlight)
            painter.setPen(focus)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(track.adjusted(-1, -1, 1, 1), TRACK_H / 2 + 1, TRACK_H / 2 + 1)
        role = QPalette.ColorRole.WindowText
        painter.setPen(palette.color(QPalette.ColorGroup.Normal if enabled else QPalette.ColorGroup.Disabled, role))
        painter.drawText(QRectF(TRACK_W + GAP, 0, self.width() - TRACK_W - GAP, self.height()),
                         int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft), self.text())
        painter.end()
