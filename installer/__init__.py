"""Packaging: the PyInstaller bundle and the desktop installers (not part of the installed app)."""
