"""The picows transport: a :class:`~rtctl.client.link.Link` with little cost per message.

picows parses frames in Cython and hands each one to a listener callback;
there is no message object, no per-frame task. This module adds what the
driver expects of a WebSocket and picows leaves to its user:

* **Whole messages.** Fragments are joined by
  :class:`~rtctl.protocol.websocket.Reassembly` (RFC 6455 §5.4), the gateway's
  picows transport's rules too; a broken message fails the connection with the
  code it names (1002, 1007 or 1009).
* **The closing handshake.** A Close frame is answered with one bearing the
  same code (§5.5.1), then the TCP connection is closed (§7.1.1 lets the
  client do so once both Close frames have passed).
* **Backpressure.** ``send`` waits while the socket's write buffer is over
  its high-water mark, as ``websockets`` does.
* **Refusals.** picows keeps of a refused upgrade's body what arrived with its
  headers. The gateway writes both at once, so the 401 reason word is there;
  a body that came later would leave the reason ``unauthorized``.

Pings are answered by picows itself (§5.5.2); keepalive pings are picows'
``enable_auto_ping``, periodic as ``websockets``' are and on the same timings.
Imported only when a client chooses ``transport="picows"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Sequence
from http import HTTPStatus

from picows import (
    WSAutoPingStrategy,
    WSCloseCode,
    WSError,
    WSFrame,
    WSHandshakeError,
    WSListener,
    WSMsgType,
    WSTransport,
    ws_connect,
)

from rtctl.client.link import (
    CLOSE_TIMEOUT,
    KEEPALIVE_INTERVAL,
    KEEPALIVE_TIMEOUT,
    Link,
    LinkClosed,
    refused,
    unreachable,
    upgrade_headers,
)
from rtctl.protocol.codes import CloseCode
from rtctl.protocol.upgrade import SUBPROTOCOL
from rtctl.protocol.websocket import FrameError, Reassembly

__all__ = ["PicowsLink", "open_picows"]

logger = logging.getLogger("rtctl.client")

_DATA = (WSMsgType.CONTINUATION, WSMsgType.TEXT, WSMsgType.BINARY)


class _Listener(WSListener):
    """Turns frames into whole messages on a queue; ``None`` on the queue marks the end."""

    def __init__(self, max_size: int | None) -> None:
        super().__init__()
        self.messages: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self.writable = asyncio.Event()
        self.writable.set()
        self._message = Reassembly(max_size)
        self._over = False  # a Close frame came, or this side failed the connection

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if self._over:
            pass  # what follows in the same read is not to be delivered
        elif kind is WSMsgType.CLOSE:
            self._over = True
            code = frame.get_close_code()
            transport.send_close(WSCloseCode.OK if code is WSCloseCode.NO_INFO else code)
            transport.disconnect()
        elif kind in _DATA:
            try:
                message = self._message.frame(kind.value, frame.fin, frame.get_payload_as_bytes())
            except FrameError as exc:
                self._fail(transport, exc.code, exc.reason)
                return
            if message is not None:
                self.messages.put_nowait(message)
        # PING is answered by picows; an unsolicited PONG needs nothing (§5.5.3).

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.messages.put_nowait(None)
        self.writable.set()  # a sender waiting on a dead socket must wake up to fail

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def _fail(self, transport: WSTransport, code: int, reason: str) -> None:
        """Fail the connection (RFC 6455 §7.1.7): send Close with ``code``, drop the socket."""
        logger.info("client transport: closing with %d: %s", code, reason)
        self._over = True
        transport.send_close(WSCloseCode(code), reason.encode())
        transport.disconnect()


class PicowsLink:
    """A :class:`~rtctl.client.link.Link` over a picows connection."""

    def __init__(self, transport: WSTransport, listener: _Listener,
                 subprotocol: str | None) -> None:
        self._transport = transport
        self._listener = listener
        self._subprotocol = subprotocol

    @property
    def subprotocol(self) -> str | None:
        return self._subprotocol

    @property
    def closed_with(self) -> tuple[int, str]:
        handshake = self._transport.close_handshake
        close = None if handshake is None else handshake.recv or handshake.sent
        if close is None:
            return CloseCode.ABNORMAL_CLOSURE, ""
        return int(close.code.value) or CloseCode.NO_STATUS, close.reason or ""  # 0: no code

    async def send(self, data: bytes) -> None:
        transport = self._transport
        if transport.is_close_frame_sent or transport.is_disconnected:
            raise LinkClosed
        transport.send(WSMsgType.TEXT, data)
        await self._listener.writable.wait()

    async def recv(self) -> str | bytes:
        message = await self._listener.messages.get()
        if message is None:
            self._listener.messages.put_nowait(None)  # every later recv sees the end too
            with contextlib.suppress(WSError):  # picows keeps a local failure here; take it
                await self._transport.wait_disconnected()
            raise LinkClosed
        return message

    async def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        transport = self._transport
        transport.send_close(WSCloseCode(code), reason.encode())
        with contextlib.suppress(TimeoutError, WSError):
            async with asyncio.timeout(CLOSE_TIMEOUT):  # the gateway answers, then hangs up
                await transport.wait_disconnected()
        transport.disconnect()


async def open_picows(url: str, token: str | None, open_timeout: float,
                      max_size: int | None, subprotocols: Sequence[str] = (SUBPROTOCOL,)
                      ) -> Link:
    """Open ``url``; raise :class:`~rtctl.client.link.OpenFailed` if it does not open."""
    headers = {**upgrade_headers(token), "Sec-WebSocket-Protocol": ", ".join(subprotocols)}
    try:
        async with asyncio.timeout(open_timeout):
            transport, listener = await ws_connect(
                lambda _request, _response: _Listener(max_size), url, extra_headers=headers,
                websocket_handshake_timeout=open_timeout,
                max_frame_size=sys.maxsize if max_size is None else max_size,
                enable_auto_ping=True, auto_ping_strategy=WSAutoPingStrategy.PING_PERIODICALLY,
                auto_ping_idle_timeout=KEEPALIVE_INTERVAL,
                auto_ping_reply_timeout=KEEPALIVE_TIMEOUT)
    except WSHandshakeError as exc:
        response = exc.response
        if response is None or response.status == HTTPStatus.SWITCHING_PROTOCOLS:
            raise unreachable(url, exc) from None  # a broken handshake, not a refusal
        raise refused(int(response.status), exc.raw_body) from None
    except (OSError, TimeoutError, WSError) as exc:
        raise unreachable(url, exc) from None
    if not isinstance(listener, _Listener):  # the socket closed during the upgrade
        raise unreachable(url, "the connection closed during the upgrade")
    chosen = transport.response.headers.get("Sec-WebSocket-Protocol")
    if chosen is not None and chosen not in subprotocols:  # RFC 6455 §4.1: not offered: fail
        transport.disconnect()
        raise unreachable(url, f"the server chose subprotocol {chosen!r}, not one of "
                               f"{', '.join(subprotocols)}")
    return PicowsLink(transport, listener, chosen)
