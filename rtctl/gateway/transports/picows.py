"""The ``picows`` driver: the gateway's core under picows, fastest on uvloop.

picows parses frames in C and calls back per frame, so a connection costs no
coroutine and a message no ``await``: a reply is written in the same callback
that received the request. What ``websockets`` does for the other driver, this
one does itself, to the same contract (``docs/api.md``):

- the handshake: the :class:`~rtctl.gateway.http.Front`'s answer, ``rtctl.v1``
  echoed when offered (RFC 6455 §4.2.2), ``Server: rtctl``;
- messages: continuation frames reassembled (§5.4), binary closes 1003,
  invalid UTF-8 1007, over the size limit 1009, the peer's close echoed (§5.5.1);
- heartbeat: one gateway-wide timer pings every connection each
  ``interval``; a pong missing after ``timeout - close_timeout`` closes 1011,
  so a dead peer is gone within interval + timeout (as with ``websockets``);
- backpressure: when the socket's buffer is full (``pause_writing``) the
  connection stops reading and notifications wait in its outbox (4008 once it
  overflows); an ordered batch, too many async calls at once, or connect hooks
  still running also stop reading, and what already arrived waits in order.

permessage-deflate is not offered by picows; the ``websockets`` driver runs
without it too (``compression=None``), so both answer the same.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Coroutine
from http import HTTPStatus
from typing import Any

import aiofastnet
from multidict import CIMultiDict
from picows import (
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
)
from picows.picows import WSAutoPingStrategy, WSProtocol  # type: ignore[attr-defined]

from rtctl.exceptions import ConnectionRefused
from rtctl.gateway.auth import Identity
from rtctl.gateway.connection import Connection
from rtctl.gateway.dispatch import Deferred, Timed
from rtctl.gateway.http import Admission, Response, UpgradeRequest
from rtctl.gateway.outbox import Outbox
from rtctl.gateway.transports import Core
from rtctl.gateway.transports.websockets import address
from rtctl.protocol import jsonrpc
from rtctl.protocol.codes import CloseCode
from rtctl.protocol.upgrade import offered_subprotocols, select_subprotocol

__all__ = ["PicowsDriver", "create"]

_TEXT, _CONTINUATION, _BINARY = WSMsgType.TEXT, WSMsgType.CONTINUATION, WSMsgType.BINARY
_CLOSE, _PONG = WSMsgType.CLOSE, WSMsgType.PONG
_HANDSHAKE_TIMEOUT = 10.0
_READ_BUFFER = 2048  # grows as needed; 16 KiB (picows' default) per idle connection is a lot
# A LoggerAdapter, not a Logger: picows makes a child Logger per connection from a Logger.
_LOGGER = logging.LoggerAdapter(logging.getLogger("rtctl.gateway.picows"), {})


def _close_info(transport: WSTransport) -> tuple[int, str]:
    """Who closed, and how (RFC 6455 §7.1.5), as the ``websockets`` driver reports it."""
    handshake = transport.close_handshake
    if handshake is None:
        return CloseCode.ABNORMAL_CLOSURE, ""
    sent, rcvd = handshake.sent, handshake.recv
    if sent is not None and (rcvd is None or not handshake.recv_then_sent):
        return int(sent.code.value), sent.reason
    if rcvd is not None:
        code = int(rcvd.code.value)
        return (code, rcvd.reason) if code else (CloseCode.NO_STATUS, "")
    return CloseCode.ABNORMAL_CLOSURE, ""


def _http_response(answer: Response) -> WSUpgradeResponse:
    response = WSUpgradeResponse()
    response.version = b"HTTP/1.1"
    response.status = HTTPStatus(answer.status)
    # picows adds Content-Length for a body, and Connection: close for a non-101.
    response.headers = CIMultiDict([(k, v) for k, v in answer.headers if k != "Content-Length"])
    response.headers["Server"] = "rtctl"
    response.body = answer.body
    return response


class _Link(WSListener):
    """Base of both kinds of upgraded connection: closing and close bookkeeping."""

    def __init__(self, driver: PicowsDriver) -> None:
        self.driver = driver
        self.ws: WSTransport | None = None
        self.paused = False
        self._close_timer: asyncio.TimerHandle | None = None

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake; the TCP side goes after ``close_timeout``."""
        ws = self.ws
        if ws is None or ws.is_close_frame_sent or ws.is_disconnected:
            return
        ws.send_close(WSCloseCode(code), reason.encode())
        self._close_timer = asyncio.get_running_loop().call_later(
            self.driver.core.close_timeout, ws.disconnect)

    def answer_close(self, ws: WSTransport, frame: WSFrame) -> None:
        """The peer's close: echo its code unless we closed first, then hang up (§5.5.1)."""
        if not ws.is_close_frame_sent:
            ws.send_close(frame.get_close_code(), frame.get_close_message())
        ws.disconnect()

    def forget(self) -> None:
        if self._close_timer is not None:
            self._close_timer.cancel()
        self.driver.forget(self)

    def pause_writing(self) -> None:
        """The socket's buffer is full: stop reading until the peer catches up."""
        self.paused = True
        if self.ws is not None:
            self.ws.underlying_transport.pause_reading()

    def resume_writing(self) -> None:
        self.paused = False


