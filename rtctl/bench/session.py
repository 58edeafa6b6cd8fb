"""One benchmark connection: JSON-RPC 2.0 requests matched to replies by id.

Any server that answers JSON-RPC over WebSocket can be measured: a reply is
any message carrying the ``id`` of a pending request (a bare echo server that
sends the request back counts as an answer), ``error`` in it is an
``rpc CODE`` failure (JSON-RPC 2.0 §5.1). Messages without an id are
notifications and go to ``on_notification``.

Requests are written without waiting for their replies; a reader task does
the matching and tells the :class:`~rtctl.bench.results.Recorder`. When the
connection drops, every pending request fails as ``closed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from rtctl.bench.results import Recorder
from rtctl.protocol import jsonrpc
from rtctl.protocol.upgrade import SUBPROTOCOL

__all__ = ["CLOSED", "ConnectFailed", "Notification", "Session", "error_class"]

CLOSED = "closed"
OPEN_TIMEOUT = 10.0

Notification = Callable[[dict[str, Any], float], None]


class ConnectFailed(Exception):
    """The connection could not be opened; ``kind`` is its error class."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def error_class(exc: BaseException) -> str:
    """A short, countable name for why a connection failed."""
    if isinstance(exc, InvalidStatus):
        return f"http {exc.response.status_code}"
    if isinstance(exc, TimeoutError):
        return "connect timeout"
    if isinstance(exc, ConnectionClosed):
        return CLOSED
    return "connect"


class Session:
    """A connection whose reader matches replies to pending requests."""

    def __init__(self, ws: ClientConnection, recorder: Recorder,
                 on_notification: Notification | None) -> None:
        self.ws = ws
        self._recorder = recorder
        self._on_notification = on_notification
        self._ids = itertools.count(1)
        # id → (intended start, measured?, waiter of a closed-loop caller)
        self._pending: dict[int, tuple[float, bool, asyncio.Future[None] | None]] = {}
        self.last_notification = 0.0  # time.monotonic() of the last one
        self._idle = asyncio.Event()  # set while nothing is pending
        self._idle.set()
        self.closed = asyncio.get_running_loop().create_future()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def open(cls, url: str, token: str | None, recorder: Recorder,
                   on_notification: Notification | None = None) -> Session:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        try:
            async with asyncio.timeout(OPEN_TIMEOUT):
                ws = await connect(url, additional_headers=headers, compression=None,
                                   subprotocols=[Subprotocol(SUBPROTOCOL)], max_size=None,
                                   ping_interval=None)
        except (OSError, TimeoutError, InvalidStatus, ConnectionClosed) as exc:
            raise ConnectFailed(error_class(exc)) from None
        return cls(ws, recorder, on_notification)

    async def send(self, method: str, params: Any, intended: float,
                   wait: bool = False) -> asyncio.Future[None] | None:
        """Write a request meant to start at ``intended``; with ``wait``, a future of its reply."""
        if self.closed.done():
            return None
        request_id = next(self._ids)
        measured = self._recorder.expect(intended)
        waiter = asyncio.get_running_loop().create_future() if wait else None
        self._pending[request_id] = (intended, measured, waiter)
        self._idle.clear()
        with contextlib.suppress(ConnectionClosed):  # the reader fails what is pending
            await self.ws.send(jsonrpc.dumps({"jsonrpc": "2.0", "method": method,
                                              "params": params, "id": request_id}), text=True)
        return waiter

    async def call(self, method: str, params: Any, intended: float) -> bool:
        """Send a request and wait for its reply; False if the connection went first."""
        waiter = await self.send(method, params, intended, wait=True)
        if waiter is None:
            return False
        await asyncio.wait([waiter, self.closed], return_when=asyncio.FIRST_COMPLETED)
        return waiter.done()

    async def notify(self, method: str, params: Any) -> None:
        """Send a notification (JSON-RPC 2.0 §4.1: no id, no reply)."""
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(jsonrpc.dumps({"jsonrpc": "2.0", "method": method,
                                              "params": params}), text=True)

    async def _read(self) -> None:
        recorder, pending, notify = self._recorder, self._pending, self._on_notification
        try:
            async for raw in self.ws:
                now = time.monotonic()
                message = jsonrpc.loads(raw)
                if not isinstance(message, dict):
                    continue
                entry = pending.pop(message.get("id"), None)  # type: ignore[arg-type]
                if entry is None:
                    if notify is not None and "method" in message:
                        self.last_notification = now
                        notify(message, now)
                    continue
                intended, measured, waiter = entry
                if measured:
                    error = message.get("error")
                    if error is None:
                        recorder.completed(intended, now)
                    else:
                        recorder.failed(f"rpc {error.get('code')}"
                                        if isinstance(error, dict) else "rpc")
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
                if not pending:
                    self._idle.set()
        except ConnectionClosed:
            pass
        finally:
            self._fail_pending()

    def _fail_pending(self) -> None:
        lost = sum(measured for _, measured, _ in self._pending.values())
        if lost:
            self._recorder.failed(CLOSED, lost)
        self._pending.clear()
        self._idle.set()
        if not self.closed.done():
            self.closed.set_result(None)

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def drain(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for the pending replies."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)

    async def quiet(self, quiet: float, timeout: float) -> None:
        """Wait until no notification came for ``quiet`` s, or ``timeout`` s have passed."""
        deadline = time.monotonic() + timeout
        while not self.closed.done() and (now := time.monotonic()) < deadline:
            idle_until = self.last_notification + quiet
            if now >= idle_until:
                return
            await asyncio.wait([self.closed], timeout=min(idle_until, deadline) - now)

    def abort(self) -> None:
        """Drop the connection without a closing handshake (a lost network)."""
        self.ws.transport.abort()

    async def close(self) -> None:
        """Close; what is still pending is then neither completed nor failed: ``lost``."""
        self._pending.clear()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 2.0)
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
