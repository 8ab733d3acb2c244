"""Asks the user about one tool call: its tool, server and arguments; Allow once, Always for this tool, or Deny."""

from __future__ import annotations

import html
import json

from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout

from app.tools.tool_loop import Decision, PendingCall


class ApprovalDialog(QDialog):
    """Window-modal; `decision()` after it closes (closing it any other way denies the call)."""

    def __init__(self, call: PendingCall, parent=None) -> None:
        super().__init__(parent)
        self.call = call
        self._decision = Decision.DENY
        self.setWindowTitle(self.tr("Run a tool?"))
        self.question = QLabel(self.tr("The model wants to run <b>{0}</b> from the MCP server <b>{1}</b> with these "
                                       "arguments:").format(html.escape(call.tool), html.escape(call.server)))
        self.question.setWordWrap(True)
        self.arguments = QPlainTextEdit(json.dumps(call.arguments, indent=2, ensure_ascii=False))
        self.arguments.setReadOnly(True)
        self.allow_button = QPushButton(self.tr("Allow once"))
        self.always_button = QPushButton(self.tr("Always for this tool"))
        self.deny_button = QPushButton(self.tr("Deny"))
        self.deny_button.setDefault(True)  # Enter never runs a tool by accident
        self.allow_button.clicked.connect(lambda: self._choose(Decision.ALLOW_ONCE))
        self.always_button.clicked.connect(lambda: self._choose(Decision.ALWAYS))
        self.deny_button.clicked.connect(lambda: self._choose(Decision.DENY))
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for button in (self.allow_button, self.always_button, self.deny_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.question)
        layout.addWidget(self.arguments, 1)
        layout.addLayout(buttons)
        self.resize(520, 300)

    def _choose(self, decision: Decision) -> None:
        self._decision = decision
        self.accept() if decision is not Decision.DENY else self.reject()

    def decision(self) -> Decision:
        """What the user chose (Deny until a button says otherwise)."""
        return self._decision
