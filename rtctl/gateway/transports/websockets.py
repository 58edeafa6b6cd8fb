"""The ``websockets`` driver: the gateway's core under the ``websockets`` asyncio server.

``websockets`` does the protocol work: the handshake (our answer comes from
``process_request``), framing and reassembly, UTF-8 checks (close 1007),
the size limit (1009), heartbeat pings with a pong timeout, and the closing
handshake (RFC 6455 §5-§7). This driver reads each connection's messages in
one coroutine, hands them to the :class:`~rtctl.gateway.dispatch.Dispatcher`
and writes the replies with the socket's own backpressure; notifications wait
in the connection's :class:`~rtctl.gateway.outbox.Outbox` (its lanes, shaping
and batching; a :class:`~rtctl.gateway.transports.Flow`), drained by a writer
task made on first use: binary ones (``rtctl.v1.binary``) go out as opcode 2
(RFC 6455 §5.6), in order with the text ones of their lane.

Two things ``websockets`` does not do are added to its connection class
(:class:`_Connection`): a write deadline (its keepalive ping waits on a full
socket, so a client that stopped reading would hold its slot forever), and
bytes that follow the request in the same packet are held until the request is
answered (``websockets`` would parse them as frames before answering, fail, and
answer nothing; RFC 6455 §4.1 has the client wait for the answer, so they
matter only after a 101).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Hashable, Sequence
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request
from websockets.http11 import Response as WsResponse
from websockets.protocol import State
from websockets.typing import Subprotocol

from rtctl.exceptions import ConnectionRefused
from rtctl.gateway.connection import Connection
from rtctl.gateway.dispatch import LOOP_SLICE, Deferred, Dispatcher, Timed
from rtctl.gateway.http import Admission, UpgradeRequest
from rtctl.gateway.outbox import BinaryMessage, direct_replies
from rtctl.gateway.transports import Core, Flow, Timer, address, stuck_reason
from rtctl.gateway.transports.deflate import deflate_extensions
from rtctl.protocol import jsonrpc
from rtctl.protocol.codes import CloseCode
from rtctl.protocol.lanes import Lane, Policy
from rtctl.protocol.redact import RedactCredentials
from rtctl.protocol.upgrade import offered_subprotocols, select_subprotocol
from rtctl.protocol.websocket import closed_by
from rtctl.tap import Subscription

__all__ = ["WebsocketsDriver", "create"]

# The logger serve() picks; at debug level it writes every request header, tokens and all.
_LOGGER = logging.getLogger("websockets.server")
_LOGGER.addFilter(RedactCredentials())


def close_info(ws: ServerConnection) -> tuple[int, str]:
    """Who closed, and how (:func:`~rtctl.protocol.websocket.closed_by`).

    ``ws.close_code`` reports 1006 when the peer never answered our close
    (a dead peer after a heartbeat timeout); what we sent is the truth then.
    """
    protocol = ws.protocol
    sent, rcvd = protocol.close_sent, protocol.close_rcvd
    return closed_by(None if sent is None else (sent.code, sent.reason),
                     None if rcvd is None else (rcvd.code, rcvd.reason),
                     bool(protocol.close_rcvd_then_sent))


_END_OF_HEAD = b"\r\n\r\n"  # the empty line that ends an HTTP request's head (RFC 9112 §2.1)


class _Connection(ServerConnection):
    """``websockets``' server connection with a write deadline and an orderly handshake."""

    write_timeout: float  # set by the subclass each driver makes (see _connection_class)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tail = b""  # the last bytes of the head so far: its end may straddle packets
        self._early: bytearray | None = None  # what came after the request, until answered
        self._deadline = Timer(self._stuck)

    def data_received(self, data: bytes) -> None:
        if self._early is not None:
            self._early += data
            return
        if self.protocol.state is State.CONNECTING:
            seen = self._tail + data
            end = seen.find(_END_OF_HEAD)
            if end < 0:
                self._tail = seen[-len(_END_OF_HEAD) + 1:]
            else:
                cut = end + len(_END_OF_HEAD) - len(self._tail)
                self._early = bytearray(data[cut:])
                data = data[:cut]
        super().data_received(data)

    async def handshake(self, *args: Any, **kwargs: Any) -> None:
        await super().handshake(*args, **kwargs)
        early, self._early = self._early, None
        if early and self.protocol.state is State.OPEN:  # frames sent before our 101
            super().data_received(bytes(early))

    def pause_writing(self) -> None:
        super().pause_writing()
        self._deadline.start(self.write_timeout)

    def resume_writing(self) -> None:
        super().resume_writing()
        self._deadline.stop()

    def connection_lost(self, exc: Exception | None) -> None:
        self._deadline.stop()
        super().connection_lost(exc)

    def _stuck(self) -> None:
        """Drop a client that stopped reading; 4008 is what the gateway reports."""
        self.drop(CloseCode.SLOW_CONSUMER, stuck_reason(self.write_timeout))

    def drop(self, code: int, reason: str) -> None:
        """Fail the connection with ``code`` (what the gateway reports) and hang up."""
        if self.protocol.close_sent is None:
            self.protocol.fail(code, reason)
        self.transport.abort()


