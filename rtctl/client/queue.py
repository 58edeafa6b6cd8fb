"""The send queue: what waits while the client is (re)connecting. No I/O.

While the client is connected and the queue is empty, messages go straight
to the socket. Otherwise they wait here, in order, and are written after the
next connection opens, before the client reports ``connected`` (so nothing
sent later can overtake them).

The queue is bounded in messages and in bytes. What happens at the bound is
the caller's choice (:class:`Overflow`):

* ``REJECT`` (the default): the new message is refused with
  :class:`~rtctl.client.errors.QueueFull`. Nothing already accepted is lost,
  and the caller learns at once.
* ``DROP_OLDEST``: the oldest messages are pushed out to make room; calls
  among them fail with :class:`~rtctl.client.errors.MessageDropped`. Right for
  a stream of position updates, where only the newest matters.

A single message larger than ``max_bytes`` is refused under either policy.
The counters (:class:`QueueCounters`) say how many messages were accepted,
sent, rejected and dropped, and the high-water mark.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field

from rtctl.client.errors import QueueFull
from rtctl.exceptions import ConfigError
from rtctl.protocol.jsonrpc import RequestId

__all__ = [
    "DEFAULT_MAX_QUEUED_BYTES",
    "DEFAULT_MAX_QUEUED_MESSAGES",
    "DEFAULT_OVERFLOW",
    "Overflow",
    "QueueCounters",
    "QueueLimits",
    "Queued",
    "SendQueue",
]


class Overflow(enum.Enum):
    REJECT = "reject"
    DROP_OLDEST = "drop_oldest"


DEFAULT_MAX_QUEUED_MESSAGES = 256  # several seconds of a 60 Hz input stream
DEFAULT_MAX_QUEUED_BYTES = 256 * 1024  # four of the gateway's maximum messages (64 KiB)
DEFAULT_OVERFLOW = Overflow.REJECT  # losing nothing silently is the safe default


@dataclass(frozen=True, kw_only=True)
class QueueLimits:
    """The bound of the send queue and what happens when it is reached."""

    max_messages: int = DEFAULT_MAX_QUEUED_MESSAGES
    max_bytes: int = DEFAULT_MAX_QUEUED_BYTES
    overflow: Overflow = DEFAULT_OVERFLOW

    def __post_init__(self) -> None:
        if self.max_messages < 1 or self.max_bytes < 1:
            raise ConfigError("the send queue needs room for at least one message")


@dataclass(eq=False, slots=True)
class Queued:
    """One WebSocket message waiting to be sent; ``ids`` are the calls it carries."""

    data: bytes
    ids: tuple[RequestId, ...] = ()


@dataclass(slots=True)
class QueueCounters:
    accepted: int = 0
    sent: int = 0
    rejected: int = 0
    dropped: int = 0
    high_water: int = 0


@dataclass(eq=False)
class SendQueue:
    """A bounded FIFO of :class:`Queued` messages with an overflow policy."""

    limits: QueueLimits = field(default_factory=QueueLimits)
    counters: QueueCounters = field(default_factory=QueueCounters)
    _items: deque[Queued] = field(default_factory=deque, init=False)
    _bytes: int = field(default=0, init=False)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    def put(self, item: Queued) -> list[Queued]:
        """Queue ``item``; return what was dropped for it, or raise :class:`QueueFull`."""
        limits = self.limits
        size = len(item.data)
        if size > limits.max_bytes:
            self.counters.rejected += 1
            raise QueueFull(f"a {size}-byte message exceeds the send queue's "
                            f"{limits.max_bytes} bytes")
        dropped: list[Queued] = []
        while (len(self._items) >= limits.max_messages
               or self._bytes + size > limits.max_bytes):
            if limits.overflow is Overflow.REJECT:
                self.counters.rejected += 1
                raise QueueFull(f"the send queue is full ({len(self._items)} messages, "
                                f"{self._bytes} bytes)")
            oldest = self._items.popleft()
            self._bytes -= len(oldest.data)
            self.counters.dropped += 1
            dropped.append(oldest)
        self._items.append(item)
        self._bytes += size
        self.counters.accepted += 1
        self.counters.high_water = max(self.counters.high_water, len(self._items))
        return dropped

    def popleft(self) -> Queued:
        """Take the oldest message for sending (counted as sent)."""
        item = self._items.popleft()
        self._bytes -= len(item.data)
        self.counters.sent += 1
        return item

    def putback(self, item: Queued) -> None:
        """Return a message :meth:`popleft` gave out that could not be written.

        It goes back to the front, over the bound if need be: it was within
        the bound when it was accepted, and order matters more.
        """
        self._items.appendleft(item)
        self._bytes += len(item.data)
        self.counters.sent -= 1

    def discard(self, item: Queued) -> bool:
        """Remove ``item`` if it is still waiting (its call timed out); True if it was."""
        try:
            self._items.remove(item)
        except ValueError:
            return False
        self._bytes -= len(item.data)
        return True

    def clear(self) -> list[Queued]:
        """Empty the queue (the client gave up or closed); return what was in it."""
        items = list(self._items)
        self._items.clear()
        self._bytes = 0
        return items
