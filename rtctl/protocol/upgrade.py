"""What a client and the gateway agree on at the WebSocket upgrade (RFC 6455 §4).

The subprotocols (RFC 6455 §1.9): ``rtctl.v1`` carries JSON-RPC 2.0 in text
frames; ``rtctl.v1.binary`` is the same, plus binary server-to-client frames
(:mod:`rtctl.protocol.frames`: room state) where ``rtctl.v1`` gets their JSON
twin as a notification. A client offers ``rtctl.v1.binary, rtctl.v1``; the
gateway picks the first of those it knows in that order of preference, so an
older gateway still answers ``rtctl.v1``. The token carriers, in the order the gateway looks:
``Authorization: Bearer <jwt>`` (RFC 6750 §2.1), the ``token=`` query
parameter, and -- because browsers cannot set headers on a WebSocket -- a
subprotocol ``rtctl.bearer.<jwt>`` offered beside ``rtctl.v1``. Pure functions
of header values: the gateway, the simulator and the client all use them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from urllib.parse import parse_qsl

__all__ = [
    "BINARY_SUBPROTOCOL",
    "SUBPROTOCOL",
    "TOKEN_SUBPROTOCOL_PREFIX",
    "offered_subprotocols",
    "select_subprotocol",
    "takes_binary",
    "token_from_request",
]

SUBPROTOCOL = "rtctl.v1"
BINARY_SUBPROTOCOL = "rtctl.v1.binary"
TOKEN_SUBPROTOCOL_PREFIX = "rtctl.bearer."


def offered_subprotocols(header_values: Iterable[str]) -> list[str]:
    """The subprotocols a client offered, from every ``Sec-WebSocket-Protocol`` line."""
    return [p.strip() for value in header_values for p in value.split(",") if p.strip()]


def select_subprotocol(offered: Sequence[str]) -> str | None:
    """``rtctl.v1.binary`` when offered, else ``rtctl.v1``; None (JSON text) for neither.

    The server's preference decides, not the order offered (§4.2.2 leaves it
    to the server): binary state frames are the smaller encoding.
    """
    if BINARY_SUBPROTOCOL in offered:
        return BINARY_SUBPROTOCOL
    return SUBPROTOCOL if SUBPROTOCOL in offered else None


def takes_binary(subprotocol: str | None) -> bool:
    """May a connection on ``subprotocol`` be sent binary frames? Only on ``rtctl.v1.binary``."""
    return subprotocol == BINARY_SUBPROTOCOL


def token_from_request(
    *, authorization: str | None, query: str, subprotocols: Sequence[str]
) -> str | None:
    """Find the token in a WebSocket upgrade: header, then ``token=`` query, then subprotocol."""
    if authorization:
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    for name, value in parse_qsl(query):
        if name == "token" and value:
            return value
    prefix = TOKEN_SUBPROTOCOL_PREFIX
    for proto in subprotocols:
        if proto.startswith(prefix) and len(proto) > len(prefix):
            return proto[len(prefix) :]
    return None
