"""``rtctl conformance client``: check a client SDK against docs/protocol.md with a scripted
gateway on loopback and a driver around the SDK (docs/conformance.md)."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from typing import Annotated

import typer
from rich.console import Console

from rtctl.cli.options import positive_duration
from rtctl.conformance.results import Result, as_json, exit_code, render
from rtctl.conformance.scripted import ScriptedGateway
from rtctl.conformance.scripted_run import run_scenarios, select
from rtctl.exceptions import ConfigError

__all__ = ["client"]


def client(
    command: Annotated[list[str] | None, typer.Argument(
        help="The driver to run, after `--` (e.g. -- python -m rtctl.conformance.driver).",
        show_default=False)] = None,
    host: Annotated[str, typer.Option(help="Address the scripted gateway listens on.")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Its port; 0 picks a free one.", min=0, max=65535)]
    = 0,
    timeout: Annotated[str, typer.Option(
        help="How long any one expected thing may take (a connection, a call, a report), "
             "as `10s` or `500ms`.")] = "10s",
    wait: Annotated[str, typer.Option(
        help="Without a command: how long each run waits for the driver you start by hand "
             "to connect.")] = "5m",
    as_json_: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")]
    = False,
    scenario: Annotated[list[str] | None, typer.Option(
        help="Play only this scenario (repeatable); default all.")] = None,
) -> None:
    """Check a client SDK: run its driver against a scripted gateway.

    The scripted gateway listens on loopback and plays the scenarios of
    docs/conformance.md (pings, errors, closes, drops, replay, state) against
    the driver given after `--`, a small program around the SDK under test;
    each check cites the section of docs/protocol.md it tests. The driver
    gets RTCTL_URL and RTCTL_TOKEN_URL in its environment; without one, the
    command prints them and waits up to --wait for a driver started by hand
    (once per run). What the driver prints goes to standard error, so --json
    stays parseable. Ctrl-C or SIGTERM ends the driver too.

    Example: rtctl conformance client -- python -m rtctl.conformance.driver

    Exit codes: 0 no check failed (skips are fine); 1 a check failed; 2 bad
    usage; 130 Ctrl-C; 143 SIGTERM.
    """
    each = positive_duration(timeout, "--timeout")
    by_hand = positive_duration(wait, "--wait")
    try:
        scenarios = select(scenario or [])
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    command = command or []
    console = Console()
    err = Console(stderr=True)

    def announce(gw: ScriptedGateway) -> None:
        err.print(f"scripted gateway: RTCTL_URL={gw.url} RTCTL_TOKEN_URL={gw.token_url}",
                  highlight=False)
        if not command:
            err.print(f"start the driver with that environment (waiting {wait} for it)",
                      highlight=False)

    async def play() -> list[Result]:
        # SIGTERM cancels the run as Ctrl-C does, so the driver is ended either way.
        loop, task = asyncio.get_running_loop(), asyncio.current_task()
        assert task is not None
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            return await run_scenarios(scenarios, command=command, timeout=each,
                                       first_wait=by_hand, host=host, port=port,
                                       announce=announce)
        finally:
            loop.remove_signal_handler(signal.SIGTERM)

    started = time.monotonic()
    try:
        results = asyncio.run(play())
    except KeyboardInterrupt:  # the shell's convention: 128 + the signal's number
        raise typer.Exit(128 + signal.SIGINT) from None
    except asyncio.CancelledError:
        raise typer.Exit(128 + signal.SIGTERM) from None
    if as_json_:
        typer.echo(json.dumps(as_json(results), ensure_ascii=False))
    else:
        render(results, console, seconds=time.monotonic() - started)
    raise typer.Exit(exit_code(results))
