"""Tools in the main window: the composer's Tools toggle, the MCP servers of mcp.json (one McpHub), answers that
may call tools, and the approval dialog for each call."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QMainWindow

from app.gui.approval_dialog import ApprovalDialog
from app.gui.switch import Switch
from app.gui.tool_worker import ToolChatWorker
from app.tools.mcp_client import McpHub
from app.tools.mcp_config import McpConfig, McpConfigError, load_config, remember_always
from app.tools.tool_loop import PendingCall

log = logging.getLogger(__name__)


class ToolMode(QObject):
    """Owns the window's MCP servers; nothing is started until an answer with tools needs them."""

    def __init__(self, window: QMainWindow, config_path: Path) -> None:
        super().__init__(window)
        self.window, self.config_path = window, config_path
        self.hub: McpHub | None = None
        self.dialog: ApprovalDialog | None = None
        self._worker: ToolChatWorker | None = None  # the answer asking (one at a time)
        self.toggle = Switch(window.tr("Tools"))
        self.toggle.setToolTip(window.tr("Let the model call the tools of your MCP servers (Settings → Tools); "
                                         "every call asks you first"))
        self.reload()

    def reload(self, config: McpConfig | None = None) -> None:
        """Take mcp.json again (or `config`, just saved): servers started before are stopped in the background."""
        if config is None:
            try:
                config = load_config(self.config_path)
            except McpConfigError as err:
                log.warning("%s", err)
                self.window.statusBar().showMessage(str(err))
                config = McpConfig()
        old, self.hub = self.hub, McpHub(config) if config.active() else None
        if old is not None:
            threading.Thread(target=old.close, name="mcp-close", daemon=True).start()
        self.toggle.setEnabled(self.hub is not None)
        self.toggle.setChecked(self.hub is not None)

    @property
    def enabled(self) -> bool:
        """Answers may call tools: servers are configured and the toggle is on."""
        return self.hub is not None and self.toggle.isChecked()

    def worker(self, engine, store, chat_id: int, conversation, settings, think) -> ToolChatWorker:
        """An answer that may call tools, wired to the approval dialog and the status bar."""
        worker = ToolChatWorker(engine, store, chat_id, conversation, settings, think, self.hub, self._remember)
        self._worker = worker
        worker.approval_needed.connect(self._on_approval_needed)  # queued: a method of this UI-thread object
        worker.notice.connect(self.window.statusBar().showMessage)
        worker.finished.connect(self._close_dialog)
        worker.failed.connect(self._close_dialog)
        return worker

    def _on_approval_needed(self, call: PendingCall) -> None:
        if self._worker is not None:
            self.ask(self._worker, call)

    def ask(self, worker: ToolChatWorker, call: PendingCall) -> ApprovalDialog:
        """Show the approval dialog (window-modal, not blocking); its answer goes to the worker."""
        dialog = self.dialog = ApprovalDialog(call, self.window)
        dialog.finished.connect(lambda _result: worker.decide(dialog.decision()))
        dialog.open()
        return dialog

    def _close_dialog(self, *_args) -> None:
        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.reject()

    def _remember(self, server: str, tool: str) -> None:
        if self.hub is not None:
            remember_always(self.hub.config, server, tool, self.config_path)

    def shutdown(self) -> None:
        """Stop the servers (window close)."""
        if self.hub is not None:
            self.hub.close()
            self.hub = None
