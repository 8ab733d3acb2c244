"""Start the desktop app: the window appears at once; the default model is built in the background if needed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox, QProgressDialog

from app.app_settings import AppSettings
from app.data_lock import DataFolderInUseError, DataFolderLock
from app.default_model import (
    DEFAULT_EXPORT_OPTIONS,
    DefaultModelError,
    default_model_dir,
    find_default_gguf,
    installed_default_model,
)
from app.export_runner import export_command
from app.gui.appearance import apply_language, apply_theme
from app.gui.error_report import report_store_errors
from app.gui.main_window import MainWindow
from app.paths import data_dir
from app.resources import is_bundled, resource_path
from app.store.recovery import open_chat_store
from app.store.schema import NewerSchemaError
from export.log_file import setup_logging
from export.manifest import read_manifest


class DefaultModelBuilder(QObject):
    """Runs the default model's export in a child process, reporting each step line."""

    progress = Signal(str)
    finished = Signal(object)  # the model folder
    failed = Signal(str)

    def run(self) -> None:
        if is_bundled():
            self.failed.emit("This installation has no built-in model; download or add one in Models…")
            return
        try:
            command = export_command(find_default_gguf(), default_model_dir(), *DEFAULT_EXPORT_OPTIONS)
        except DefaultModelError as err:
            self.failed.emit(str(err))
            return
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        last_error = ""
        for line in process.stdout:
            line = line.strip()
            if line.startswith("[") or line.startswith("error:"):
                self.progress.emit(line)
                last_error = line if line.startswith("error:") else last_error
        if process.wait() == 0 and read_manifest(default_model_dir()) is not None:
            self.finished.emit(default_model_dir())
        else:
            self.failed.emit(last_error or f"building the default model failed (exit {process.returncode})")


def build_window(model_folder: Path | None = None) -> MainWindow:
    """The main window on the user's data folder; builds the default model first when there is none."""
    store, notice = open_chat_store(data_dir() / "chats.sqlite3")
    settings = AppSettings.load(store)
    app = QApplication.instance()
    apply_theme(app, settings.theme)
    apply_language(app, settings.language)
    chosen = Path(settings.model_folder) if settings.model_folder else None
    if model_folder is None and chosen is not None and read_manifest(chosen) is not None:
        model_folder = chosen
    if model_folder is None:
        model_folder = installed_default_model()
    window = MainWindow(store, model_folder, settings.device, app_settings=settings)
    report_store_errors(window)
    if notice:  # a damaged chat database was replaced: say so where it cannot be missed (non-blocking)
        window.statusBar().showMessage(notice)
        window.notice_box = QMessageBox(QMessageBox.Icon.Warning, "cpmdesk", notice, parent=window)
        window.notice_box.open()
    if model_folder is None:
        _build_default_model(window)
    return window


def _build_default_model(window: MainWindow) -> None:
    dialog = QProgressDialog("Preparing the built-in model (first start only)…", "", 0, 0, window)
    dialog.setCancelButton(None)
    dialog.setWindowTitle("cpmdesk")
    builder = DefaultModelBuilder()
    builder.progress.connect(dialog.setLabelText)
    builder.finished.connect(lambda folder: (dialog.close(), window.load_model(folder)))
    builder.failed.connect(lambda message: (dialog.close(), window.statusBar().showMessage(message)))
    window._default_builder = builder  # keep it alive while it runs
    window.threads.start(builder)
    dialog.show()


def run_gui(model_folder: Path | None = None) -> int:
    """Open the window and run the Qt event loop; returns the exit code."""
    setup_logging("cpmdesk")
    app = QApplication.instance() or QApplication(sys.argv)
    app.setApplicationName("cpmdesk")
    app.setWindowIcon(QIcon(str(resource_path("cpmdesk.png"))))
    lock = DataFolderLock(data_dir())
    try:
        lock.acquire()
    except DataFolderInUseError as err:
        print(f"error: {err}", file=sys.stderr)
        if app.platformName() != "offscreen":
            QMessageBox.warning(None, "cpmdesk", str(err))
        return 1
    try:
        window = build_window(model_folder)
    except NewerSchemaError as err:
        print(f"error: {err}", file=sys.stderr)
        if app.platformName() != "offscreen":
            QMessageBox.critical(None, "cpmdesk", str(err))
        return 1
    window.show()
    code = app.exec()
    window.store.close()
    lock.release()
    return code
