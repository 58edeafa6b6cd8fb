"""``rtctl conformance client``: check a client SDK against docs/protocol.md with a scripted
gateway on loopback and a driver around the SDK (docs/conformance.md)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.console import Console

from rtctl.conformance.results import as_json, exit_code, render
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
    timeout: Annotated[float, typer.Option(
        help="Seconds any one expected thing may take (a connection, a call, a report).",
        min=0.1)] = 10.0,
    as_json_: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")]
    = False,
    scenario: Annotated[list[str] | None, typer.Option(
        help="Play only this scenario (repeatable); default all.")] = None,
) -> None:
    """Run the driver given after `--` against a scripted gateway and check what it does.

    The driver gets RTCTL_URL and RTCTL_TOKEN_URL in its environment; without one, start
    a driver by hand with the environment printed. Exits 1 if any check failed.
    """
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
            err.print("start the driver with that environment", highlight=False)

    results = asyncio.run(run_scenarios(scenarios, command=command, timeout=timeout,
                                        host=host, port=port, announce=announce))
    if as_json_:
        typer.echo(json.dumps(as_json(results), ensure_ascii=False))
    else:
        render(results, console)
    raise typer.Exit(exit_code(results))
