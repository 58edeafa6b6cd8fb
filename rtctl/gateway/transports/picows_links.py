"""The picows driver's connections: a game connection's frames, and a tap listener's stream.

Each upgraded connection is a :class:`picows.WSListener` whose callbacks run for every
frame (see :mod:`rtctl.gateway.transports.picows` for the contract they keep). A
:class:`GameLink` is the :class:`~rtctl.gateway.connection.Transport` of its Connection.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Coroutine, Hashable
from typing import Any, Protocol

from multidict import CIMultiDict
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport

from rtctl.exceptions import ConnectionRefused
from rtctl.gateway.auth import Identity
from rtctl.gateway.connection import Connection
from rtctl.gateway.dispatch import Deferred, Timed
from rtctl.gateway.outbox import BinaryMessage, direct_replies
from rtctl.gateway.transports import Core, Flow, Timer, address, stuck_reason
from rtctl.protocol import jsonrpc
from rtctl.protocol.codes import CloseCode
from rtctl.protocol.lanes import Lane, Policy
from rtctl.protocol.websocket import FrameError, Reassembly, closed_by

__all__ = ["GameLink", "Link", "Owner", "TapLink"]

_TEXT, _BINARY = WSMsgType.TEXT, WSMsgType.BINARY
_CLOSE, _PONG = WSMsgType.CLOSE, WSMsgType.PONG
_NO_HEADERS: CIMultiDict[str] = CIMultiDict()


class Owner(Protocol):
    """The driver, as its connections see it."""

    core: Core

    def forget(self, link: Link) -> None:
        """``link`` is disconnected."""

    def remember(self, link: Link) -> None:
        """``link`` is connected (it gets heartbeats and is closed on shutdown)."""

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` as a task kept until it ends."""


def _close_info(transport: WSTransport) -> tuple[int, str]:
    """Who closed, and how (:func:`~rtctl.protocol.websocket.closed_by`)."""
    handshake = transport.close_handshake
    if handshake is None:
        return closed_by(None, None, False)
    sent, rcvd = handshake.sent, handshake.recv
    return closed_by(None if sent is None else (int(sent.code.value), sent.reason),
                     None if rcvd is None else (int(rcvd.code.value), rcvd.reason),
                     handshake.recv_then_sent)


class Link(WSListener):
    """Base of both kinds of upgraded connection: closing, close bookkeeping, write deadline."""

    __slots__ = ("_close_timer", "_deadline", "driver", "paused", "ws")

    def __init__(self, driver: Owner) -> None:
        self.driver = driver
        self.ws: WSTransport | None = None
        self.paused = False
        self._close_timer: asyncio.TimerHandle | None = None
        self._deadline = Timer(self._stuck)

    @property
    def closing(self) -> bool:
        """Is the connection past writing (our Close frame sent, or the socket gone)?"""
        ws = self.ws
        return ws is None or ws.is_close_frame_sent or ws.is_disconnected

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake; the TCP side goes after ``close_timeout``."""
        ws = self.ws
        if ws is None or self.closing:
            return
        ws.send_close(WSCloseCode(code), reason.encode())
        # Unanswered, the socket is dropped, not flushed: a peer that does not read never
        # lets a graceful close finish.
        self._close_timer = asyncio.get_running_loop().call_later(
            self.driver.core.close_timeout, ws.disconnect, False)

    def answer_close(self, ws: WSTransport, frame: WSFrame) -> None:
        """The peer's close: echo its code unless we closed first, then hang up (§5.5.1)."""
        if not ws.is_close_frame_sent:
            ws.send_close(frame.get_close_code(), frame.get_close_message())
        ws.disconnect()

    def forget(self) -> None:
        if self._close_timer is not None:
            self._close_timer.cancel()
        self._deadline.stop()
        self.driver.forget(self)

    def pause_writing(self) -> None:
        """The socket's buffer is full: stop reading until the peer catches up."""
        self.paused = True
        self._deadline.start(self.driver.core.config.limits.write_timeout)
        if self.ws is not None:
            self.ws.underlying_transport.pause_reading()

    def resume_writing(self) -> None:
        self.paused = False
        self._deadline.stop()

    def _stuck(self) -> None:
        """Drop a peer that stopped reading; 4008 is what the gateway reports."""
        timeout = self.driver.core.config.limits.write_timeout
        self.close(CloseCode.SLOW_CONSUMER, stuck_reason(timeout))
        if self.ws is not None:
            self.ws.disconnect(False)


