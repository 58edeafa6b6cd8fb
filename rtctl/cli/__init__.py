"""The ``rtctl`` command line: one module per command, each a thin view.

Commands parse, call the library and render. A failure is one clear line on
stderr, never a traceback; its exit code follows one policy for every command
(:mod:`rtctl.cli.exits`: 1 failed, 2 bad usage, 3 for ``rtctl call``'s JSON-RPC
errors).
"""

from __future__ import annotations

from typing import Annotated

import typer

from rtctl import __version__
from rtctl.cli import (
    bench,
    call,
    conformance,
    inspect,
    profile,
    serve,
    simulate,
    spec,
    token,
    top,
    tui,
)
from rtctl.cli.exits import fail
from rtctl.exceptions import RtctlError

__all__ = ["app", "main"]

app = typer.Typer(
    name="rtctl",
    help="Run, break and measure a real-time multiplayer networking stack on one laptop.\n\n"
         "Exit codes: 0 done; 1 it ran and failed (a server not there, a port in use); "
         "2 bad usage (a value or a file that cannot be right).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    add_completion=False,
)


def _print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"rtctl {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option(
        "--version", is_eager=True, callback=_print_version,
        help="Print rtctl's version and exit.")] = False) -> None:
    """Options of ``rtctl`` itself, before the command (the app's help= describes it)."""


app.command("serve")(serve.serve)
app.command("token")(token.token)
app.command("call")(call.call)
app.add_typer(simulate.app, name="simulate")
app.command("inspect")(inspect.inspect)
app.command("bench")(bench.bench)
app.command("profile")(profile.profile_command)
app.command("tui")(tui.tui)
app.command("top")(top.top)
app.command("spec")(spec.spec)
app.add_typer(conformance.app, name="conformance")


def main() -> None:
    try:
        app()
    except RtctlError as exc:
        fail(exc)
