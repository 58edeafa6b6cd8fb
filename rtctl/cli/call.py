"""``rtctl call``: one JSON-RPC call from the shell."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer

from rtctl.cli.exits import EXIT_RPC_ERROR
from rtctl.cli.options import dev_token, parse_params, positive_duration
from rtctl.client.oneshot import call_once
from rtctl.exceptions import RpcError
from rtctl.protocol import jsonrpc

__all__ = ["call"]

def call(
    url: Annotated[str, typer.Argument(help="Gateway base URL, e.g. ws://127.0.0.1:8765 "
                                            "(a URL with a path is used as it is).")],
    method: Annotated[str, typer.Argument(help="Method name, e.g. sys.ping.")],
    params: Annotated[str | None, typer.Argument(
        metavar="[PARAMS_JSON]", help="Params as a JSON array or object, e.g. '[1, 2]'.")] = None,
    token: Annotated[str | None, typer.Option(
        envvar="RTCTL_TOKEN", show_envvar=True,
        help="JWT to connect with. Without it, a dev token is minted if `rtctl serve` "
             "runs in dev mode on this machine.")] = None,
    timeout: Annotated[str, typer.Option(help="Give up after ...")] = "10s",
) -> None:
    """Make one call and print its result as JSON.

    Exit codes: 0 result printed; 1 the call could not be made (unreachable,
    token refused, timeout); 2 bad usage (PARAMS_JSON that is not JSON, a URL
    that is not ws://, a bad --timeout); 3 the server answered with a JSON-RPC
    error, which is printed as JSON on stderr.
    """
    try:
        result = asyncio.run(call_once(url, method, parse_params(params),
                                       token=token or dev_token(),
                                       timeout=positive_duration(timeout, "--timeout")))
    except RpcError as exc:
        error = jsonrpc.error_object(exc.code, exc.message, exc.data)
        sys.stderr.write(jsonrpc.dumps(error).decode() + "\n")
        raise typer.Exit(EXIT_RPC_ERROR) from None
    typer.echo(jsonrpc.dumps(result).decode())
