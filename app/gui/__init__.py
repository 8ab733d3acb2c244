"""The desktop window (PySide6): a thin layer over app.engine and app.store."""
