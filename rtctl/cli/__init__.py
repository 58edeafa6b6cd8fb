"""The ``rtctl`` command line: one module per command, each a thin view.

Commands parse, call the library and render. A failure is one clear line on
stderr and exit code 1 (``rtctl call`` uses 3 for an error the server sent),
never a traceback.
"""

from __future__ import annotations

import sys

import typer

from rtctl.cli import bench, call, inspect, profile, serve, simulate, token, tui
from rtctl.exceptions import RtctlError

__all__ = ["app", "main"]

app = typer.Typer(
    name="rtctl",
    help="Run, break and measure a real-time multiplayer networking stack on one laptop.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    add_completion=False,
)
app.command("serve")(serve.serve)
app.command("token")(token.token)
app.command("call")(call.call)
app.add_typer(simulate.app, name="simulate")
app.command("inspect")(inspect.inspect)
app.command("bench")(bench.bench)
app.command("profile")(profile.profile_command)
app.command("tui")(tui.tui)


def fail(message: str) -> None:
    """Print one error line and exit 1."""
    print(f"rtctl: error: {message}", file=sys.stderr)
    raise SystemExit(1)


def main() -> None:
    try:
        app()
    except RtctlError as exc:
        fail(str(exc))
