"""The socket side of a connection: its outbox-backed transport and close bookkeeping.

:class:`SocketTransport` is what a :class:`~rtctl.gateway.connection.Connection`
talks to (its ``Transport``); the helpers name addresses, pick the subprotocol
and read who closed a WebSocket and how (RFC 6455 §7.1.5).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any, Protocol

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from rtctl.gateway.outbox import Outbox
from rtctl.protocol.codes import CloseCode
from rtctl.protocol.upgrade import SUBPROTOCOL

__all__ = ["SocketTransport", "Writer", "address", "close_info", "select_subprotocol"]


class Writer(Protocol):
    """Who writes a message to a socket and counts it (the gateway)."""

    async def send_raw(self, ws: ServerConnection, data: bytes) -> None: ...


def address(sockname: Any) -> str | None:
    """``host:port`` of a socket address, ``[host]:port`` for IPv6."""
    if not sockname:
        return None
    host, port = sockname[0], sockname[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def select_subprotocol(
    _ws: ServerConnection, offered: Sequence[Subprotocol]
) -> Subprotocol | None:
    """``rtctl.v1`` when offered; a client that offers none still gets JSON text."""
    return Subprotocol(SUBPROTOCOL) if SUBPROTOCOL in offered else None


def close_info(ws: ServerConnection) -> tuple[int, str]:
    """Who closed, and how: the side that started the closing handshake names it.

    ``ws.close_code`` reports 1006 when the peer never answered our close
    (a dead peer after a heartbeat timeout); what we sent is the truth then.
    """
    sent, rcvd = ws.protocol.close_sent, ws.protocol.close_rcvd
    if sent is not None and (rcvd is None or not ws.protocol.close_rcvd_then_sent):
        return sent.code, sent.reason
    if rcvd is not None:
        return rcvd.code, rcvd.reason
    return CloseCode.ABNORMAL_CLOSURE, ""


class SocketTransport:
    """Connects a :class:`Connection` to its websocket; the outbox is made on first use.

    Most connections of a game only ever receive replies, so an idle one
    carries no queue, no event and no writer task.
    """

    __slots__ = ("_max_bytes", "_outbox", "_writer", "_ws")

    def __init__(self, writer: Writer, ws: ServerConnection, *, max_bytes: int) -> None:
        self._writer = writer
        self._ws = ws
        self._max_bytes = max_bytes
        self._outbox: Outbox | None = None

    def send(self, data: bytes) -> bool:
        if self._outbox is None:
            self._outbox = Outbox(self._write, max_bytes=self._max_bytes)
        return self._outbox.put(data)

    async def _write(self, data: bytes) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self._writer.send_raw(self._ws, data)

    def close(self, code: int, reason: str) -> None:
        asyncio.get_running_loop().create_task(self._ws.close(code, reason))

    def queued(self) -> tuple[int, int] | None:
        """Messages and bytes waiting in the outbox; None while there is no outbox."""
        return None if self._outbox is None else (len(self._outbox), self._outbox.queued_bytes)

    async def aclose(self) -> None:
        """Stop the writer when the connection is gone."""
        if self._outbox is not None:
            await self._outbox.close()
