"""The outbound queue of one connection: notifications wait here to be written.

Replies are written directly by the connection's reader (the fast path, with
the socket's own backpressure). Everything pushed from elsewhere (presence,
rooms, a handler's ``ctx.peer.notify``) goes through the outbox, so the pusher
never blocks on a slow client. The queue is bounded in bytes; a client that
reads too slowly to keep it under the bound is closed with 4008 (slow consumer)
rather than letting the gateway's memory grow: it reconnects and recovers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable

__all__ = ["Outbox"]


class Outbox:
    """A bounded byte queue drained by one lazily started writer task."""

    def __init__(
        self,
        write: Callable[[bytes], Awaitable[None]],
        *,
        max_bytes: int,
    ) -> None:
        self._write = write
        self._max_bytes = max_bytes
        self._queue: deque[bytes] = deque()
        self._bytes = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
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
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())
        self._wake.set()
        return True

    async def _drain(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                data = self._queue.popleft()
                self._bytes -= len(data)
                await self._write(data)

    async def close(self) -> None:
        """Stop the writer; what is still queued is dropped with the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
