"""One benchmark connection: JSON-RPC 2.0 requests matched to replies by id, on picows.

Any server that answers JSON-RPC over WebSocket can be measured: a reply is
any message carrying the ``id`` of a pending request (a bare echo server that
sends the request back counts as an answer), ``error`` in it is an
``rpc CODE`` failure (JSON-RPC 2.0 §5.1). Other messages with a ``method``
are notifications and go to ``on_notification``.

A :class:`Session` is a picows listener: each frame arrives in
:meth:`Session.on_ws_frame`, a plain callback from the event loop, which
matches the reply and tells the :class:`~rtctl.bench.results.Recorder` (no
task and no await per message). In a closed loop (:meth:`Session.repeat`) the
same callback sends the next request. Requests are bytes: the method and
params are encoded once (:func:`request_head`) and each request appends its id,
the next value of the connection's counter, so every id is unique and every
reply is checked. When the connection drops, every pending request fails as
``closed``; a request left unanswered for :data:`REPLY_TIMEOUT` (a message lost
by a simulated network, a server that ignores it) fails as ``timeout``, so a
closed loop or a set-up call never waits forever.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from picows import (
    WSCloseCode,
    WSError,
    WSFrame,
    WSHandshakeError,
    WSListener,
    WSMsgType,
    WSTransport,
    ws_connect,
)

from rtctl.bench.results import Recorder
from rtctl.client.link import upgrade_headers
from rtctl.protocol import jsonrpc
from rtctl.protocol.upgrade import SUBPROTOCOL

__all__ = ["CLOSED", "CONNECT", "CONNECT_TIMEOUT", "OPEN_TIMEOUT", "REPLY_TIMEOUT", "TIMEOUT",
           "ConnectFailed", "Notification", "Session", "error_class", "is_connect_error",
           "request_head"]

CLOSED = "closed"
TIMEOUT = "timeout"
CONNECT = "connect"  # nothing accepted the TCP connection, or the name did not resolve
CONNECT_TIMEOUT = "connect timeout"
_HTTP = "http "  # + the status of a refused upgrade: "http 429"
OPEN_TIMEOUT = 10.0
REPLY_TIMEOUT = 10.0  # a request is given up between one and two of these after it was sent
CLOSE_TIMEOUT = 2.0  # for the server's half of the closing handshake

Notification = Callable[[dict[str, Any], float], None]
# Told the time.monotonic() at which the reply came, or None when it was given up.
Reply = Callable[[float | None], None]

_TEXT, _BINARY = WSMsgType.TEXT, WSMsgType.BINARY
_CONTINUATION, _CLOSE = WSMsgType.CONTINUATION, WSMsgType.CLOSE


def request_head(method: str, params: Any = None) -> bytes:
    """A message up to where its id goes: encode it once, send it many times.

    ``params`` None leaves the member out (JSON-RPC 2.0 §4: it MAY be omitted).
    """
    head = b'{"jsonrpc":"2.0","method":' + jsonrpc.dumps(method)
    return head if params is None else head + b',"params":' + jsonrpc.dumps(params)


class ConnectFailed(Exception):
    """The connection could not be opened; ``kind`` is its error class."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def error_class(exc: BaseException) -> str:
    """A short, countable name for why a connection failed."""
    if isinstance(exc, WSHandshakeError) and exc.response is not None:
        return f"{_HTTP}{int(exc.response.status)}"
    if isinstance(exc, TimeoutError):
        return CONNECT_TIMEOUT
    return CONNECT


def is_connect_error(kind: str) -> bool:
    """Whether the error class ``kind`` is a connection that was never opened."""
    return kind in (CONNECT, CONNECT_TIMEOUT) or kind.startswith(_HTTP)


