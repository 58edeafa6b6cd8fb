"""The tap hub: every event of a gateway or a simulator, fanned out to listeners.

A server owns one :class:`Tap`; each listener (``rtctl inspect``, the TUI)
holds a :class:`Subscription`, a bounded queue of the events of
:mod:`rtctl.protocol.tap`. The gateway and the simulator both feed it, which is
why it lives here and not in either of them.

Cost is the design constraint. A server checks ``tap.active`` (one attribute)
per message; while nobody listens that is all it pays. With listeners, the hot
path stamps the time and appends a small tuple to each listener's bounded
queue: it never awaits and never encodes. The :class:`FrameSeen` is built
(the JSON decoded to find kind and method) by the listener's own task as it
takes the event, so a frame that is dropped cost next to nothing. A full queue
drops the event and counts it; the listener learns of the gap in-band, a
:class:`Dropped` event at the place it happened. A slow listener therefore
never slows the server down.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Iterable
from typing import Protocol

from rtctl.protocol.tap import Dropped, FrameSeen, Subscribed, TapEvent, unix_us

__all__ = ["BATCH", "DEFAULT_QUEUE", "Party", "Subscription", "Tap"]

DEFAULT_QUEUE = 10_000  # events one listener may fall behind before drops begin
BATCH = 256  # events sent to a listener in one WebSocket message at most


# What the hot path queues: FrameSeen.of's arguments, built into an event by the listener.
_RawFrame = tuple[int, str, str, str, str | bytes, str | None, bool]


class Party(Protocol):
    """Whose frame it is: a gateway :class:`Connection`, or a simulator's proxied pair."""

    @property
    def id(self) -> str: ...

    @property
    def user(self) -> str: ...


class Subscription:
    """One listener's bounded queue. Use it as a context manager, or :meth:`close` it."""

    def __init__(self, tap: Tap, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("a tap queue holds at least one event")
        self.maxsize = maxsize
        self.dropped = 0
        self._tap = tap
        self._queue: deque[TapEvent | _RawFrame] = deque()
        self._unreported = 0
        self._first_drop_us = 0
        self._ready = asyncio.Event()
        self._queue.append(Subscribed(t_us=tap.clock_us(), queue=maxsize))

    def offer(self, t_us: int, item: TapEvent | _RawFrame) -> None:
        """Queue ``item`` or count it dropped; never blocks (the gateway calls this)."""
        queue = self._queue
        if len(queue) >= self.maxsize:
            if not self._unreported:
                self._first_drop_us = t_us
            self.dropped += 1
            self._unreported += 1
            return
        if self._unreported:  # the gap goes where it happened, one slot over the bound
            queue.append(self._drop_report())
        queue.append(item)
        self._ready.set()

    def _drop_report(self) -> Dropped:
        report = Dropped(t_us=self._first_drop_us, count=self._unreported, total=self.dropped)
        self._unreported = 0
        return report

    def take(self, limit: int = BATCH) -> list[TapEvent]:
        """Up to ``limit`` queued events, oldest first, without waiting."""
        events: list[TapEvent] = []
        queue = self._queue
        while queue and len(events) < limit:
            item = queue.popleft()
            events.append(FrameSeen.of(*item) if isinstance(item, tuple) else item)
        if not queue and self._unreported and len(events) < limit:
            events.append(self._drop_report())
        return events

    async def next_batch(self, limit: int = BATCH) -> list[TapEvent]:
        """Wait for at least one event, then return up to ``limit``."""
        while not self._queue and not self._unreported:
            self._ready.clear()
            await self._ready.wait()
        return self.take(limit)

    async def get(self) -> TapEvent:
        """The next event."""
        return (await self.next_batch(1))[0]

    def close(self) -> None:
        """Detach from the tap; closing twice is harmless."""
        self._tap._detach(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Tap:
    """The gateway's side: ``active`` while anyone listens; the hooks feed every listener."""

    def __init__(self, *, clock_us: Callable[[], int] | None = None) -> None:
        self.clock_us = clock_us or unix_us
        self.active = False  # read on every message: a plain attribute, not a property
        self._subscribers: list[Subscription] = []

    def subscribe(self, maxsize: int = DEFAULT_QUEUE,
                  existing: Iterable[TapEvent] = ()) -> Subscription:
        """Attach a listener; ``existing`` (the open connections) come right after Subscribed."""
        subscription = Subscription(self, maxsize)
        for event in existing:
            subscription.offer(event.t_us, event)
        self._subscribers.append(subscription)
        self.active = True
        return subscription

    def _detach(self, subscription: Subscription) -> None:
        with contextlib.suppress(ValueError):
            self._subscribers.remove(subscription)
        self.active = bool(self._subscribers)

    def _publish(self, t_us: int, item: TapEvent | _RawFrame) -> None:
        for subscription in self._subscribers:
            subscription.offer(t_us, item)

    def frame(self, conn: Party, direction: str, data: str | bytes, binary: bool = False) -> None:
        """A text (or ``binary``) message went ``direction`` (:data:`IN` or :data:`OUT`)."""
        t_us = self.clock_us()
        self._publish(t_us, (t_us, conn.id, conn.user, direction, data, None, binary))

    def impaired_frame(self, conn: Party, direction: str, data: str | bytes,
                       impairment: str | None, binary: bool = False) -> None:
        """A message the simulator passed (None), delayed, duplicated or dropped."""
        t_us = self.clock_us()
        self._publish(t_us, (t_us, conn.id, conn.user, direction, data, impairment, binary))

    def publish(self, event: TapEvent) -> None:
        """Any other event, built by the caller (connects, disconnects, refusals)."""
        self._publish(event.t_us, event)
