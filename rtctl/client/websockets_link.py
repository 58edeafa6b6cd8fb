"""The default transport: a :class:`~rtctl.client.link.Link` on ``websockets.asyncio.client``.

websockets does the WebSocket work itself -- fragments, UTF-8 checks, the
closing handshake, keepalive pings -- so this only maps its API and exceptions
onto the seam (:mod:`rtctl.client.link`). Its own ``close_code`` reports 1006
when the client failed the connection itself; ``closed_with`` reads the Close
frame the client sent instead, as the seam asks.
"""

from __future__ import annotations

from collections.abc import Sequence

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.typing import Subprotocol

from rtctl.client.errors import classify_status, refusal
from rtctl.client.link import (
    CLOSE_TIMEOUT,
    KEEPALIVE_INTERVAL,
    KEEPALIVE_TIMEOUT,
    Link,
    LinkClosed,
    OpenFailed,
    unreachable,
    upgrade_headers,
)
from rtctl.protocol.codes import CloseCode
from rtctl.protocol.upgrade import SUBPROTOCOL

__all__ = ["WebsocketsLink", "open_websockets"]


class WebsocketsLink:
    """A :class:`~rtctl.client.link.Link` over a ``websockets`` client connection."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws

    @property
    def closed_with(self) -> tuple[int, str]:
        protocol = self._ws.protocol
        close = protocol.close_rcvd or protocol.close_sent
        return (close.code, close.reason) if close else (CloseCode.ABNORMAL_CLOSURE, "")

    @property
    def subprotocol(self) -> str | None:
        return self._ws.subprotocol

    async def send(self, data: bytes) -> None:
        try:
            await self._ws.send(data, text=True)
        except ConnectionClosed:
            raise LinkClosed from None

    async def recv(self) -> str | bytes:
        try:
            return await self._ws.recv()
        except ConnectionClosed:
            raise LinkClosed from None

    async def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        await self._ws.close(code, reason)


async def open_websockets(url: str, token: str | None, open_timeout: float,
                          max_size: int | None, subprotocols: Sequence[str] = (SUBPROTOCOL,),
                          *, compression: bool = False) -> Link:
    """Open ``url``; raise :class:`~rtctl.client.link.OpenFailed` if it does not open.

    websockets itself fails a handshake whose subprotocol was not offered.
    ``compression`` offers permessage-deflate (RFC 7692) with websockets'
    defaults; the gateway uses it only if its ``--compression`` is on.
    """
    try:
        ws = await connect(url, additional_headers=upgrade_headers(token),
                           subprotocols=[Subprotocol(p) for p in subprotocols],
                           compression="deflate" if compression else None,
                           open_timeout=open_timeout, max_size=max_size,
                           ping_interval=KEEPALIVE_INTERVAL, ping_timeout=KEEPALIVE_TIMEOUT,
                           close_timeout=CLOSE_TIMEOUT)
    except InvalidStatus as exc:
        raise OpenFailed(classify_status(*refusal(exc))) from None
    except (OSError, TimeoutError, WebSocketException) as exc:
        raise unreachable(url, exc) from None
    return WebsocketsLink(ws)
