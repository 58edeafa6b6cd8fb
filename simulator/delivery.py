"""Deliver items at the times a link chose, in that order, without blocking the reader.

Each delivery is one ``loop.call_at`` at the model's time; the timer only moves
due items to a ready queue, from which one writer task sends them in order. The
reader never sleeps per message, so a delayed message never holds back the
reading of the next one, and ties between equal times cannot reorder (the heap
is keyed by time, then arrival).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["DeliveryQueue"]

T = TypeVar("T")


class DeliveryQueue(Generic[T]):
    """Items ``put`` with a loop time come out through ``send`` at that time, in time order."""

    def __init__(self, send: Callable[[T], Awaitable[None]]) -> None:
        self._loop = asyncio.get_running_loop()
        self._send = send
        self._heap: list[tuple[float, int, T]] = []
        self._seq = itertools.count()
        self._ready: deque[T] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._writer = self._loop.create_task(self._write())

    @property
    def idle(self) -> bool:
        """Nothing waiting or being sent: a new item may bypass the queue."""
        return self._idle.is_set()

    def put(self, at: float, item: T) -> None:
        """Send ``item`` at loop time ``at`` (at once if that has passed)."""
        self._idle.clear()
        heapq.heappush(self._heap, (at, next(self._seq), item))
        self._loop.call_at(at, self._release, at)

    def _release(self, until: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= until:
            self._ready.append(heapq.heappop(heap)[2])
        if self._ready:
            self._wake.set()

    async def _write(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._ready:
                await self._send(self._ready.popleft())
            if not self._heap:
                self._idle.set()

    async def drain(self, timeout: float) -> None:
        """Wait until everything queued was sent, at most ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            pass

    def close(self) -> None:
        """Stop sending; undelivered items are discarded."""
        self._writer.cancel()
        self._heap.clear()
        self._ready.clear()
