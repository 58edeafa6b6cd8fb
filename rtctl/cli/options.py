"""Options and small steps shared by several commands."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from rtctl.cli.devsecret import existing_dev_secret, load_or_create_dev_secret
from rtctl.exceptions import ConfigError
from rtctl.protocol import jsonrpc
from rtctl.tokens import issue_token
from rtctl.units import parse_duration

__all__ = ["DEV_USER", "JwtSecret", "dev_or_given_secret", "dev_token", "import_attr",
           "parse_params", "positive_duration"]

DEV_USER = "rtctl-cli"

JwtSecret = Annotated[str | None, typer.Option(
    "--jwt-secret", envvar="RTCTL_JWT_SECRET", show_envvar=True,
    help="HS256 shared secret. Without it, the dev secret in the state directory is used.")]


def dev_or_given_secret(secret: str | None) -> tuple[str, Path | None]:
    """The secret given, or the dev secret and where it lives (created on first use)."""
    if secret:
        return secret, None
    dev_secret, path, _ = load_or_create_dev_secret()
    return dev_secret, path


def dev_token(claims: Mapping[str, Any] | None = None) -> str | None:
    """A 5-minute token for :data:`DEV_USER` from the dev secret, if `rtctl serve` made one."""
    secret = existing_dev_secret()
    if secret is None:
        return None
    return issue_token(secret, sub=DEV_USER, ttl=300, claims=claims or {})


def import_attr(spec: str, option: str, example: str) -> Any:
    """Import ``MODULE:ATTR`` (as uvicorn does) for ``option``, or say clearly why not."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"{option} expects MODULE:ATTR (like {example}), got {spec!r}")
    if "" not in sys.path:
        sys.path.insert(0, "")  # the game's package in the current directory
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{option}: cannot import module {module_name!r}: {exc}") from None
    target: Any = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigError(
                f"{option}: module {module_name!r} has no attribute {attr!r}") from None
    return target


def parse_params(text: str | None) -> list[Any] | dict[str, Any] | None:
    """JSON-RPC params typed on the command line: a JSON array or object (§4.2)."""
    if text is None:
        return None
    try:
        params = jsonrpc.loads(text)
    except ValueError as exc:
        raise ConfigError(f"PARAMS_JSON is not JSON: {exc}") from None
    if not isinstance(params, list | dict):
        raise ConfigError("PARAMS_JSON must be a JSON array or object (JSON-RPC 2.0 §4.2)")
    return params


def positive_duration(text: str, flag: str) -> float:
    """Seconds for a flag where zero can only be a slip (a timeout, a lifetime)."""
    seconds = parse_duration(text)
    if seconds <= 0:
        raise ConfigError(f"{flag} must be above 0, got {text!r}")
    return seconds
