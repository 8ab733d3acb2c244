"""Settings → Tools: the MCP servers of mcp.json (add, edit, remove, switch on/off), each server's tools with a
checkbox, and the per-call timeout. Listing tools starts the servers, off the UI thread. `apply()` (Settings' OK)
writes mcp.json."""

from __future__ import annotations

import copy
import dataclasses
import logging
import shlex
import threading
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.tools.mcp_client import McpHub, ToolInfo
from app.tools.mcp_config import McpConfig, McpConfigError, ServerConfig, load_config, save_config

log = logging.getLogger(__name__)


class McpPage(QWidget):
    """Edits a copy of mcp.json; `saved` carries it after apply()."""

    saved = Signal(object)  # McpConfig
    tools_listed = Signal(object, object)  # {server: [ToolInfo]}, {server: error}

    def __init__(self, path: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path = path
        try:
            self.config = load_config(path)
            problem = ""
        except McpConfigError as err:
            log.warning("%s", err)
            self.config, problem = McpConfig(), str(err)
        self.tools: dict[str, list[ToolInfo]] = {}
        self.errors: dict[str, str] = {}
        self.listing: threading.Thread | None = None
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels([self.tr("Server / tool"), self.tr("Details")])
        self.tree.itemChanged.connect(self._on_item_changed)
        self.add_button = QPushButton(self.tr("Add…"))
        self.edit_button = QPushButton(self.tr("Edit…"))
        self.remove_button = QPushButton(self.tr("Remove"))
        self.list_button = QPushButton(self.tr("List tools"))
        self.list_button.setToolTip(self.tr("Start the servers and ask them for their tools"))
        self.add_button.clicked.connect(self.add_server)
        self.edit_button.clicked.connect(self.edit_server)
        self.remove_button.clicked.connect(self.remove_server)
        self.list_button.clicked.connect(self.list_tools)
        self.tools_listed.connect(self._on_tools_listed)
        self.note = QLabel(problem or self.tr("Servers from {0}. Every tool call asks you first.").format(path))
        self.note.setWordWrap(True)
        buttons = QHBoxLayout()
        for button in (self.add_button, self.edit_button, self.remove_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.list_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addWidget(self.tree, 1)
        layout.addLayout(buttons)
        self.refresh()

    # ---------------------------------------------------------------- the tree

    def refresh(self) -> None:
        """Show the servers and the tools known for them."""
        self.tree.blockSignals(True)
        self.tree.clear()
        for server in self.config.servers.values():
            item = QTreeWidgetItem([server.name, self._details(server)])
            item.setData(0, Qt.ItemDataRole.UserRole, (server.name, None))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(0, Qt.CheckState.Unchecked if server.disabled else Qt.CheckState.Checked)
            for tool in self.tools.get(server.name, []):
                child = QTreeWidgetItem([tool.name, tool.description.splitlines()[0] if tool.description else ""])
                child.setData(0, Qt.ItemDataRole.UserRole, (server.name, tool.name))
                child.setFlags(child.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                child.setCheckState(0, Qt.CheckState.Checked if server.tool_enabled(tool.name)
                                    else Qt.CheckState.Unchecked)
                item.addChild(child)
            self.tree.addTopLevelItem(item)
            item.setExpanded(True)
        self.tree.blockSignals(False)

    def _details(self, server: ServerConfig) -> str:
        if server.name in self.errors:
            return self.errors[server.name].splitlines()[0]
        where = server.url or " ".join(shlex.quote(p) for p in [server.command, *server.args])
        return f"{where} · {server.timeout:g} s per call"

    def _on_item_changed(self, item: QTreeWidgetItem, _column: int) -> None:
        server_name, tool = item.data(0, Qt.ItemDataRole.UserRole)
        server = self.config.servers[server_name]
        on = item.checkState(0) == Qt.CheckState.Checked
        if tool is None:
            server.disabled = not on
        elif on:
            server.disabled_tools = [t for t in server.disabled_tools if t != tool]
        elif tool not in server.disabled_tools:
            server.disabled_tools.append(tool)

    def selected_server(self) -> str | None:
        """The name of the server selected (or of the selected tool's server)."""
        item = self.tree.currentItem()
        return item.data(0, Qt.ItemDataRole.UserRole)[0] if item is not None else None

    # ---------------------------------------------------------------- servers

    def add_server(self) -> ServerDialog:
        """Ask for a new server (non-blocking dialog)."""
        dialog = ServerDialog(None, set(self.config.servers), self)
        dialog.accepted.connect(lambda: self.put_server(dialog.server()))
        dialog.open()
        return dialog

    def edit_server(self) -> ServerDialog | None:
        """Edit the selected server."""
        name = self.selected_server()
        if name is None:
            return None
        dialog = ServerDialog(self.config.servers[name], set(self.config.servers) - {name}, self)
        dialog.accepted.connect(lambda: self.put_server(dialog.server(), replaces=name))
        dialog.open()
        return dialog

    def put_server(self, server: ServerConfig, replaces: str | None = None) -> None:
        """Add `server`, or put it in the place of `replaces` (keeping the order)."""
        servers = {}
        for name, old in self.config.servers.items():
            servers[server.name if name == replaces else name] = server if name == replaces else old
        if replaces is None:
            servers[server.name] = server
        self.config.servers = servers
        self.tools.pop(replaces or server.name, None)
        self.errors.pop(replaces or server.name, None)
        self.refresh()

    def remove_server(self) -> None:
        """Remove the selected server."""
        name = self.selected_server()
        if name is not None:
            del self.config.servers[name]
            self.refresh()

    # ---------------------------------------------------------------- tools

    def list_tools(self) -> threading.Thread:
        """Start the servers switched on and list their tools, in the background."""
        config = copy.deepcopy(self.config)
        self.list_button.setEnabled(False)
        self.note.setText(self.tr("Asking the servers for their tools…"))

        def work() -> None:
            hub = McpHub(config)
            try:
                tools, errors = hub.all_tools()
            finally:
                hub.close()
            found: dict[str, list[ToolInfo]] = {}
            for tool in tools:
                found.setdefault(tool.server, []).append(tool)
            self.tools_listed.emit(found, errors)

        self.listing = threading.Thread(target=work, name="mcp-list-tools", daemon=True)
        self.listing.start()
        return self.listing

    def _on_tools_listed(self, tools: dict, errors: dict) -> None:
        self.tools, self.errors = tools, errors
        self.list_button.setEnabled(True)
        self.note.setText(self.tr("{0} tools from {1} servers; {2} could not be reached.")
                          .format(sum(len(t) for t in tools.values()), len(tools), len(errors)) if errors else
                          self.tr("{0} tools from {1} servers.").format(sum(len(t) for t in tools.values()),
                                                                        len(tools)))
        self.refresh()

    def apply(self) -> None:
        """Write mcp.json and announce it."""
        try:
            save_config(self.config, self.path)
        except OSError as err:
            log.warning("cannot write %s", self.path, exc_info=True)
            QMessageBox.warning(self, self.tr("Tools"), self.tr("Cannot write {0}: {1}").format(self.path, err))
            return
        self.saved.emit(self.config)


class ServerDialog(QDialog):
    """One server's fields: a command (stdio) or a URL (streamable HTTP), its environment and the call timeout."""

    def __init__(self, server: ServerConfig | None, taken: set[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("MCP server"))
        self._base, self._taken = server or ServerConfig(""), taken
        base = self._base
        self.name = QLineEdit(base.name)
        self.kind = QComboBox()
        self.kind.addItem(self.tr("Command (stdio)"), "stdio")
        self.kind.addItem(self.tr("URL (streamable HTTP)"), "http")
        self.kind.setCurrentIndex(1 if base.url else 0)
        self.command = QLineEdit(shlex.join([base.command, *base.args]) if base.command else "")
        self.command.setPlaceholderText("uvx mcp-server-time --local-timezone UTC")
        self.env = QPlainTextEdit("\n".join(f"{k}={v}" for k, v in base.env.items()))
        self.env.setPlaceholderText("KEY=value, one a line")
        self.url = QLineEdit(base.url)
        self.url.setPlaceholderText("http://127.0.0.1:8000/mcp")
        self.timeout = QDoubleSpinBox()
        self.timeout.setRange(1, 3600)
        self.timeout.setValue(base.timeout)
        self.timeout.setSuffix(" s")
        self.problem = QLabel()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._check)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow(self.tr("Name"), self.name)
        form.addRow(self.tr("Kind"), self.kind)
        form.addRow(self.tr("Command"), self.command)
        form.addRow(self.tr("Environment"), self.env)
        form.addRow(self.tr("URL"), self.url)
        form.addRow(self.tr("Timeout per call"), self.timeout)
        form.addRow(self.problem)
        form.addRow(buttons)

    def server(self) -> ServerConfig:
        """The server as edited (what the form does not show, such as alwaysAllow, is kept)."""
        stdio = self.kind.currentData() == "stdio"
        try:
            parts = shlex.split(self.command.text()) if stdio else []
        except ValueError:
            parts = []
        env = dict(line.split("=", 1) for line in self.env.toPlainText().splitlines() if "=" in line)
        return dataclasses.replace(self._base, name=self.name.text().strip(), command=parts[0] if parts else "",
                            args=parts[1:], env={k.strip(): v for k, v in env.items()} if stdio else {},
                            url="" if stdio else self.url.text().strip(), timeout=self.timeout.value())

    def _check(self) -> None:
        server = self.server()
        if not server.name or server.name in self._taken:
            problem = self.tr("Give the server a name of its own")
        else:
            problem = server.problem()
        if problem:
            self.problem.setText(problem)
            return
        self.accept()
