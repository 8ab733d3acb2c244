"""The API's bearer token: made on first use, kept in the data folder readable by the user alone, renewable."""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import stat
from pathlib import Path

from app.paths import data_dir

TOKEN_FILE = "api_token"
log = logging.getLogger(__name__)


def token_path() -> Path:
    """Where the token is kept."""
    return data_dir() / TOKEN_FILE


def new_token(path: Path | None = None) -> str:
    """Make a new token and store it (mode 0600, replacing any old one atomically); returns it."""
    path = path or token_path()
    token = "cpm-" + secrets.token_urlsafe(32)
    scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(token + "\n")
        os.chmod(scratch, 0o600)  # in case the file already existed with other bits
        os.replace(scratch, path)
    except OSError:
        scratch.unlink(missing_ok=True)
        raise
    return token


def load_token(path: Path | None = None) -> tuple[str, bool]:
    """The stored token, made first when there is none (or it is empty); also whether it was just made.

    A token file that others can read is narrowed to 0600, and that is logged."""
    path = path or token_path()
    if path.is_file():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077 and os.name == "posix":
            log.warning("%s was readable by others (mode %o); setting it to 0600", path, mode)
            os.chmod(path, 0o600)
        token = path.read_text(encoding="ascii").strip()
        if token:
            return token, False
        log.warning("%s is empty; making a new token", path)
    return new_token(path), True


def token_matches(header: str | None, token: str) -> bool:
    """Whether an Authorization header carries `token` as a bearer token (compared in constant time)."""
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())