class _GameLink(_Link):
    """One game connection: frames in, the dispatcher's replies out; its Transport too."""

    def __init__(self, driver: PicowsDriver, identity: Identity, subprotocol: str | None) -> None:
        super().__init__(driver)
        self.identity = identity
        self.subprotocol = subprotocol
        self.conn: Connection | None = None
        self.waiting: deque[str] | None = deque()  # messages held while blocked; None: flowing
        self.batching = False
        self.inflight = 0
        self.parts: list[bytes] | None = None  # a fragmented message so far (§5.4)
        self.size = 0
        self.outbox: Outbox | None = None
        self.flushing = False  # a flush of the outbox is scheduled
        self.pong_timer: asyncio.TimerHandle | None = None

    # -- picows callbacks ---------------------------------------------------

    def on_ws_connected(self, ws: WSTransport) -> None:
        self.ws = ws
        driver = self.driver
        raw = ws.underlying_transport
        try:
            self.conn = driver.core.open(
                self.identity, self, remote=address(raw.get_extra_info("peername")),
                local=address(raw.get_extra_info("sockname")), subprotocol=self.subprotocol)
        except ConnectionRefused as exc:
            self.close(CloseCode.TRY_AGAIN_LATER, exc.detail[:120])
            return
        driver.links.add(self)
        self._reading(False)
        driver.spawn(self._opened(self.conn))

    def on_ws_frame(self, ws: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind == _TEXT and frame.fin and self.parts is None:
            try:
                text = frame.get_payload_as_utf8_text()
            except UnicodeDecodeError:
                self.close(CloseCode.INVALID_PAYLOAD, "invalid UTF-8")
                return
            if self.waiting is None:
                self.receive(text)
            else:
                self.waiting.append(text)
        elif kind == _CLOSE:
            self.answer_close(ws, frame)
        elif kind == _PONG:
            if self.pong_timer is not None:
                self.pong_timer.cancel()
                self.pong_timer = None
        else:
            self._fragment(kind, frame)

    def on_ws_disconnected(self, ws: WSTransport) -> None:
        self.forget()
        if self.pong_timer is not None:
            self.pong_timer.cancel()
        if self.outbox is not None:
            self.outbox.clear()
        if self.conn is not None:
            code, reason = _close_info(ws)
            self.driver.spawn(self.driver.core.closed(self.conn, code, reason))

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.outbox is not None:
            self._flush()
        self._reading(self.waiting is None)

    # -- the Transport a Connection talks to ----------------------------------

    def send(self, data: bytes) -> bool:
        """Queue a notification; it is written once the handler that sent it returns."""
        outbox = self.outbox
        if outbox is None:
            outbox = self.outbox = Outbox(max_bytes=self.driver.core.config.limits.max_outbox_bytes)
        if not outbox.put(data):
            return False
        if not self.flushing and not self.paused:
            self.flushing = True
            asyncio.get_running_loop().call_soon(self._flush)
        return True

    def _flush(self) -> None:
        self.flushing = False
        outbox = self.outbox
        assert outbox is not None
        while not self.paused and (data := outbox.pop()) is not None:
            self._write(data)

    def queued(self) -> tuple[int, int] | None:
        return None if self.outbox is None else (len(self.outbox), self.outbox.queued_bytes)

    # -- messages -----------------------------------------------------------

    def receive(self, text: str) -> None:
        """Hand one message to the dispatcher and write (or schedule) what it answers."""
        conn = self.conn
        assert conn is not None
        dispatcher = self.driver.core.dispatcher
        out = dispatcher.receive(conn, text)
        if type(out) is bytes:  # the hot path
            assert self.ws is not None
            self.ws.send(_TEXT, out)
            dispatcher.sent(conn, out)
        elif isinstance(out, Deferred):
            if out.ordered:
                self.batching = True
            else:
                self.inflight += 1
            self._hold()
            self.driver.spawn(self._finish(out))
        elif out is not None:
            self._deliver(out)

    def _write(self, data: bytes) -> None:
        ws, conn = self.ws, self.conn
        if ws is None or conn is None or ws.is_close_frame_sent or ws.is_disconnected:
            return
        ws.send(_TEXT, data)
        self.driver.core.dispatcher.sent(conn, data)

    def _deliver(self, out: bytes | Timed | None) -> None:
        if isinstance(out, Timed):
            writing = time.perf_counter_ns()
            if out.data is not None:
                self._write(out.data)
            self.driver.core.dispatcher.record(out.sample, time.perf_counter_ns() - writing)
        elif out is not None:
            self._write(out)

    async def _opened(self, conn: Connection) -> None:
        await self.driver.core.opened(conn)
        self._release()

    async def _finish(self, deferred: Deferred) -> None:
        try:
            self._deliver(await deferred.pending)
        finally:
            if deferred.ordered:
                self.batching = False
            else:
                self.inflight -= 1
            self._release()

    def _hold(self) -> None:
        """Stop taking messages while a batch runs or the async calls are at their limit."""
        if self.batching or self.inflight >= self.driver.core.config.limits.max_inflight:
            if self.waiting is None:
                self.waiting = deque()
            self._reading(False)

    def _release(self) -> None:
        """Take the held messages in order, until something holds them again."""
        waiting = self.waiting
        if waiting is None or self.batching or (
                self.inflight >= self.driver.core.config.limits.max_inflight):
            return
        self.waiting = None
        while waiting and self.waiting is None:
            self.receive(waiting.popleft())
        if self.waiting is not None:  # held again: the rest go first, in order
            self.waiting.extendleft(reversed(waiting))
        else:
            self._reading(True)

    def _reading(self, on: bool) -> None:
        ws = self.ws
        if ws is None or ws.is_disconnected:
            return
        if on and not self.paused:
            ws.underlying_transport.resume_reading()
        elif not on:
            ws.underlying_transport.pause_reading()

    def _fragment(self, kind: WSMsgType, frame: WSFrame) -> None:
        """Binary, or a piece of a fragmented text message (RFC 6455 §5.4)."""
        if kind == _BINARY:
            self.close(CloseCode.UNSUPPORTED_DATA, "binary frames are not accepted")
            return
        if (kind == _CONTINUATION) != (self.parts is not None):
            self.close(CloseCode.PROTOCOL_ERROR, "unexpected continuation frame")
            return
        payload = frame.get_payload_as_bytes()
        self.size += len(payload)
        if self.size > self.driver.core.config.limits.max_message_size:
            self.close(CloseCode.MESSAGE_TOO_BIG, "message too big")
            return
        if self.parts is None:
            self.parts = []
        self.parts.append(payload)
        if not frame.fin:
            return
        data, self.parts, self.size = b"".join(self.parts), None, 0
        try:
            text = data.decode()
        except UnicodeDecodeError:
            self.close(CloseCode.INVALID_PAYLOAD, "invalid UTF-8")
            return
        if self.waiting is None:
            self.receive(text)
        else:
            self.waiting.append(text)

    def ping(self, wait: float) -> None:
        """Heartbeat: ping, and close 1011 unless a pong comes within ``wait`` seconds."""
        ws = self.ws
        if self.pong_timer is not None or ws is None or ws.is_close_frame_sent:
            return
        ws.send_ping()
        self.pong_timer = asyncio.get_running_loop().call_later(
            wait, self.close, CloseCode.INTERNAL_ERROR, "keepalive ping timeout")


class _TapLink(_Link):
    """An admin listening on ``/tap``: the tap's events, one JSON object per line."""

    def __init__(self, driver: PicowsDriver) -> None:
        super().__init__(driver)
        self.pump: asyncio.Task[None] | None = None
        self.writable = asyncio.Event()
        self.writable.set()

    def on_ws_connected(self, ws: WSTransport) -> None:
        self.ws = ws
        self.driver.links.add(self)
        self.pump = asyncio.get_running_loop().create_task(self._pump(ws))

    def on_ws_frame(self, ws: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == _CLOSE:
            self.answer_close(ws, frame)

    def on_ws_disconnected(self, ws: WSTransport) -> None:
        self.forget()
        if self.pump is not None:
            self.pump.cancel()

    def pause_writing(self) -> None:
        super().pause_writing()
        self.writable.clear()

    def resume_writing(self) -> None:
        super().resume_writing()
        self.writable.set()

    async def _pump(self, ws: WSTransport) -> None:
        core = self.driver.core
        with core.tap.subscribe(existing=core.open_connections()) as subscription:
            while True:
                events = await subscription.next_batch()
                await self.writable.wait()
                ws.send(_TEXT, b"\n".join(jsonrpc.dumps(e.to_json()) for e in events))


class PicowsDriver:
    """Serves a :class:`Core` with picows."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.links: set[_Link] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._none_left = asyncio.Event()  # set while no connection is open

    async def start(self) -> None:
        config = self.core.config
        loop = asyncio.get_running_loop()
        self._server = await aiofastnet.create_server(loop, self._protocol, config.host,
                                                      config.port)
        self._heartbeat = loop.create_task(self._beat())

    @property
    def port(self) -> int:
        assert self._server is not None, "the driver is not started"
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self, code: int, reason: str) -> None:
        if self._server is None:
            return
        self._server.close()
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        for link in list(self.links):
            link.close(code, reason)
        if self.links:
            self._none_left.clear()
            await self._none_left.wait()
        while self._tasks:  # the disconnect hooks the last callbacks started
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def forget(self, link: _Link) -> None:
        """``link`` is disconnected."""
        self.links.discard(link)
        if not self.links:
            self._none_left.set()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` as a task the driver keeps until it ends."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _protocol(self) -> WSProtocol:
        protocol: WSProtocol = None

        def route(request: WSUpgradeRequest) -> WSUpgradeResponseWithListener:
            raw = protocol.transport.underlying_transport
            return self._route(request, address(raw.get_extra_info("peername")))

        limits = self.core.config.limits
        protocol = WSProtocol(
            None, None, False, route, _LOGGER, True, _HANDSHAKE_TIMEOUT,
            False, 20.0, 20.0, WSAutoPingStrategy.PING_WHEN_IDLE,  # our own heartbeat instead
            True, limits.max_message_size, None, _READ_BUFFER)
        return protocol

    def _route(self, request: WSUpgradeRequest, remote: str | None
               ) -> WSUpgradeResponseWithListener:
        offered = offered_subprotocols(request.headers.getall("Sec-WebSocket-Protocol", ()))
        answer = self.core.front.answer(UpgradeRequest(
            target=request.path.decode("latin-1"),
            authorization=request.headers.get("Authorization"), subprotocols=offered,
            remote=remote))
        if not isinstance(answer, Admission):
            return WSUpgradeResponseWithListener(_http_response(answer), None)
        headers = {"Server": "rtctl"}
        chosen = select_subprotocol(offered)
        if chosen is not None:
            headers["Sec-WebSocket-Protocol"] = chosen
        listener = _TapLink(self) if answer.listener else _GameLink(self, answer.identity, chosen)
        return WSUpgradeResponseWithListener(
            WSUpgradeResponse.create_101_response(extra_headers=headers), listener)

    async def _beat(self) -> None:
        heartbeat = self.core.config.heartbeat
        wait = heartbeat.timeout - self.core.close_timeout
        while True:
            await asyncio.sleep(heartbeat.interval)
            for link in list(self.links):
                if isinstance(link, _GameLink):
                    link.ping(wait)


def create(core: Core) -> PicowsDriver:
    return PicowsDriver(core)