def _connection_class(timeout: float) -> type[_Connection]:
    """The connection class of one server: its write deadline is a class attribute."""

    class Connection(_Connection):
        write_timeout = timeout

    return Connection


class _SocketTransport:
    """A :class:`Connection`'s way out: replies go straight, notifications via its flow.

    Most connections of a game only ever receive replies, so an idle one
    carries no outbox and no writer task.
    """

    __slots__ = ("_conn", "_core", "_dispatcher", "_flow", "_shaped", "_writer", "_ws",
                 "direct")

    def __init__(self, core: Core, ws: ServerConnection) -> None:
        self._core = core
        self._dispatcher = core.dispatcher
        self._ws = ws
        routing = core.config.routing
        self.direct = direct_replies(routing)  # False: ask reply() first
        self._shaped = routing.outbound_rate is not None  # replies are charged to a bucket
        self._conn: Connection | None = None
        self._flow: Flow | None = None
        self._writer: asyncio.Task[None] | None = None

    def bind(self, conn: Connection) -> None:
        self._conn = conn

    def _start(self) -> Flow:
        assert self._conn is not None
        wake = asyncio.Event()
        flow = self._flow = Flow(self._core, self._conn, wake.set)
        self._writer = asyncio.get_running_loop().create_task(self._drain(flow, wake))
        return flow

    def send(self, data: bytes, binary: bool = False, *, lane: Lane = Lane.EVENTS,
             policy: Policy | None = None, key: Hashable | None = None) -> bool:
        return (self._flow or self._start()).put(data, binary, lane, policy, key)

    def reply(self, data: bytes) -> bool:
        """Write this reply now (True, charged), or was it queued (lanes off)? With no
        flow yet and no bucket to charge, nothing waits ahead of it: no flow (and no
        writer task) is made."""
        if self._flow is None and not self._shaped:
            return True
        return (self._flow or self._start()).reply(data)

    async def _drain(self, flow: Flow, wake: asyncio.Event) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await wake.wait()
                wake.clear()
                while (data := flow.next()) is not None:
                    await self.write(data, type(data) is BinaryMessage)

    async def write(self, data: bytes, binary: bool = False) -> None:
        """Write one text (or ``binary``) message and count it."""
        await self._ws.send(data, text=not binary)
        assert self._conn is not None
        self._dispatcher.sent(self._conn, data, binary)

    def close(self, code: int, reason: str) -> None:
        asyncio.get_running_loop().create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        """``websockets``' close waits, with no limit, for a full socket to drain before
        its Close frame goes: a slow consumer closed 4008 after its grace would stay until
        the write deadline. Past the close timeout it is dropped, as a stuck one is."""
        ws = self._ws
        try:
            await asyncio.wait_for(ws.close(code, reason), self._core.close_timeout)
        except TimeoutError:
            assert isinstance(ws, _Connection)
            ws.drop(code, reason)

    def queued(self) -> tuple[int, int] | None:
        return None if self._flow is None else self._flow.queued()

    def lane_bytes(self, lane: Lane) -> int:
        return 0 if self._flow is None else self._flow.outbox.lane_bytes(lane)

    async def aclose(self) -> None:
        """Stop the writer and the flow's clocks when the connection is gone."""
        if self._flow is not None:
            self._flow.close()
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer


