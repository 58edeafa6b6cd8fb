"""The ``rtctl`` command line: one module per command, each a thin view.

Commands parse, call the library and render. A failure is one clear line on
stderr, never a traceback; its exit code follows one policy for every command
(:mod:`rtctl.cli.exits`: 1 failed, 2 bad usage, 3 for ``rtctl call``'s JSON-RPC
errors).
"""

from __future__ import annotations

import importlib
from typing import Annotated

import typer
from typer.core import TyperCommand, TyperGroup

from rtctl import __version__
from rtctl.cli.exits import fail
from rtctl.exceptions import RtctlError

__all__ = ["app", "main"]

# Each command's module and the function (or Typer group) in it, in the order --help lists
# them. A module is imported when its command runs: `rtctl token` does not load the bench.
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("rtctl.cli.serve", "serve"),
    "token": ("rtctl.cli.token", "token"),
    "call": ("rtctl.cli.call", "call"),
    "simulate": ("rtctl.cli.simulate", "app"),
    "inspect": ("rtctl.cli.inspect", "inspect"),
    "bench": ("rtctl.cli.bench", "bench"),
    "profile": ("rtctl.cli.profile", "profile_command"),
    "tui": ("rtctl.cli.tui", "tui"),
    "top": ("rtctl.cli.top", "top"),
    "spec": ("rtctl.cli.spec", "spec"),
    "conformance": ("rtctl.cli.conformance", "app"),
}


class _Commands(TyperGroup):
    """The commands of :data:`COMMANDS`, each built from its module on first use."""

    def list_commands(self, ctx: object) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: object, name: str) -> TyperCommand | TyperGroup | None:
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name]
        target = getattr(importlib.import_module(module), attr)
        if isinstance(target, typer.Typer):
            group = typer.main.get_group(target)
            group.name = name
            return group
        single = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
        single.command(name)(target)
        command = typer.main.get_command(single)  # one command and no callback: that command
        assert isinstance(command, TyperCommand)
        return command


app = typer.Typer(
    cls=_Commands,
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


def main() -> None:
    try:
        app()
    except RtctlError as exc:
        fail(exc)