class Session(WSListener):
    """A connection whose frame callback matches replies to pending requests."""

    # Slots: the callback's attribute reads are the fast kind on a subclass of a C type.
    __slots__ = ("_drained", "_expiry", "_fragments", "_next_id", "_on_notification",
                 "_pending", "_recorder", "_reply_timeout", "_unanswered_from", "closed",
                 "last_notification", "transport")

    transport: WSTransport  # set when the handshake completes, before open() returns

    def __init__(self, recorder: Recorder, on_notification: Notification | None,
                 reply_timeout: float = REPLY_TIMEOUT) -> None:
        self._recorder = recorder
        self._on_notification = on_notification
        self._reply_timeout = reply_timeout
        self._expiry: asyncio.TimerHandle | None = None  # runs while requests are pending
        self._unanswered_from = 1  # ids from here on were sent since the last expiry round
        self._next_id = 1
        # request id → (intended start, measured?, what to do with the reply time)
        self._pending: dict[int, tuple[float, bool, Reply | None]] = {}
        self._fragments: list[bytes] = []  # of a message split into frames
        self._drained: asyncio.Future[None] | None = None  # set while drain() waits
        self.last_notification = 0.0  # time.monotonic() of the last one
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @classmethod
    async def open(cls, url: str, token: str | None, recorder: Recorder,
                   on_notification: Notification | None = None, *,
                   reply_timeout: float = REPLY_TIMEOUT) -> Session:
        headers = {**upgrade_headers(token), "Sec-WebSocket-Protocol": SUBPROTOCOL}
        try:
            async with asyncio.timeout(OPEN_TIMEOUT):
                _, session = await ws_connect(
                    lambda: cls(recorder, on_notification, reply_timeout), url,
                    extra_headers=headers, websocket_handshake_timeout=OPEN_TIMEOUT)
        except (OSError, TimeoutError, WSError) as exc:
            raise ConnectFailed(error_class(exc)) from None
        if not isinstance(session, Session):  # the connection went during the handshake
            raise ConnectFailed(CLOSED)
        return session

    # -- picows callbacks ------------------------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is _TEXT and frame.fin:  # a whole message in one frame: the usual case
            self._message(frame.get_payload_as_bytes())
        elif kind is _CONTINUATION or kind is _TEXT or kind is _BINARY:
            self._fragments.append(frame.get_payload_as_bytes())
            if frame.fin:
                payload = b"".join(self._fragments)
                self._fragments.clear()
                self._message(payload)
        elif kind is _CLOSE:  # the server closes (or answers our close): finish the handshake
            transport.send_close(WSCloseCode.OK)
            transport.disconnect()
        # pings are answered by picows; pongs need nothing

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        lost = sum(measured for _, measured, _ in self._pending.values())
        if lost:
            self._recorder.failed(CLOSED, lost)
        self._pending.clear()
        self._wake_drain()
        if self._expiry is not None:
            self._expiry.cancel()
        if not self.closed.done():
            self.closed.set_result(None)

    def _message(self, payload: bytes) -> None:
        now = time.monotonic()
        try:
            message = jsonrpc.loads(payload)
        except ValueError:
            return  # not JSON: answers nothing; what it was meant to answer ends up lost
        if type(message) is not dict:
            return
        request_id = message.get("id")
        entry = self._pending.pop(request_id, None) if type(request_id) is int else None
        if entry is None:
            if self._on_notification is not None and "method" in message:
                self.last_notification = now
                self._on_notification(message, now)
            return
        intended, measured, then = entry
        if measured:
            error = message.get("error")
            if error is None:
                self._recorder.completed(intended, now)
            else:
                self._recorder.failed(f"rpc {error.get('code')}"
                                      if isinstance(error, dict) else "rpc")
        if then is not None:
            then(now)
        if not self._pending:
            self._wake_drain()

    def _wake_drain(self) -> None:
        if self._drained is not None:
            if not self._drained.done():
                self._drained.set_result(None)
            self._drained = None

    # -- sending ---------------------------------------------------------------------------

    def _expire(self) -> None:
        """Give up the requests sent before the previous round: one to two timeouts old.

        Ids rise with sending and the dict keeps insertion order, so the oldest
        come first and a round costs only what it gives up; no timer per request.
        """
        pending, limit = self._pending, self._unanswered_from
        while pending and (request_id := next(iter(pending))) < limit:
            _, measured, then = pending.pop(request_id)
            if measured:
                self._recorder.failed(TIMEOUT)
            if then is not None:
                then(None)
        self._unanswered_from = self._next_id
        self._expiry = None
        if pending:
            self._schedule_expiry()
        else:
            self._wake_drain()

    def _schedule_expiry(self) -> None:
        self._expiry = asyncio.get_running_loop().call_later(self._reply_timeout, self._expire)

    def _request(self, head: bytes, intended: float, then: Reply | None) -> None:
        request_id = self._next_id
        self._next_id = request_id + 1
        if self._expiry is None:
            self._unanswered_from = request_id
            self._schedule_expiry()
        self._pending[request_id] = (intended, self._recorder.expect(intended), then)
        self.transport.send(_TEXT, b'%b,"id":%d}' % (head, request_id))

    def send(self, head: bytes, intended: float) -> None:
        """Send the request ``head`` (see :func:`request_head`) meant to start at ``intended``."""
        if not self.closed.done():
            self._request(head, intended, None)

    async def call(self, head: bytes, intended: float) -> bool:
        """Send a request and wait for its reply; False if it was given up or the
        connection went first."""
        if self.closed.done():
            return False
        replied: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._request(head, intended, lambda at: replied.set_result(at is not None))
        either: list[asyncio.Future[Any]] = [replied, self.closed]
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        return replied.done() and replied.result()

    async def repeat(self, head: bytes, until: float) -> None:
        """Closed loop: send the request now and again as each reply comes, until ``until``.

        Each request is meant to start when the reply before it came. Returns once
        the last request was answered, or the connection went.
        """
        if self.closed.done():
            return
        finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def again(at: float | None) -> None:
            now = time.monotonic() if at is None else at  # given up: go on from now
            if now < until:
                self._request(head, now, again)
            else:
                finished.set_result(None)

        again(time.monotonic())
        await asyncio.wait([finished, self.closed], return_when=asyncio.FIRST_COMPLETED)

    def notify(self, head: bytes) -> None:
        """Send the notification ``head`` (JSON-RPC 2.0 §4.1: no id, no reply)."""
        if not self.closed.done():
            self.transport.send(_TEXT, head + b"}")

    # -- waiting and closing ---------------------------------------------------------------

    async def drain(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for the pending replies."""
        if self._pending:
            self._drained = asyncio.get_running_loop().create_future()
            await asyncio.wait([self._drained], timeout=timeout)

    async def quiet(self, quiet: float, timeout: float) -> None:
        """Wait until no notification came for ``quiet`` s, or ``timeout`` s have passed."""
        deadline = time.monotonic() + timeout
        while not self.closed.done() and (now := time.monotonic()) < deadline:
            idle_until = self.last_notification + quiet
            if now >= idle_until:
                return
            await asyncio.wait([self.closed], timeout=min(idle_until, deadline) - now)

    async def close(self) -> None:
        """Close; what is still pending is then neither completed nor failed: ``lost``."""
        self._pending.clear()
        if not self.closed.done():
            self.transport.send_close(WSCloseCode.OK)
            await asyncio.wait([self.closed], timeout=CLOSE_TIMEOUT)
            self.transport.disconnect()