class WebsocketsDriver:
    """Serves a :class:`Core` with ``websockets.asyncio.server``."""

    def __init__(self, core: Core) -> None:
        self._core = core
        self._server: Server | None = None
        self._admitted: weakref.WeakKeyDictionary[ServerConnection, Admission] = (
            weakref.WeakKeyDictionary())

    async def start(self) -> None:
        config, close_timeout = self._core.config, self._core.close_timeout
        self._server = await serve(
            self._handle,
            config.host,
            config.port,
            process_request=self._process_request,
            select_subprotocol=_select_subprotocol,
            compression=None,
            extensions=deflate_extensions(config.routing),  # RFC 7692, when enabled
            max_size=config.limits.max_message_size,
            ping_interval=config.heartbeat.interval,
            # A dead peer never closes its TCP side either: the heartbeat timeout
            # covers the wait for the pong *and* the wait for the close, so it
            # is gone within interval + timeout.
            ping_timeout=config.heartbeat.timeout - close_timeout,
            close_timeout=close_timeout,
            server_header="rtctl",
            logger=_LOGGER,
            create_connection=_connection_class(config.limits.write_timeout),
        )

    @property
    def port(self) -> int:
        assert self._server is not None, "the driver is not started"
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self, code: int, reason: str) -> None:
        if self._server is not None:
            self._server.close(code=code, reason=reason)
            await self._server.wait_closed()

    def _process_request(self, ws: ServerConnection, request: Request) -> WsResponse | None:
        headers = request.headers
        answer = self._core.front.answer(UpgradeRequest(
            target=request.path, authorizations=headers.get_all("Authorization"),
            subprotocols=offered_subprotocols(headers.get_all("Sec-WebSocket-Protocol")),
            remote=address(ws.remote_address), hosts=headers.get_all("Host")))
        if isinstance(answer, Admission):
            self._admitted[ws] = answer
            return None
        return WsResponse(answer.status, answer.reason,
                          Headers([*answer.headers, ("Connection", "close")]), answer.body)

    async def _handle(self, ws: ServerConnection) -> None:
        admission = self._admitted.pop(ws)
        if admission.listener:
            with self._core.tap.subscribe(existing=self._core.open_connections()) as sub:
                await _stream(ws, sub)
            return
        core = self._core
        dispatcher = core.dispatcher
        transport = _SocketTransport(core, ws)
        direct = transport.direct
        try:
            conn = core.open(admission.identity, transport, remote=address(ws.remote_address),
                             local=address(ws.local_address), subprotocol=ws.subprotocol)
        except ConnectionRefused as exc:
            await ws.close(CloseCode.TRY_AGAIN_LATER, exc.detail[:120])
            return
        transport.bind(conn)
        inflight: asyncio.Semaphore | None = None  # made when the first async call comes
        try:
            await core.opened(conn)
            # The read loop is inline: this frame lives as long as the connection,
            # and one frame per idle connection is cheaper than two.
            burst_ends = 0.0  # while messages wait already read, when to let others run
            async for message in ws:
                if type(message) is not str:
                    conn.close(CloseCode.UNSUPPORTED_DATA, "binary frames are not accepted")
                    await ws.wait_closed()  # returning now would close with 1000 instead
                    return
                out = dispatcher.receive(conn, message)
                if type(out) is bytes:  # the hot path, inlined
                    if direct or transport.reply(out):
                        await ws.send(out, text=True)
                        dispatcher.sent(conn, out)
                elif isinstance(out, Deferred):
                    if out.ordered:
                        await _deliver(transport, dispatcher, await out.pending)
                    else:
                        if inflight is None:
                            inflight = asyncio.Semaphore(core.config.limits.max_inflight)
                        await inflight.acquire()
                        asyncio.get_running_loop().create_task(
                            _finish(transport, dispatcher, out, inflight))
                elif out is not None:
                    await _deliver(transport, dispatcher, out)
                # A message already read is taken without suspending: a burst would
                # hold the loop for as long as it lasts, so it yields every LOOP_SLICE.
                if not ws.recv_messages.frames:
                    burst_ends = 0.0
                elif not burst_ends:
                    burst_ends = time.perf_counter() + LOOP_SLICE
                elif time.perf_counter() > burst_ends:
                    await asyncio.sleep(0)
                    burst_ends = 0.0
        except ConnectionClosed:
            pass
        finally:
            await transport.aclose()
            code, reason = close_info(ws)
            await core.closed(conn, code, reason)


async def _deliver(transport: _SocketTransport, dispatcher: Dispatcher,
                   out: bytes | Timed | None) -> None:
    """Write a reply (or queue it, lanes off); a profiled one has its write timed and its
    stages recorded."""
    if isinstance(out, Timed):
        writing = time.perf_counter_ns()
        if out.data is not None and (transport.direct or transport.reply(out.data)):
            await transport.write(out.data)
        dispatcher.record(out.sample, time.perf_counter_ns() - writing)
    elif out is not None and (transport.direct or transport.reply(out)):
        await transport.write(out)


async def _finish(transport: _SocketTransport, dispatcher: Dispatcher, deferred: Deferred,
                  inflight: asyncio.Semaphore) -> None:
    try:
        await _deliver(transport, dispatcher, await deferred.pending)
    except ConnectionClosed:
        pass
    finally:
        inflight.release()


def _select_subprotocol(_ws: ServerConnection,
                        offered: Sequence[Subprotocol]) -> Subprotocol | None:
    chosen = select_subprotocol(offered)
    return None if chosen is None else Subprotocol(chosen)


async def _pump(ws: ServerConnection, subscription: Subscription) -> None:
    while True:
        events = await subscription.next_batch()
        await ws.send(b"\n".join(jsonrpc.dumps(e.to_json()) for e in events), text=True)


async def _stream(ws: ServerConnection, subscription: Subscription) -> None:
    """Send ``subscription``'s events to a listener until either side closes.

    Each WebSocket text message carries one or more events, one JSON object
    per line. A listener has nothing to say; reading is how its close is seen.
    """
    pump = asyncio.get_running_loop().create_task(_pump(ws, subscription))
    try:
        async for _ in ws:
            pass
    except ConnectionClosed:
        pass
    finally:
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
            await pump


def create(core: Core) -> WebsocketsDriver:
    return WebsocketsDriver(core)
