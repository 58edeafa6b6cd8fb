"""``rtctl conformance``: check a gateway or a client against docs/protocol.md.

``server URL`` runs the spec's server-side checks against any gateway;
``client`` plays a scripted gateway that a client under test connects to.
Both print a pass/fail/skip table with the spec section of each check and
exit 0 only when nothing failed, so they fit a CI step.
"""

from __future__ import annotations

import typer

from rtctl.cli import conformance_client, conformance_server

__all__ = ["app"]

app = typer.Typer(
    help="Check a gateway (server) or a client (client) against the protocol spec "
         "(docs/protocol.md); exit 0 only when no check failed.",
    no_args_is_help=True,
)
app.command("server")(conformance_server.server)
app.command("client")(conformance_client.client)
