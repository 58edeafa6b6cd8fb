"""How a command ends: one exit-code policy for every command, and the one line that says why.

====  =================================================================================
code  meaning
====  =================================================================================
0     done
1     the command ran and failed: a server not there, a port in use, a run with nothing
      completed, a threshold missed
2     bad usage: a value that cannot be right, a file named on the command line that is
      missing or does not parse (the parser's own usage errors exit 2 too, as in click)
3     ``rtctl call`` only: the server answered with a JSON-RPC error
====  =================================================================================

Library code raises :class:`~rtctl.exceptions.ConfigError` for bad input and
other :class:`~rtctl.exceptions.RtctlError` subclasses for failures; a command
whose own step fails raises :class:`CommandFailed`. :func:`exit_code` maps them,
so a command never picks a number itself.
"""

from __future__ import annotations

import sys
from typing import NoReturn

from rtctl.exceptions import ConfigError, RtctlError

__all__ = ["EXIT_FAILURE", "EXIT_RPC_ERROR", "EXIT_USAGE", "CommandFailed",
           "exit_code", "fail"]

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_RPC_ERROR = 3


class CommandFailed(RtctlError):
    """The command's input was fine but it could not do its work (exit 1)."""


def exit_code(error: RtctlError) -> int:
    """2 for bad input (:class:`ConfigError`), 1 for anything else that went wrong."""
    return EXIT_USAGE if isinstance(error, ConfigError) else EXIT_FAILURE


def fail(error: RtctlError) -> NoReturn:
    """Print ``rtctl: error: …`` as one line on stderr and exit with the error's code."""
    print(f"rtctl: error: {error}", file=sys.stderr)
    raise SystemExit(exit_code(error))
