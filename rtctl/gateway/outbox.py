"""The outbound queue of one connection: notifications wait here to be written.

Replies are written directly by the connection's reader (the fast path, with
the socket's own backpressure). Everything pushed from elsewhere (presence,
rooms, a handler's ``ctx.peer.notify``) goes through the outbox, so the pusher
never blocks on a slow client. The queue is bounded in bytes; a client that
reads too slowly to keep it under the bound is closed with 4008 (slow consumer)
rather than letting the gateway's memory grow: it reconnects and recovers.

Sans-I/O: the transport driver drains it (a writer task, or a flush when the
socket can take more); the queue itself only keeps order and counts bytes.
Binary messages (``rtctl.v1.binary``'s state frames) wait in the same queue,
in order with the text ones and under the same bound, each as a
:class:`BinaryMessage`: text, the common case, waits as plain bytes and costs
nothing more.

A client that stops reading altogether fills its socket before any queue; the
drivers' :class:`~rtctl.gateway.transports.WriteDeadline` handles that.
"""

from __future__ import annotations

from collections import deque

from rtctl.protocol.frames import BinaryMessage

__all__ = ["BinaryMessage", "Outbox"]


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

    def put(self, data: bytes, binary: bool = False) -> bool:
        """Queue ``data`` (text or ``binary``); False (nothing queued) past the bound."""
        if self.overflowed:
            return False
        if self._bytes + len(data) > self._max_bytes:
            self.overflowed = True
            return False
        if binary and type(data) is not BinaryMessage:
            data = BinaryMessage(data)  # a frame made for many is one already: no copy
        self._queue.append(data)
        self._bytes += len(data)
        return True

    def pop(self) -> bytes | None:
        """The oldest message (a :class:`BinaryMessage` if binary), or None when empty."""
        if not self._queue:
            return None
        data = self._queue.popleft()
        self._bytes -= len(data)
        return data

    def clear(self) -> None:
        """Drop what waits (the connection is gone)."""
        self._queue.clear()
        self._bytes = 0

