"""What a client and the gateway agree on at the WebSocket upgrade (RFC 6455 §4).

The subprotocol: ``rtctl.v1`` carries JSON-RPC 2.0 in text frames
(RFC 6455 §1.9). The token carriers, in the order the gateway looks:
``Authorization: Bearer <jwt>`` (RFC 6750 §2.1), the ``token=`` query
parameter, and -- because browsers cannot set headers on a WebSocket -- a
subprotocol ``rtctl.bearer.<jwt>`` offered beside ``rtctl.v1``. Pure functions
of header values: the gateway, the simulator and the client all use them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from urllib.parse import parse_qsl

__all__ = [
    "SUBPROTOCOL",
    "TOKEN_SUBPROTOCOL_PREFIX",
    "offered_subprotocols",
    "select_subprotocol",
    "token_from_request",
]

SUBPROTOCOL = "rtctl.v1"
TOKEN_SUBPROTOCOL_PREFIX = "rtctl.bearer."


def offered_subprotocols(header_values: Iterable[str]) -> list[str]:
    """The subprotocols a client offered, from every ``Sec-WebSocket-Protocol`` line."""
    return [p.strip() for value in header_values for p in value.split(",") if p.strip()]


def select_subprotocol(offered: Sequence[str]) -> str | None:
    """``rtctl.v1`` when offered; a client that offers none still gets JSON text."""
    return SUBPROTOCOL if SUBPROTOCOL in offered else None


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
