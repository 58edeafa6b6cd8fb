"""``rtctl spec``: the protocol a served gateway speaks, described from its code.

The default prints the Markdown reference (docs/protocol.md §4-§6's generated
parts: every method, notification, error code and close code); ``--openrpc``
prints the OpenRPC 1.3.2 document instead. With ``--router`` (and
``--room-type``), as given to ``rtctl serve``, the game's own methods are in it:
a game documents its API with this.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from rtctl.cli.serve import load_room_types, load_router
from rtctl.exceptions import ConfigError
from rtctl.spec import openrpc as description
from rtctl.spec.markdown import regions
from rtctl.spec.served import served_router

__all__ = ["spec"]

_HEADINGS = {"methods": "## 4. Methods", "notifications": "## 5. Notifications",
             "errors": "### 6.1 JSON-RPC error codes", "closes": "### 6.2 Close codes"}


def spec(
    openrpc: Annotated[bool, typer.Option(
        "--openrpc", help="Print the OpenRPC 1.3.2 document (JSON) instead of Markdown.")] = False,
    router: Annotated[str | None, typer.Option(
        help="Your game's methods, as for `rtctl serve`: MODULE:ATTR naming an rtctl "
             "Router.")] = None,
    room_type: Annotated[list[str] | None, typer.Option(
        "--room-type", help="A stateful room type, repeatable, as for `rtctl serve`: "
        "NAME=MODULE:ATTR or a built-in type (drift, arena).")] = None,
) -> None:
    """Describe the methods and notifications a gateway serves (Markdown or OpenRPC)."""
    game = load_router(router) if router is not None else None
    try:  # a game method clashing with a built-in one, or one the spec cannot describe
        document = description.openrpc(served_router(
            game, room_types=load_room_types(room_type or [])))
    except ValueError as exc:  # (SpecError is one)
        raise ConfigError(f"--router: {exc}") from None
    if openrpc:
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    rendered = regions(document)
    typer.echo("\n\n".join(f"{_HEADINGS[name]}\n\n{body}" for name, body in rendered.items()))
