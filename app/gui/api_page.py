"""Settings → API: serve the loaded model to other apps (`cpmdesk serve` in-process, 127.0.0.1 only), its port,
and the bearer token with Copy and Renew. ApiSwitch runs the server for the window; ApiPage edits it."""

from __future__ import annotations

import logging
import threading

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QCheckBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSpinBox, QWidget

from app.server.auth import load_token, new_token
from app.server.background import BackgroundServer
from app.server.cli import DEFAULT_PORT
from app.store import ChatStore

SETTING = "api_server"  # {"enabled": bool, "port": int} in the chat database's settings
log = logging.getLogger(__name__)


class ApiSwitch(QObject):
    """The window's API server: started when switched on and a model is loaded, restarted for a new model or
    token, stopped on close. Starting and stopping run off the UI thread; `status` says how it went."""

    status = Signal(str)

    def __init__(self, store: ChatStore, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.store = store
        saved = store.get_setting(SETTING, {}) or {}
        self.enabled = bool(saved.get("enabled", False))
        self.port = int(saved.get("port", DEFAULT_PORT))
        self.server = BackgroundServer()
        self.engine = None
        self.message = ""
        self.last_restart: threading.Thread | None = None
        self._lock = threading.Lock()  # one start/stop at a time
        self.status.connect(self._remember)

    def _remember(self, message: str) -> None:
        self.message = message

    def configure(self, enabled: bool, port: int) -> threading.Thread:
        """New settings from the page: saved, and the server started, restarted or stopped."""
        self.enabled, self.port = enabled, port
        self.store.set_setting(SETTING, {"enabled": enabled, "port": port})
        return self.restart()

    def engine_changed(self, engine) -> threading.Thread | None:
        """A model was loaded: serve it (when switched on)."""
        self.engine = engine
        return self.restart() if self.enabled else None

    def restart(self) -> threading.Thread:
        """Bring the server in line with the settings, in the background."""
        thread = self.last_restart = threading.Thread(target=self._apply, name="api-switch", daemon=True)
        thread.start()
        return thread

    def _apply(self) -> None:
        with self._lock:
            if not self.enabled:
                self.server.stop()
                self.status.emit("API server off")
                return
            if self.engine is None:
                self.status.emit("API server waits for a model to load")
                return
            try:
                url = self.server.start(self.engine, self.port, load_token()[0])
            except (OSError, RuntimeError) as err:
                log.warning("the API server could not start on port %s: %s", self.port, err)
                self.status.emit(f"API server could not start on port {self.port}: "
                                 f"{getattr(err, 'strerror', None) or err}")
                return
            self.status.emit(f"API server on {url}")

    def renew_token(self) -> str:
        """A new token (the old one stops working; a running server takes the new one)."""
        token = new_token()
        if self.server.running:
            self.restart()
        return token

    def shutdown(self) -> None:
        """Stop the server (window close)."""
        with self._lock:
            self.server.stop()


class ApiPage(QWidget):
    """The API settings; `apply()` (Settings' OK) hands them to the switch."""

    def __init__(self, switch: ApiSwitch, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.switch = switch
        self.enabled = QCheckBox(self.tr("Serve the model to other apps (OpenAI-compatible API)"))
        self.enabled.setChecked(switch.enabled)
        self.port = QSpinBox()
        self.port.setRange(1024, 65535)
        self.port.setValue(switch.port)
        self.token = QLineEdit(load_token()[0])
        self.token.setReadOnly(True)
        self.copy_button = QPushButton(self.tr("Copy"))
        self.copy_button.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.token.text()))
        self.renew_button = QPushButton(self.tr("Renew"))
        self.renew_button.clicked.connect(self._renew)
        self.state = QLabel(switch.message)
        self.state.setWordWrap(True)
        switch.status.connect(self.state.setText)
        token_row = QHBoxLayout()
        token_row.addWidget(self.token, 1)
        token_row.addWidget(self.copy_button)
        token_row.addWidget(self.renew_button)
        form = QFormLayout(self)
        form.addRow(self.enabled)
        form.addRow(self.tr("Port (on 127.0.0.1)"), self.port)
        form.addRow(self.tr("Token"), token_row)
        form.addRow(QLabel(self.tr("Other apps send it as 'Authorization: Bearer <token>'; the base URL is "
                                   "http://127.0.0.1:PORT/v1. Renew makes the old token stop working.")))
        form.addRow(self.state)

    def _renew(self) -> None:
        self.token.setText(self.switch.renew_token())

    def apply(self) -> threading.Thread:
        """Save the settings and start, restart or stop the server accordingly."""
        return self.switch.configure(self.enabled.isChecked(), self.port.value())
