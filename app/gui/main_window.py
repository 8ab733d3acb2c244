"""The main window: chats on the side; the header (model, device, Reasoning, Documents), the conversation (or the
welcome state of an empty chat) and the message box; speed in the status bar; keyboard shortcuts as menu actions."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication, QKeySequence, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.answer_limits import bounded, reload_changes
from app.app_settings import AppSettings
from app.engine import ChatEngine, GenerationSettings, split_think_switch
from app.engine.devices import available_devices
from app.gui.api_page import ApiPage, ApiSwitch
from app.gui.appearance import apply_language, apply_theme, is_dark
from app.gui.chat_list import ChatList
from app.gui.composer import Composer
from app.gui.docs_mode import DocsMode
from app.gui.gui_thread_gc import collect_on_gui_thread
from app.gui.header_bar import HeaderBar
from app.gui.icons import icon
from app.gui.markdown_render import MarkdownRenderer
from app.gui.mcp_page import McpPage
from app.gui.model_card import ModelCard, model_card
from app.gui.model_manager import ModelManager
from app.gui.privacy_page import PrivacyPage
from app.gui.settings_dialog import SettingsDialog
from app.gui.switch import Switch
from app.gui.tool_mode import ToolMode
from app.gui.transcript_html import MessageView
from app.gui.transcript_view import Transcript
from app.gui.welcome import WelcomePanel
from app.gui.workers import GenerationWorker, ModelLoader, Threads
from app.models.library import ModelInfo, list_models
from app.store import ChatStore, StoreError
from app.store.answer_recorder import AnswerRecorder
from export.log_file import log_dir
from export.manifest import read_manifest

RENDER_INTERVAL_MS = 50
log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    """Everything the user sees. All model work happens in workers; this class only wires and renders."""

    model_ready = Signal()
    answer_started = Signal(object)  # the GenerationWorker, before its thread starts
    answer_finished = Signal()

    def __init__(self, store: ChatStore, model_folder: Path | None, device: str = "CPU",
                 settings: GenerationSettings | None = None, app_settings: AppSettings | None = None) -> None:
        super().__init__()
        collect_on_gui_thread(QApplication.instance())  # before any worker thread starts (see gui_thread_gc)
        self.setWindowTitle("cpmdesk")
        self.resize(1100, 760)
        self.store = store
        self.app_settings = app_settings or AppSettings(device=device)
        # sampling follows the model (its defaults and the user's changes for it) unless the caller fixed it
        self._per_model = settings is None and app_settings is not None
        self.settings = settings or (self.app_settings.generation(model_folder) if app_settings
                                     else GenerationSettings())
        self.model_folder: Path | None = None
        self.engine: ChatEngine | None = None
        self.chat_id: int | None = None
        self.worker: GenerationWorker | None = None
        self._streaming: MessageView | None = None
        self._open_thinking: set[int] = set()
        self._editing: int | None = None
        self._dirty = False
        self._reload_after_answer = False  # Settings changed device/draft/context mid-answer
        self._unsaved: dict[int, tuple[MessageView, AnswerRecorder]] = {}  # answers the disk had no room for
        self.threads = Threads()
        self.models_dialog: ModelManager | None = None
        self.renderer = self._new_renderer()
        self.docs = DocsMode(self, store.path.parent / "docs.sqlite3")
        self.tools = ToolMode(self, store.path.parent / "mcp.json")
        self.api = ApiSwitch(store, self)  # `cpmdesk serve` in the window (Settings → API)
        self.api.status.connect(self.statusBar().showMessage)
        self._build()
        QGuiApplication.styleHints().colorSchemeChanged.connect(self.on_color_scheme)
        self._follows_scheme = True
        self._render_timer = QTimer(self, interval=RENDER_INTERVAL_MS)
        self._render_timer.timeout.connect(self._render_if_dirty)
        self.chats.refresh()
        ids = self.chats.ids()
        if ids:
            self.select_chat(ids[0])
        else:
            self._render()  # the welcome state
        if store.interrupted_on_open:
            self.statusBar().showMessage(f"{store.interrupted_on_open} answer(s) were interrupted when cpmdesk "
                                         "last closed; they are kept and marked.", 8000)
        if model_folder is not None:
            self.load_model(model_folder, device)

    # ---------------------------------------------------------------- layout

    def _build(self) -> None:
        self.chats = ChatList(self.store)
        self.chats.setObjectName("ChatList")
        self.chats.layout().setContentsMargins(10, 10, 6, 10)
        self.chats.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.chats.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.chats.selected.connect(self.select_chat)
        self.chats.new_requested.connect(self.new_chat)
        self.chats.deleted.connect(self._on_chat_deleted)
        self.transcript = Transcript(self.renderer)
        self.transcript.setObjectName("Transcript")
        self.transcript.document().setDocumentMargin(20)
        self.transcript.anchorClicked.connect(self._on_link)
        self.welcome = WelcomePanel()
        self.welcome.prompt_chosen.connect(self.use_prompt)
        self.welcome.documents_requested.connect(self.docs.open_dialog)
        self.welcome.models_requested.connect(self.open_models)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.transcript)
        self.pages.addWidget(self.welcome)
        self.composer = Composer()
        self.composer.setObjectName("Composer")
        self.composer.setMaximumHeight(80)
        self.composer.submitted.connect(self.send)
        self.think_toggle = Switch(self.tr("Reasoning"))
        self.header = HeaderBar(self.think_toggle, self.docs.toggle, self.tools.toggle)
        self.header.model_chosen.connect(self.switch_model)
        self.header.device_chosen.connect(self.choose_device)
        self.header.manage_models.connect(self.open_models)
        self.header.model_picker.about_to_show.connect(self.refresh_models)
        self.header.set_devices(available_devices(), self.app_settings.device)
        self.send_button = QPushButton(self.tr("Send"))
        self.send_button.setObjectName("SendButton")
        self.send_button.clicked.connect(self._send_or_stop)
        controls = QHBoxLayout()
        controls.setContentsMargins(16, 4, 16, 12)
        controls.addWidget(self.composer, 1)
        controls.addWidget(self.send_button, 0, Qt.AlignmentFlag.AlignBottom)
        right = QWidget()
        column = QVBoxLayout(right)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.header)
        column.addWidget(self.pages, 1)
        column.addLayout(controls)
        splitter = QSplitter()
        splitter.addWidget(self.chats)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([240, 860])
        self.setCentralWidget(splitter)
        self.model_label, self.speed_label = QLabel("Loading model…"), QLabel("")
        self.statusBar().addPermanentWidget(self.model_label)
        self.statusBar().addPermanentWidget(self.speed_label)
        self._build_actions()
        self._retranslate()
        self._restyle()
        self._set_ready(False)

    def _build_actions(self) -> None:
        """The menus; every keyboard shortcut is an action there, so the menus show it."""
        def action(triggered, *keys: str) -> QAction:
            made = QAction(self)
            made.triggered.connect(triggered)
            made.setShortcuts([QKeySequence(k) for k in keys])
            return made

        self.new_chat_action = action(lambda: self.new_chat(), "Ctrl+N")
        self.search_action = action(self.focus_search, "Ctrl+K", "Ctrl+F")
        self.focus_composer_action = action(self.focus_composer, "Ctrl+L", "/")
        self.regenerate_action = action(self.regenerate, "Ctrl+R")
        self.stop_action = action(self.stop, "Esc")
        self.stop_action.setEnabled(False)
        self.export_action = action(self._ask_export)
        self.settings_action = action(self.open_settings, "Ctrl+,")
        self.models_action = action(self.open_models)
        self.privacy_action = action(self.open_privacy)
        self.chat_menu = self.menuBar().addMenu("")
        for item in (self.new_chat_action, self.search_action, self.focus_composer_action, None,
                     self.regenerate_action, self.stop_action, None, self.export_action, self.models_action,
                     self.docs.action, self.docs.report_action, self.settings_action, self.privacy_action):
            self.chat_menu.addSeparator() if item is None else self.chat_menu.addAction(item)
        self.open_logs_action = action(self.open_log_folder)
        self.help_menu = self.menuBar().addMenu("")
        self.help_menu.addAction(self.open_logs_action)

    def _set_ready(self, ready: bool) -> None:
        self.composer.setEnabled(ready)
        self.send_button.setEnabled(ready)

    def focus_search(self) -> None:
        """Ctrl+K / Ctrl+F: type to search the chats."""
        self.chats.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.chats.search.selectAll()

    def focus_composer(self) -> None:
        """Ctrl+L or /: type a message."""
        self.composer.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def use_prompt(self, text: str) -> None:
        """An example prompt of the welcome state: into the message box, ready to edit or send."""
        self.composer.setPlainText(text)
        self.focus_composer()

    # ---------------------------------------------------------------- model

    def load_model(self, folder: Path, device: str = "CPU") -> None:
        """Load a model in the background; the window stays usable for reading chats meanwhile."""
        self._set_ready(False)
        self.model_folder = Path(folder)
        if self._per_model:
            self.settings = self.app_settings.generation(self.model_folder)
        self.model_label.setText(self.tr("Loading {0}…").format(folder.name))
        self.refresh_models(loading=True)
        self._loader = ModelLoader(folder, device, self.app_settings.draft(), greedy=self.settings.greedy,
                                   library_drafts=True, extra_dirs=self.app_settings.model_dirs,
                                   context=self.app_settings.context or None)
        self._loader.loaded.connect(self._on_model_loaded)
        self._loader.failed.connect(self._on_model_failed)
        self._loader_thread = self.threads.start(self._loader)

    def _on_model_loaded(self, engine: ChatEngine) -> None:
        self._finish_thread(self._loader_thread)
        self.engine = engine
        self._bound_answer_length()
        self._show_model()
        self.think_toggle.setEnabled(engine.supports_thinking)
        self.think_toggle.setToolTip(self._reasoning_tip())
        if not engine.supports_thinking:
            self.think_toggle.setChecked(False)
        self.refresh_models()
        self._set_ready(True)
        self.composer.setFocus()
        self.api.engine_changed(engine)
        self.model_ready.emit()

    def _show_model(self) -> None:
        """The status bar's model label: name, device and what the draft does now."""
        engine = self.engine
        self.model_label.setText(" · ".join(filter(None, (engine.name, engine.device, engine.draft_state))))
        self.model_label.setToolTip(engine.context_note or "")  # the context was reduced to fit in memory

    def _on_model_failed(self, message: str) -> None:
        self._finish_thread(self._loader_thread)
        self.model_label.setText("No model loaded")
        self.engine = None
        self.refresh_models()
        self.statusBar().showMessage(message)

    def refresh_models(self, loading: bool = False) -> list[ModelCard]:
        """The header's model list and the welcome card, from the model library (manifests only) and the engine."""
        models = self._library_models()
        current = self.model_folder.resolve() if self.model_folder is not None else None
        engine = self.engine if self.engine is not None and not loading else None
        cards = []
        for model in models:
            is_current = current is not None and model.folder.resolve() == current
            cards.append(model_card(model, bool(self.app_settings.use_draft),
                                    engine.draft_state if is_current and engine is not None else None,
                                    engine.context_tokens if is_current and engine is not None else None))
        self.header.set_models(cards, self.model_folder, loading)
        card = next((c for c in cards if current is not None and c.folder.resolve() == current), None)
        self.welcome.set_model(card, loading)
        return cards

    def _library_models(self) -> list[ModelInfo]:
        """The library's chat models, with the model in use first when the library does not hold it."""
        try:
            models = list_models(self.app_settings.model_dirs)
        except OSError as err:
            log.warning("listing the models failed: %s", err)
            models = []
        folder = self.model_folder
        if folder is not None and all(m.folder.resolve() != folder.resolve() for m in models):
            manifest = read_manifest(folder)
            if manifest is not None:
                models.insert(0, ModelInfo(folder, manifest, "added"))
        return models

    @staticmethod
    def _finish_thread(thread) -> None:
        """The worker has reported back: end its thread now, so nothing can delete it while it runs."""
        thread.quit()
        thread.wait()

    # ---------------------------------------------------------------- chats

    def new_chat(self) -> int:
        """Start an empty chat and show it (with the system prompt from Settings)."""
        self.chat_id = self.store.create_chat(system_prompt=self.app_settings.system_prompt,
                                              model=self.model_folder.name if self.model_folder else "")
        self.chats.refresh(select=self.chat_id)
        self._render()
        return self.chat_id

    def select_chat(self, chat_id: int) -> None:
        """Show a chat (ignored while an answer streams into another)."""
        if self.is_generating and chat_id != self.chat_id:
            self.chats.refresh(select=self.chat_id)
            return
        self.chat_id = chat_id
        self._editing = None
        self.chats.refresh(select=chat_id)
        self._render()

    def _on_chat_deleted(self, chat_id: int) -> None:
        if chat_id == self.chat_id:
            self.chat_id = None
            ids = self.chats.ids()
            if ids:
                self.select_chat(ids[0])
            else:
                self._render()

    # ---------------------------------------------------------------- sending

    @property
    def is_generating(self) -> bool:
        """An answer is streaming."""
        return self.worker is not None

    def _send_or_stop(self) -> None:
        if self.is_generating:
            self.stop()
        else:
            self.send()

    def send(self) -> None:
        """Send the message box's text (Enter)."""
        text = self.composer.toPlainText().strip()
        if not text or self.engine is None or self.is_generating:
            return
        try:
            self._save_unsaved()
            if self.chat_id is None:
                self.new_chat()
            if self._editing is not None:
                self.store.delete_messages_from(self.chat_id, self._editing)
                self._editing = None
            text, switch = split_think_switch(text)
            self.store.add_message(self.chat_id, "user", text)
            if self._title_is_default():
                self.store.rename_chat(self.chat_id, text.splitlines()[0][:48])
            self.composer.clear()
            self._warn_if_model_gone()
            self._generate(switch)
        except StoreError as err:  # disk full: the typed text stays in the box, saved chats stay as they are
            self.chats.refresh(select=self.chat_id)
            self._render()
            self.statusBar().showMessage(str(err))

    def _save_unsaved(self) -> None:
        for message_id, (_view, recorder) in list(self._unsaved.items()):
            if not recorder.retry():
                raise StoreError(recorder.save_error)
            del self._unsaved[message_id]

    def _warn_if_model_gone(self) -> None:
        if self.model_folder is not None and not (self.model_folder / "openvino_model.xml").is_file():
            self.statusBar().showMessage(self.tr("The model folder {0} was deleted or moved: answers come from the "
                                                 "copy in memory until cpmdesk restarts. Choose another model in "
                                                 "Models…").format(self.model_folder))

    def _title_is_default(self) -> bool:
        return any(c.id == self.chat_id and c.title == "New chat" for c in self.store.list_chats())

    def regenerate(self) -> None:
        """Answer the last user message again, replacing the last answer."""
        if self.is_generating or self.chat_id is None:
            return
        messages = self.store.messages(self.chat_id)
        if messages and messages[-1].role == "assistant":
            self.store.delete_messages_from(self.chat_id, messages[-1].id)
        if self.store.messages(self.chat_id):
            self._generate(None)

    def edit_message(self, message_id: int) -> None:
        """Put a user message back in the box; sending it replaces it and everything after it."""
        message = next((m for m in self.store.messages(self.chat_id) if m.id == message_id), None)
        if message is None or message.role != "user" or self.is_generating:
            return
        self._editing = message_id
        self.composer.setPlainText(message.content)
        self.composer.setFocus()

    def stop(self) -> None:
        """Stop the streaming answer; what was written is kept."""
        if self.worker is not None:
            self.worker.cancel.set()

    def _generate(self, switch: bool | None) -> None:
        think = switch if switch is not None else (self.think_toggle.isChecked()
                                                   if self.engine.supports_thinking else None)
        conversation = self.store.conversation(self.chat_id)
        self._bound_answer_length()
        if self.docs.enabled:
            worker = self.docs.worker(self.engine, self.chat_id, conversation, self.settings, think)
        elif self.tools.enabled:
            worker = self.tools.worker(self.engine, self.store, self.chat_id, conversation, self.settings, think)
            worker.round_started.connect(self._on_new_round)
            worker.tool_stored.connect(self._render)
        else:
            worker = GenerationWorker(self.engine, self.store, self.chat_id, conversation, self.settings, think)
        self.worker = worker
        self._streaming = MessageView(worker.message_id, "assistant", "", status="streaming", thinking_open=True)
        worker.delta.connect(self._on_delta)
        worker.finished.connect(self._on_finished)
        worker.failed.connect(self._on_failed)
        self.answer_started.emit(worker)
        self._generation_thread = self.threads.start(worker)
        self._show_generating(True)
        self.chats.refresh(select=self.chat_id)
        self._render()
        self._render_timer.start()

    def _on_delta(self, kind: str, text: str) -> None:
        view = self._streaming
        if view is None:
            return
        if kind == "reasoning":
            view.reasoning += text
        else:
            if view.thinking_open and view.reasoning:
                view.thinking_open = False  # collapse the Thinking section once the answer starts
            view.content += text
        self._dirty = True

    def _on_new_round(self, message_id: int) -> None:
        """Tool results went back to the model: its next answer streams into a new message."""
        self._streaming = MessageView(message_id, "assistant", "", status="streaming", thinking_open=True)
        self._render()

    def _keep_unsaved(self, status: str) -> None:
        """The answer could not be written (disk full): keep it on screen and save it before the next send."""
        recorder = self.worker.recorder
        if recorder.save_error and self._streaming is not None:
            self._streaming.status = status
            self._unsaved[self._streaming.id] = (self._streaming, recorder)
            self.statusBar().showMessage(recorder.save_error)

    def _on_finished(self, reply, thinking_s: float) -> None:
        self._keep_unsaved("stopped" if reply.stopped else "done")
        self._end_generation()
        self._show_model()
        self.speed_label.setText(f"{reply.tokens_per_second:.1f} tok/s · first token {reply.ttft_ms:.0f} ms"
                                 + (f" · {reply.draft.describe()}" if reply.draft else ""))
        if reply.dropped_messages:
            self.statusBar().showMessage(f"The {reply.dropped_messages} oldest messages did not fit the model's "
                                         "context and were left out of this answer.", 8000)
        self._apply_deferred()
        self.answer_finished.emit()

    def _on_failed(self, message: str) -> None:
        self._keep_unsaved("failed")
        self._end_generation()
        self._show_model()
        self.statusBar().showMessage(message)
        self._apply_deferred()
        self.answer_finished.emit()

    def _end_generation(self) -> None:
        self._finish_thread(self._generation_thread)
        self.worker = None
        self._streaming = None
        self._render_timer.stop()
        self._show_generating(False)
        self._render()

    def _show_generating(self, generating: bool) -> None:
        """Send becomes Stop (and Esc stops) while an answer streams."""
        self.send_button.setText(self.tr("Stop") if generating else self.tr("Send"))
        self.send_button.setAccessibleName(self.send_button.text())
        self.send_button.setIcon(icon("stop" if generating else "send",
                                      self.palette().color(QPalette.ColorRole.HighlightedText)))
        self.stop_action.setEnabled(generating)
        self.regenerate_action.setEnabled(not generating)

    def _apply_deferred(self) -> None:
        """Settings changed during the answer that need the model reloaded (device, draft, context): now."""
        if self._reload_after_answer:
            self._reload_after_answer = False
            self.statusBar().showMessage(self.tr("Applying the settings changed during the answer…"), 8000)
            if self.model_folder is not None:
                self.load_model(self.model_folder, self.app_settings.device)

    # ---------------------------------------------------------------- rendering

    def message_views(self) -> list[MessageView]:
        """The current chat as the transcript shows it (the streaming answer from memory)."""
        if self.chat_id is None:
            return []
        views = []
        for message in self.store.messages(self.chat_id):
            if message.tool_calls and not (message.content or message.reasoning):
                continue  # an answer that only called tools: its cards follow
            if self._streaming is not None and message.id == self._streaming.id:
                views.append(self._streaming)
                continue
            if message.id in self._unsaved:
                views.append(self._unsaved[message.id][0])
                continue
            thinking = message.metrics.get("thinking_s")
            views.append(MessageView(message.id, message.role, message.content, message.reasoning, message.status,
                                     thinking, message.id in self._open_thinking, message.metrics.get("sources"),
                                     message.metrics.get("note") or "", message.metrics.get("tool")))
        return views

    def _render_if_dirty(self) -> None:
        """A streaming frame: only the answer's block changes, from memory (no database read)."""
        if self._dirty and self._streaming is not None:
            self._dirty = False
            self.transcript.update_streaming(self._streaming)

    def _render(self) -> None:
        self._dirty = False
        views = self.message_views()
        self.pages.setCurrentWidget(self.transcript if views else self.welcome)  # an empty chat: the welcome state
        self.transcript.show_messages(views, self.chat_id)

    def _on_link(self, url: QUrl) -> None:
        action, _, arg = url.toString().partition(":")
        if action == "copy":
            code = self.transcript.code_block(arg)
            if code is not None:
                QGuiApplication.clipboard().setText(code)
        elif action == "copymsg":
            message = next((m for m in self.store.messages(self.chat_id) if m.id == int(arg)), None)
            if message is not None:
                QGuiApplication.clipboard().setText(message.content)
        elif action in ("think", "tool"):  # a Thinking section or a tool card opens and closes
            message_id = int(arg)
            if self._streaming is not None and self._streaming.id == message_id:
                self._streaming.thinking_open = not self._streaming.thinking_open
                self.transcript.update_streaming(self._streaming)
            else:
                self._open_thinking ^= {message_id}
                self._render()
        elif action == "regenerate":
            self.regenerate()
        elif action == "edit":
            self.edit_message(int(arg))
        elif action == "source":
            self.docs.open_source(self.store.messages(self.chat_id), arg)

    # ---------------------------------------------------------------- settings and models

    def open_settings(self) -> SettingsDialog:
        """Show the Settings dialog (non-modal); its OK applies and saves."""
        tools = McpPage(self.tools.config_path)
        tools.saved.connect(self.tools.reload)
        dialog = SettingsDialog(self.app_settings, available_devices(), self, model=self.model_folder,
                                context=self.engine.context_tokens if self.engine is not None else None,
                                pages=[(self.tr("Tools (MCP)"), tools), (self.tr("API"), ApiPage(self.api))])
        dialog.accepted.connect(lambda: self.apply_settings(dialog.result_settings()))
        dialog.privacy_requested.connect(self.open_privacy)
        dialog.show()
        return dialog

    def apply_settings(self, new: AppSettings) -> None:
        """Use and store new settings: sampling at once, device by reloading, theme and language live."""
        old, self.app_settings = self.app_settings, new
        self._per_model = True
        self.settings = new.generation(self.model_folder)
        self._bound_answer_length()
        app = QApplication.instance()
        if new.theme != old.theme:
            apply_theme(app, new.theme)
            self._restyle()
        if new.language != old.language:
            apply_language(app, new.language)
            self._retranslate()
            self.transcript.set_renderer(self.renderer)  # the transcript's labels in the new language
            self._render()
        self.header.set_devices(available_devices(), new.device)
        if reload_changes(old, new) and self.model_folder is not None:
            if self.is_generating:  # the answer keeps the model it started with; the change follows it
                self._reload_after_answer = True
                self.statusBar().showMessage(self.tr("Device, draft and context changes apply when this answer "
                                                     "ends."))
            else:
                self.load_model(self.model_folder, new.device)
        elif self.is_generating and new.generation(self.model_folder) != old.generation(self.model_folder):
            self.statusBar().showMessage(self.tr("The new settings apply from the next answer."), 8000)
        new.save(self.store)

    def _bound_answer_length(self) -> None:
        """Max new tokens within the loaded model's context (the status bar says when it was cut)."""
        context = self.engine.context_tokens if self.engine is not None else None
        fitted = bounded(self.settings, context)
        if fitted is not self.settings:
            self.statusBar().showMessage(self.tr("Max new tokens is {0}: the model's context is {1} tokens.")
                                         .format(fitted.max_new_tokens, context), 8000)
            self.settings = fitted

    def choose_device(self, device: str) -> None:
        """The header's device: like changing it in Settings (applied after a streaming answer)."""
        if device and device != self.app_settings.device:
            self.apply_settings(replace(self.app_settings, device=device))

    def on_color_scheme(self, scheme: Qt.ColorScheme) -> None:
        """The system switched between light and dark: follow it when the theme is "system"."""
        if self.app_settings.theme == "system":
            apply_theme(QApplication.instance(), "system", scheme)
            self._restyle()

    def _new_renderer(self) -> MarkdownRenderer:
        screen = self.screen()
        scale = screen.devicePixelRatio() if screen is not None else self.devicePixelRatioF()
        return MarkdownRenderer(dark=is_dark(QApplication.instance()), scale=scale)

    def _restyle(self) -> None:
        """Icons, code colours and formulas in the current palette (after a theme change)."""
        if self.renderer.dark != is_dark(QApplication.instance()):
            self.renderer = self._new_renderer()
            self.transcript.set_renderer(self.renderer)
            self._render()
        colour = self.palette().color(QPalette.ColorRole.WindowText)
        self.chats.new_button.setIcon(icon("new-chat", colour))
        self.new_chat_action.setIcon(icon("new-chat", colour))
        self.search_action.setIcon(icon("search", colour))
        self.regenerate_action.setIcon(icon("regenerate", colour))
        self.stop_action.setIcon(icon("stop", colour))
        self.settings_action.setIcon(icon("settings", colour))
        self.models_action.setIcon(icon("model", colour))
        self.docs.action.setIcon(icon("documents", colour))
        self.header.restyle()
        self.welcome.set_model(self.welcome._card, self.welcome._loading)
        self._show_generating(self.is_generating)

    def _retranslate(self) -> None:
        """Every text and accessible name in the current language."""
        self.setWindowTitle("cpmdesk")
        self.think_toggle.setToolTip(self._reasoning_tip())
        self.chats.new_button.setText(self.tr("New chat"))
        self.chats.rename_button.setText(self.tr("Rename"))
        self.chats.delete_button.setText(self.tr("Delete"))
        self.chats.search.setPlaceholderText(self.tr("Search chats"))
        for widget, name in ((self.chats.new_button, self.tr("New chat")), (self.chats.rename_button,
                             self.tr("Rename chat")), (self.chats.delete_button, self.tr("Delete chat")),
                             (self.chats.search, self.tr("Search chats")), (self.chats.list, self.tr("Chats")),
                             (self.transcript, self.tr("Conversation")), (self.composer, self.tr("Message")),
                             (self.pages, self.tr("Conversation"))):
            widget.setAccessibleName(name)
        self.composer.setPlaceholderText(self.tr("Message cpmdesk  (Enter sends, Shift+Enter for a new line, /think "
                                                 "or /no_think)"))
        for extension in self.menuBar().findChildren(QToolButton):  # the menu bar's » when its menus do not fit
            extension.setAccessibleName(self.tr("More menus"))
        self.chat_menu.setTitle(self.tr("&Chat"))
        self.help_menu.setTitle(self.tr("&Help"))
        for action, text in ((self.new_chat_action, self.tr("New chat")), (self.search_action, self.tr("Search chats")),
                             (self.focus_composer_action, self.tr("Focus the message box")),
                             (self.regenerate_action, self.tr("Regenerate the last answer")),
                             (self.stop_action, self.tr("Stop the answer")),
                             (self.export_action, self.tr("Export chat to Markdown…")),
                             (self.settings_action, self.tr("Settings…")), (self.models_action, self.tr("Models…")),
                             (self.privacy_action, self.tr("Privacy && data…")),
                             (self.open_logs_action, self.tr("Open log folder"))):
            action.setText(text)
        self.docs.action.setText(self.tr("Documents…"))
        self.docs.report_action.setText(self.tr("Write a report…"))
        self.docs.toggle.setToolTip(self.tr("Answer from your own documents, with numbered sources (Chat → "
                                            "Documents… to add files)"))
        self.header.retranslate()
        self.welcome.retranslate()
        self._show_generating(self.is_generating)

    def _reasoning_tip(self) -> str:
        if self.engine is None or self.engine.supports_thinking:
            return self.tr("Let the model reason before it answers")
        return self.tr("This model cannot switch reasoning on or off")

    def open_log_folder(self) -> bool:
        """Help → Open log folder: the folder of cpmdesk's log files in the system's file manager."""
        folder = log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        opened = QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
        if not opened:
            log.warning("no file manager opened %s", folder)
            self.statusBar().showMessage(self.tr("The log files are in {0}").format(folder))
        return opened

    def open_privacy(self) -> PrivacyPage:
        """Show Privacy & data (non-modal): what is stored where, and deleting it."""
        page = PrivacyPage(self.store.path.parent, self.store, self.model_folder,
                           lambda: self.is_generating or self.docs.is_indexing or self.docs.is_writing_report, self,
                           downloading=lambda: self.models_dialog is not None and self.models_dialog.controller.busy)
        page.about_to_delete.connect(self.docs.release)
        page.deleted.connect(self._on_data_deleted)
        page.show()
        return page

    def _on_data_deleted(self, key: str) -> None:
        if key == "chats":
            self.chat_id, self._unsaved = None, {}
            self.chats.refresh()
            self._render()
        elif key == "settings":
            self.app_settings = AppSettings()  # the defaults, in memory; nothing is stored until Settings' OK
            self.settings = self.app_settings.generation(self.model_folder)

    def open_models(self) -> ModelManager:
        """Show the model manager (non-modal; one, so a running download stays in view when it is opened again)."""
        manager = self.models_dialog
        if manager is None:
            manager = self.models_dialog = ModelManager(self.app_settings.model_dirs, self.model_folder, self)
            manager.model_chosen.connect(self.switch_model)
            manager.folder_added.connect(self._remember_folder)
            manager.folder_forgotten.connect(self._forget_folder)
            manager.state_shown.connect(lambda _state: self.refresh_models(self._loading))
        else:
            manager.controller.current = self.model_folder
            manager.controller.extra_dirs = list(self.app_settings.model_dirs)
            manager.controller.refresh()
        manager.show()
        manager.raise_()
        return manager

    def switch_model(self, folder: Path) -> None:
        """Load another model without restarting; remembered for the next start."""
        if self.is_generating:
            self.stop()
            self.threads.wait_all()
        self.load_model(Path(folder), self.app_settings.device)
        self.app_settings.model_folder = str(folder)
        self.app_settings.save(self.store)

    @property
    def _loading(self) -> bool:
        """A model is being loaded."""
        return self.model_folder is not None and (self.engine is None or self.engine.folder != self.model_folder)

    def _remember_folder(self, folder: str) -> None:
        if folder not in self.app_settings.model_dirs:
            self.app_settings.model_dirs.append(folder)
            self.app_settings.save(self.store)
        self.refresh_models(self._loading)

    def _forget_folder(self, folder: str) -> None:
        kept = [d for d in self.app_settings.model_dirs if Path(d).resolve() != Path(folder).resolve()]
        if kept != self.app_settings.model_dirs:
            self.app_settings.model_dirs = kept
            self.app_settings.save(self.store)
        self.refresh_models(self._loading)

    # ---------------------------------------------------------------- export

    def export_markdown(self, path: Path) -> None:
        """Write the current chat as Markdown."""
        lines = []
        for message in self.store.messages(self.chat_id) if self.chat_id is not None else []:
            role = {"user": "You", "tool": "Tool"}.get(message.role, "Assistant")
            lines.append(f"**{role}:**\n\n{message.content}\n")
        path.write_text("\n".join(lines), encoding="utf-8")

    def _ask_export(self) -> None:
        name, _ = QFileDialog.getSaveFileName(self, "Export chat", "chat.md", "Markdown (*.md)")
        if name:
            self.export_markdown(Path(name))

    def closeEvent(self, event) -> None:
        """Stop a streaming answer before closing (it is stored as 'stopped') and let the workers end."""
        if self.worker is not None:
            self.worker.cancel.set()
        if self._follows_scheme:  # a closed window no longer follows the system's colours
            self._follows_scheme = False
            QGuiApplication.styleHints().colorSchemeChanged.disconnect(self.on_color_scheme)
        self.docs.cancel()
        if self.models_dialog is not None:
            self.models_dialog.shutdown()
        self.threads.wait_all()
        self.tools.shutdown()
        self.api.shutdown()
        super().closeEvent(event)


