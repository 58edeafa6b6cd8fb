"""``rtctl conformance server``: check a gateway against docs/protocol.md, as a black box."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated

import typer
from rich.console import Console

from rtctl.cli.devsecret import dev_secret_path, existing_dev_secret
from rtctl.cli.options import positive_duration
from rtctl.client.endpoint import endpoint_url
from rtctl.conformance.results import as_json, exit_code, render
from rtctl.conformance.server import Target, run_checks, select_checks
from rtctl.exceptions import ConfigError
from rtctl.units import parse_size

__all__ = ["server"]


def server(
    url: Annotated[str, typer.Argument(help="The gateway: ws://host:port (/ws is appended) or "
                                            "its WebSocket URL with a path.")],
    token: Annotated[list[str] | None, typer.Option(
        "--token", help="A token to connect with; give two (alice, then bob) for the checks "
                        "that need two users. Minted with --jwt-secret when not given.")] = None,
    jwt_secret: Annotated[str | None, typer.Option(
        "--jwt-secret", envvar="RTCTL_JWT_SECRET", show_envvar=True,
        help="The gateway's HS256 secret: mints the users' tokens and the expired and "
             "wrongly signed ones it must refuse (those checks skip without it). Without "
             "it and --token, the dev secret of a dev-mode `rtctl serve` on this machine.",
    )] = None,
    timeout: Annotated[str, typer.Option(
        help="How long one wait of a check may take (a reply, a close, a ping).")] = "10s",
    ping_interval: Annotated[str, typer.Option(
        help="The gateway's ping interval (§7): heartbeat.server-ping fails when no ping "
             "comes within it plus --timeout.")] = "15s",
    max_message_size: Annotated[str, typer.Option(
        help="The gateway's message size limit: close.too-big sends one byte more.")] = "64KiB",
    state_room: Annotated[list[str] | None, typer.Option(
        "--state-room", help="A stateful room type to join for the state checks "
                             "(default: drift, then arena).")] = None,
    check: Annotated[list[str] | None, typer.Option(
        "--check", help="Run only this check (by id); repeat for more.")] = None,
    skip: Annotated[list[str] | None, typer.Option(
        "--skip", help="Leave this check out (by id); repeat for more.")] = None,
    as_json_: Annotated[bool, typer.Option(
        "--json", help="Print the results as one JSON object.")] = False,
) -> None:
    """Check that a gateway speaks rtctl's protocol (docs/protocol.md).

    The checks cover JSON-RPC edge cases, token carriers and refusals, close
    codes, heartbeats, presence, rooms, recovery and state frames; each cites
    the section of docs/protocol.md it tests. They talk raw WebSocket and
    JSON, so they test the server, not an SDK. A server that cannot be
    reached, refuses the given tokens or never answers in JSON-RPC fails the
    run within about one --timeout.

    Example: rtctl conformance server ws://127.0.0.1:8765 --jwt-secret "$SECRET"

    Exit codes: 0 no check failed (skips are fine); 1 a check failed; 2 bad usage.
    """
    tokens = tuple(token or ())
    secret_from = "--jwt-secret"
    if not tokens and not jwt_secret:
        jwt_secret = existing_dev_secret()  # as `rtctl call` does against a dev-mode gateway
        if jwt_secret is None:
            raise ConfigError("give --token (twice: alice and bob) or --jwt-secret to mint "
                              "tokens (no dev-mode `rtctl serve` has run on this machine)")
        # Said in every refusal: a gateway with a secret of its own refuses these tokens.
        secret_from = f"the dev secret in {dev_secret_path()} (no --token or --jwt-secret given)"
    size = parse_size(max_message_size)
    if size < 1:
        raise ConfigError(f"--max-message-size must be at least 1 byte, got {max_message_size!r}")
    target = Target(url=endpoint_url(url), tokens=tokens, jwt_secret=jwt_secret,
                    timeout=positive_duration(timeout, "--timeout"), max_message_size=size,
                    ping_interval=positive_duration(ping_interval, "--ping-interval"),
                    state_rooms=tuple(state_room or ("drift", "arena")), secret_from=secret_from)
    checks = select_checks(check or (), skip or ())
    started = time.monotonic()
    results = asyncio.run(run_checks(target, checks))
    if as_json_:
        typer.echo(json.dumps(as_json(results)))
    else:
        render(results, Console(), seconds=time.monotonic() - started)
    raise typer.Exit(exit_code(results))
