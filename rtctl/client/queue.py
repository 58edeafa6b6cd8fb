"""The send queue: what waits while the client is (re)connecting, or for a batch. No I/O.

While the client is connected and nothing waits in a message's lane or a
higher one, it goes straight to the socket. Otherwise it waits here, in the
lanes of :mod:`rtctl.protocol.lanes` (calls in ``control``, inputs in
``state``, a game's notifications in ``events`` by default, ``chat``,
``telemetry``), and is written before the client reports ``connected``: lane
by lane, highest first, each lane in order, so nothing sent later overtakes
anything earlier in its lane. The queue is a
:class:`~rtctl.protocol.lanes.LaneQueue`, as the gateway's outbox is.

The queue is bounded in messages and in bytes. What happens at the bound is
each lane's :class:`Overflow` (``QueueLimits.lanes``; lanes not named there
take ``QueueLimits.overflow``):

* ``REJECT`` (calls, and every lane but telemetry, by default): the lane's
  messages are never pushed out. A new message that finds no room is refused
  with :class:`~rtctl.client.errors.QueueFull`; nothing accepted is lost, and
  the caller learns at once.
* ``DROP_OLDEST`` (telemetry by default): the lane's messages make room for
  newer ones, lowest lane and oldest first (as the gateway sheds droppable
  messages); calls among them fail with
  :class:`~rtctl.client.errors.MessageDropped`. Right for a stream where only
  the newest matters.
* ``COALESCE``: each notification carries a key; a newer one with the same
  key replaces the one still waiting, in its place (an entity's latest
  position). Never for calls: each waits for its own reply.

A single message larger than ``max_bytes`` is refused whatever the policy.
The counters (:class:`QueueCounters`) say how many messages were accepted,
sent, rejected, dropped and coalesced, and the high-water mark; the lanes'
(:class:`~rtctl.protocol.lanes.LaneStats`) their depth, wait, drops and
merges.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from rtctl.client.errors import QueueFull
from rtctl.exceptions import ConfigError
from rtctl.protocol.jsonrpc import RequestId
from rtctl.protocol.lanes import Entry, Lane, LaneQueue, LaneStats, Policy

__all__ = [
    "BATCH_MAX_MESSAGES",
    "DEFAULT_LANE_OVERFLOW",
    "DEFAULT_MAX_QUEUED_BYTES",
    "DEFAULT_MAX_QUEUED_MESSAGES",
    "DEFAULT_OVERFLOW",
    "GATEWAY_MAX_MESSAGE",
    "Overflow",
    "QueueCounters",
    "QueueLimits",
    "Queued",
    "SendQueue",
    "frame",
]


class Overflow(enum.Enum):
    REJECT = "reject"
    DROP_OLDEST = "drop_oldest"
    COALESCE = "coalesce"


# The gateway's defaults (rtctl.config: max_message_size, max_batch), which the client
# cannot import (layering); a batch frame stays within both.
GATEWAY_MAX_MESSAGE = 64 * 1024
BATCH_MAX_MESSAGES = 100

DEFAULT_MAX_QUEUED_MESSAGES = 256  # several seconds of a 60 Hz input stream
DEFAULT_MAX_QUEUED_BYTES = 4 * GATEWAY_MAX_MESSAGE
DEFAULT_OVERFLOW = Overflow.REJECT  # losing nothing silently is the safe default
# Telemetry is worth less than room for a call or an input.
DEFAULT_LANE_OVERFLOW: Mapping[Lane, Overflow] = MappingProxyType(
    {Lane.TELEMETRY: Overflow.DROP_OLDEST})

_POLICIES = {Overflow.REJECT: Policy.RELIABLE, Overflow.DROP_OLDEST: Policy.DROPPABLE,
             Overflow.COALESCE: Policy.COALESCIBLE}


@dataclass(frozen=True, kw_only=True)
class QueueLimits:
    """The bound of the send queue and, per lane, what happens when it is reached."""

    max_messages: int = DEFAULT_MAX_QUEUED_MESSAGES
    max_bytes: int = DEFAULT_MAX_QUEUED_BYTES
    overflow: Overflow = DEFAULT_OVERFLOW  # for the lanes ``lanes`` does not name
    lanes: Mapping[Lane, Overflow] = field(default_factory=lambda: DEFAULT_LANE_OVERFLOW)

    def __post_init__(self) -> None:
        if self.max_messages < 1 or self.max_bytes < 1:
            raise ConfigError("the send queue needs room for at least one message")
        if self.overflow is Overflow.COALESCE:
            raise ConfigError("COALESCE needs a key per message: name its lanes in `lanes`")
        if self.lanes.get(Lane.CONTROL) is Overflow.COALESCE:
            raise ConfigError("calls cannot be coalesced: each waits for its own reply")

    def overflow_of(self, lane: Lane) -> Overflow:
        return self.lanes.get(lane, self.overflow)


@dataclass(eq=False, slots=True)
class Queued:
    """One WebSocket message waiting to be sent; ``ids`` are the calls it carries.

    ``notification`` marks a single notification object, which may share a
    batch frame with others.
    """

    data: bytes
    ids: tuple[RequestId, ...] = ()
    lane: Lane = Lane.CONTROL
    key: Hashable | None = None
    notification: bool = False


def frame(taken: list[Entry[Queued]]) -> Queued:
    """The message that carries ``taken``: itself, or several notifications as one
    JSON-RPC batch array (JSON-RPC 2.0 §6; all notifications, so nothing answers it)."""
    if len(taken) == 1:
        return taken[0].value
    return Queued(b"[" + b",".join(entry.value.data for entry in taken) + b"]",
                  tuple(i for entry in taken for i in entry.value.ids))


@dataclass(slots=True)
class QueueCounters:
    accepted: int = 0
    sent: int = 0
    rejected: int = 0
    dropped: int = 0
    high_water: int = 0
    coalesced: int = 0


class SendQueue:
    """The client's :class:`LaneQueue` of :class:`Queued` messages, its bound and policies."""

    def __init__(self, limits: QueueLimits | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits or QueueLimits()
        self.counters = QueueCounters()
        self.lanes = LaneStats()
        self._queue: LaneQueue[Queued] = LaneQueue(self.lanes, clock)
        self._entries: dict[Queued, Entry[Queued]] = {}  # what waits, for discard()

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def queued_bytes(self) -> int:
        return self._queue.bytes

    def policy(self, lane: Lane, key: Hashable | None) -> Policy:
        """How a message with ``key`` in ``lane`` is queued; ValueError when a key is
        missing for a ``COALESCE`` lane, or given for another, or ``lane`` is no Lane."""
        if not isinstance(lane, Lane):
            raise ValueError(f"lane must be one of {', '.join(f'Lane.{x.name}' for x in Lane)}; "
                             f"got {lane!r}")
        overflow = self.limits.overflow_of(lane)
        if (overflow is Overflow.COALESCE) != (key is not None):
            raise ValueError(f"the {lane.label} lane's overflow is {overflow.name}: "
                             + ("a key is only for a COALESCE lane" if key is not None
                                else "each notification in it needs a key"))
        return _POLICIES[overflow]

    def blocks(self, lane: Lane) -> bool:
        """Whether something waits in ``lane`` or a higher one (a message of ``lane``
        written now would overtake it)."""
        head = self._queue.peek()
        return head is not None and head.lane <= lane

    def fits(self, size: int) -> bool:
        """Whether a notification of ``size`` bytes joins what waits in one batch frame:
        within the frame's limits, and within the queue's bound (held notifications
        count against it, so a full frame is written rather than filling the queue)."""
        count, total = len(self._queue) + 1, self._queue.bytes + size
        return (count <= min(BATCH_MAX_MESSAGES, self.limits.max_messages)
                and total + count + 1 <= GATEWAY_MAX_MESSAGE  # the brackets and commas
                and total <= self.limits.max_bytes)

    def put(self, item: Queued) -> list[Queued]:
        """Queue ``item``; return what was pushed out for it, or raise :class:`QueueFull`
        (having pushed nothing out)."""
        limits, queue = self.limits, self._queue
        size = len(item.data)
        if size > limits.max_bytes:
            self.counters.rejected += 1
            raise QueueFull(f"a {size}-byte message exceeds the send queue's "
                            f"{limits.max_bytes} bytes")
        policy = self.policy(item.lane, item.key)
        old = None if item.key is None else queue.waiting(item.lane, item.key)
        count = len(queue) + (old is None)
        total = queue.bytes + size - (0 if old is None else old.size)
        victims = [lane for lane in reversed(Lane)
                   if limits.overflow_of(lane) is Overflow.DROP_OLDEST]
        if (count - sum(self.lanes[lane].depth for lane in victims) > limits.max_messages
                or total - sum(map(queue.lane_bytes, victims)) > limits.max_bytes):
            self.counters.rejected += 1
            raise QueueFull(f"the send queue is full ({len(queue)} messages, "
                            f"{queue.bytes} bytes)")
        dropped = []
        for lane in victims:
            while count > limits.max_messages or total > limits.max_bytes:
                entry = queue.drop_oldest(lane)
                if entry is None:
                    break
                count, total = count - 1, total - entry.size
                dropped.append(entry.value)
                del self._entries[entry.value]
        replaced = queue.put(item, size, item.lane, policy, item.key)
        if replaced is None:
            entry = queue.newest(item.lane)
            assert entry is not None
            self._entries[item] = entry
        else:
            self._entries[item] = self._entries.pop(replaced)
            self.counters.coalesced += 1
        self.counters.dropped += len(dropped)
        self.counters.accepted += 1
        self.counters.high_water = max(self.counters.high_water, len(queue))
        return dropped

    def take(self, *, batch: bool) -> list[Entry[Queued]]:
        """The messages of the next frame, in lane order (counted as sent): one, or with
        ``batch`` a run of notifications within the gateway's message and batch limits."""
        queue = self._queue
        first = queue.pop()
        if first is None:
            return []
        taken, total = [first], first.size + 2  # the brackets
        while (batch and first.value.notification and len(taken) < BATCH_MAX_MESSAGES
               and (head := queue.peek()) is not None and head.value.notification
               and total + head.size + 1 <= GATEWAY_MAX_MESSAGE):
            taken.append(head)
            queue.pop()
            total += head.size + 1
        for entry in taken:
            del self._entries[entry.value]
        self.counters.sent += len(taken)
        return taken

    def putback(self, taken: list[Entry[Queued]]) -> None:
        """Return what :meth:`take` gave out that could not be written, to the front of
        its lanes; one a newer message with its key replaced meanwhile is counted coalesced."""
        for entry in reversed(taken):
            self.counters.sent -= 1
            if self._queue.putback(entry):
                self._entries[entry.value] = entry
            else:
                self.counters.coalesced += 1

    def discard(self, item: Queued) -> bool:
        """Remove ``item`` if it is still waiting (its call timed out); True if it was."""
        entry = self._entries.pop(item, None)
        return entry is not None and self._queue.remove(entry)

    def clear(self) -> list[Queued]:
        """Empty the queue (the client gave up or closed); return what was in it."""
        self._entries.clear()
        return [entry.value for entry in self._queue.clear()]
