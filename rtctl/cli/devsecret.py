"""The dev secret: a random HS256 key in the user's state directory, for local play.

With no key configured, ``rtctl serve`` runs in dev mode and verifies tokens
with this secret, and ``rtctl token``, ``rtctl call``, ``rtctl bench`` and the
other commands sign with it, so they agree without any setup. The state
directory follows the XDG Base Directory specification (``$XDG_STATE_HOME``),
unless ``$RTCTL_STATE_DIR`` names another. Only the command line reads these
environment variables; the gateway and the libraries are given a secret.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path

from rtctl.exceptions import ConfigError

__all__ = ["dev_secret_path", "existing_dev_secret", "load_or_create_dev_secret", "state_dir"]


def state_dir() -> Path:
    """``$RTCTL_STATE_DIR``, else ``$XDG_STATE_HOME/rtctl``, else ``~/.local/state/rtctl``."""
    override = os.environ.get("RTCTL_STATE_DIR")
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_STATE_HOME")
    # The XDG Base Directory spec says relative paths are invalid and must be ignored.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "state"
    return base / "rtctl"


def dev_secret_path() -> Path:
    """Where the local development HS256 secret lives."""
    return state_dir() / "dev-secret"


def load_or_create_dev_secret() -> tuple[str, Path, bool]:
    """Return ``(secret, path, created)``, making a 0600 secret file on first use."""
    path = dev_secret_path()
    existing = _read_secret(path)
    if existing is not None:
        return existing, path, False
    secret = secrets.token_urlsafe(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".dev-secret.")
        try:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(secret + "\n")
            os.chmod(tmp, 0o600)
            try:
                os.link(tmp, path)  # atomic: never exposes a half-written file
            except FileExistsError:
                existing = _read_secret(path)  # another rtctl process got there first
                if existing is not None:
                    return existing, path, False
                os.replace(tmp, path)  # the existing file was empty
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    except OSError as exc:
        raise ConfigError(f"cannot create the dev secret at {path}: {exc.strerror}") from None
    return secret, path, True


def existing_dev_secret() -> str | None:
    """The dev secret if ``rtctl serve`` has made one, else None; a missing file stays missing.

    Client commands (``call``, ``bench`` ...) sign with it only when a dev-mode
    gateway may be checking it; a fresh secret no gateway knows would only
    trade the gateway's clear "no token" refusal for a bad signature.
    """
    if not dev_secret_path().exists():
        return None
    return load_or_create_dev_secret()[0]


def _read_secret(path: Path) -> str | None:
    """The secret in ``path``, or None when the file is missing or blank."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "it is not text"
        raise ConfigError(f"cannot read the dev secret at {path}: {why}") from None
    return text or None
