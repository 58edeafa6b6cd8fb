"""Options and small steps shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rtctl.gateway.auth import load_or_create_dev_secret

__all__ = ["JwtSecret", "dev_or_given_secret"]

JwtSecret = Annotated[str | None, typer.Option(
    "--jwt-secret", envvar="RTCTL_JWT_SECRET", show_envvar=True,
    help="HS256 shared secret. Without it, the dev secret in the state directory is used.")]


def dev_or_given_secret(secret: str | None) -> tuple[str, Path | None]:
    """The secret given, or the dev secret and where it lives (created on first use)."""
    if secret:
        return secret, None
    dev_secret, path, _ = load_or_create_dev_secret()
    return dev_secret, path
