"""The outbound queue of one connection: notifications wait here to be written.

Replies are written directly by the connection's reader (the fast path, with
the socket's own backpressure). Everything pushed from elsewhere (presence,
rooms, a handler's ``ctx.peer.notify``) goes through the outbox, so the pusher
never blocks on a slow client. The queue is bounded in bytes; a client that
reads too slowly to keep it under the bound is closed with 4008 (slow consumer)
rather than letting the gateway's memory grow: it reconnects and recovers.

Sans-I/O: the transport driver drains it (a writer task, or a flush when the
socket can take more); the queue itself only keeps order and counts bytes.

A client that stops reading altogether fills its socket before any queue: the
transport pauses writing, and then neither a reply, a ping nor a Close frame
gets through, so no timeout that waits on the socket ever fires. The
:class:`WriteDeadline` is the driver's clock for that: once the socket has
taken no bytes for ``write_timeout`` seconds the driver drops the connection,
reported with 4008 (the peer, not reading, can only see the TCP reset).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from rtctl.units import format_duration

__all__ = ["Outbox", "WriteDeadline", "stuck_reason"]


class Outbox:
    """A bounded FIFO of encoded messages; once it overflows it takes nothing more."""

    __slots__ = ("_bytes", "_max_bytes", "_queue", "overflowed")

    def __init__(self, *, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._queue: deque[bytes] = deque()
        self._bytes = 0
        self.overflowed = False

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, data: bytes) -> bool:
        """Queue ``data``; False (and nothing queued) once the bound is crossed."""
        if self.overflowed:
            return False
        if self._bytes + len(data) > self._max_bytes:
            self.overflowed = True
            return False
        self._queue.append(data)
        self._bytes += len(data)
        return True

    def pop(self) -> bytes | None:
        """The oldest message, or None when the queue is empty."""
        if not self._queue:
            return None
        data = self._queue.popleft()
        self._bytes -= len(data)
        return data

    def clear(self) -> None:
        """Drop what waits (the connection is gone)."""
        self._queue.clear()
        self._bytes = 0


def stuck_reason(timeout: float) -> str:
    """The close reason of a connection dropped by its :class:`WriteDeadline`."""
    return f"not reading: the socket took nothing for {format_duration(timeout)}"


class WriteDeadline:
    """Calls ``on_stuck`` once the socket stays paused (``pause_writing``) for ``timeout`` s.

    Any progress resumes writing (the buffer drained below its low-water mark)
    and stops the clock, so a client that reads slowly but steadily is never
    dropped by it; only one that stopped.
    """

    __slots__ = ("_on_stuck", "_timeout", "_timer")

    def __init__(self, timeout: float, on_stuck: Callable[[], None]) -> None:
        self._timeout = timeout
        self._on_stuck = on_stuck
        self._timer: asyncio.TimerHandle | None = None

    def paused(self) -> None:
        """The socket's buffer is full: start the clock (if it is not running)."""
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._timeout, self._fire)

    def resumed(self) -> None:
        """The socket took bytes again, or is gone: stop the clock."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        self._timer = None
        self._on_stuck()