class GameLink(Link):
    """One game connection: frames in, the dispatcher's replies out; its Transport too."""

    __slots__ = ("batching", "conn", "direct", "flow", "flushing", "identity", "inflight",
                 "parts", "pong_timer", "shaped", "subprotocol", "waiting")

    def __init__(self, driver: Owner, identity: Identity, subprotocol: str | None) -> None:
        super().__init__(driver)
        self.identity = identity
        self.subprotocol = subprotocol
        self.conn: Connection | None = None
        self.waiting: deque[str] | None = deque()  # messages held while blocked; None: flowing
        self.batching = False
        self.inflight = 0
        self.parts: Reassembly | None = None  # a fragmented message so far (§5.4)
        self.flow: Flow | None = None  # the outbox, made on the first message queued
        routing = driver.core.config.routing
        self.direct = direct_replies(routing)  # False: ask reply() first
        self.shaped = routing.outbound_rate is not None  # replies are charged to a bucket
        self.flushing = False  # a flush of the outbox is scheduled
        self.pong_timer: asyncio.TimerHandle | None = None

    # -- picows callbacks ---------------------------------------------------

    def on_ws_connected(self, ws: WSTransport) -> None:
        self.ws = ws
        # picows keeps the upgrade's request and response; their headers (the token among
        # them) are the largest part of an idle connection after the buffers.
        ws.request.headers = ws.response.headers = _NO_HEADERS
        driver = self.driver
        raw = ws.underlying_transport
        try:
            self.conn = driver.core.open(
                self.identity, self, remote=address(raw.get_extra_info("peername")),
                local=address(raw.get_extra_info("sockname")), subprotocol=self.subprotocol)
        except ConnectionRefused as exc:
            self.close(CloseCode.TRY_AGAIN_LATER, exc.detail[:120])
            return
        driver.remember(self)
        self._reading(False)
        driver.spawn(self._opened(self.conn))

    def on_ws_frame(self, ws: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind == _TEXT and frame.fin and (self.parts is None or not self.parts.joining):
            try:
                text = frame.get_payload_as_utf8_text()
            except UnicodeDecodeError:
                self.close(CloseCode.INVALID_PAYLOAD, "invalid UTF-8")
                return
            self._accept(text)
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
        if self.flow is not None:
            self.flow.close()
        if self.conn is not None:
            code, reason = _close_info(ws)
            self.driver.spawn(self.driver.core.closed(self.conn, code, reason))

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.flow is not None:
            self._flush()
        self._reading(self.waiting is None)

    # -- the Transport a Connection talks to ----------------------------------

    def send(self, data: bytes, binary: bool = False, *, lane: Lane = Lane.EVENTS,
             policy: Policy | None = None, key: Hashable | None = None) -> bool:
        """Queue a notification; it is written once the handler that sent it returns."""
        return (self.flow or self._start()).put(data, binary, lane, policy, key)

    def reply(self, data: bytes) -> bool:
        """Write this reply now (True, charged), or was it queued (lanes off)? With no
        flow yet and no bucket to charge, nothing waits ahead of it: no flow is made."""
        if self.flow is None and not self.shaped:
            return True
        return (self.flow or self._start()).reply(data)

    def _start(self) -> Flow:
        assert self.conn is not None
        flow = self.flow = Flow(self.driver.core, self.conn, self._soon)
        return flow

    def _soon(self) -> None:
        """Flush once the running callback returns, unless the socket is full."""
        if not self.flushing and not self.paused:
            self.flushing = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self.flushing = False
        flow, ws, conn = self.flow, self.ws, self.conn
        assert flow is not None
        if ws is None or conn is None:
            return
        sent = self.driver.core.dispatcher.sent  # _write, inlined: once per message
        while not (self.paused or ws.is_close_frame_sent or ws.is_disconnected) and (
                data := flow.next()) is not None:
            binary = type(data) is BinaryMessage
            ws.send(_BINARY if binary else _TEXT, data)
            sent(conn, data, binary)

    def queued(self) -> tuple[int, int] | None:
        return None if self.flow is None else self.flow.queued()

    def lane_bytes(self, lane: Lane) -> int:
        return 0 if self.flow is None else self.flow.outbox.lane_bytes(lane)

    # -- messages -----------------------------------------------------------

    def receive(self, text: str) -> None:
        """Hand one message to the dispatcher and write (or schedule) what it answers."""
        conn = self.conn
        assert conn is not None
        dispatcher = self.driver.core.dispatcher
        out = dispatcher.receive(conn, text)
        if type(out) is bytes:  # the hot path
            if self.direct or self.reply(out):
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
        """Write a reply (text), unless closing: nothing more is written then, and what
        waits in the outbox stays there, uncounted as sent, until the disconnect clears it."""
        ws, conn = self.ws, self.conn
        if ws is None or conn is None or self.closing:
            return
        ws.send(_TEXT, data)
        self.driver.core.dispatcher.sent(conn, data)

    def _deliver(self, out: bytes | Timed | None) -> None:
        """Write a reply (or queue it, lanes off); a profiled one has its write timed."""
        if isinstance(out, Timed):
            writing = time.perf_counter_ns()
            if out.data is not None and (self.direct or self.reply(out.data)):
                self._write(out.data)
            self.driver.core.dispatcher.record(out.sample, time.perf_counter_ns() - writing)
        elif out is not None and (self.direct or self.reply(out)):
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
        if self.parts is None:  # made at a connection's first fragment: most never have one
            self.parts = Reassembly(self.driver.core.config.limits.max_message_size)
        try:
            text = self.parts.frame(kind.value, frame.fin, frame.get_payload_as_bytes())
        except FrameError as exc:
            self.close(exc.code, exc.reason)
            return
        if isinstance(text, str):
            self._accept(text)

    def _accept(self, text: str) -> None:
        """Take a whole message now, or keep it in order while the connection is held."""
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


class TapLink(Link):
    """An admin listening on ``/tap``: the tap's events, one JSON object per line."""

    __slots__ = ("pump", "writable")

    def __init__(self, driver: Owner) -> None:
        super().__init__(driver)
        self.pump: asyncio.Task[None] | None = None
        self.writable = asyncio.Event()
        self.writable.set()

    def on_ws_connected(self, ws: WSTransport) -> None:
        self.ws = ws
        self.driver.remember(self)
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
