"""Priority lanes: what waits to be sent, in which order, and what may be merged or shed. No I/O.

Both ends of a connection queue messages by lane, highest priority first,
each lane in order (the gateway's outbox, :mod:`rtctl.gateway.outbox`; the
client SDK's send queue, :mod:`rtctl.client.queue`):

=========  ==========================================  ==========================
lane       gateway → client                            client → gateway
=========  ==========================================  ==========================
control    replies, control notifications              calls
state      state patches and frames                    inputs
events     room events, a game's notifications         a game's notifications
chat       presence and chat                           chat
telemetry  telemetry                                   telemetry
=========  ==========================================  ==========================

Each message has a policy (:class:`Policy`; by default its lane's,
:data:`DEFAULT_POLICIES`):

* *reliable*: kept, in order;
* *coalescible*: a newer message with the same key replaces the one still
  waiting, in its place (a user's presence keeps only the latest);
* *droppable*: the first to go under pressure (:meth:`LaneQueue.shed`),
  oldest and lowest lane first, counted.

The policy of what to do at a bound (close, refuse, drop the oldest) is the
owner's: this module only keeps order, sizes and counters (Fiedler's
priority accumulator without the accumulator: a lane's order is the
priority, its age the tie-break). Counters (:class:`LaneStats`) can be
shared by many queues: a gateway sums every connection's lanes in one.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from rtctl.histograms import BucketCounts

__all__ = [
    "DEFAULT_POLICIES",
    "WAIT_BUCKETS",
    "Entry",
    "Lane",
    "LaneCounters",
    "LaneQueue",
    "LaneStats",
    "Policy",
    "parse_lane",
    "parse_policy",
]

T = TypeVar("T")


class Lane(enum.IntEnum):
    """A queue's lanes; a lower value goes first."""

    CONTROL = 1
    STATE = 2
    EVENTS = 3
    CHAT = 4
    TELEMETRY = 5

    @property
    def label(self) -> str:
        """The lane's name on the wire and in metrics: ``control``, ``state``, …"""
        return self.name.lower()


class Policy(enum.Enum):
    RELIABLE = "reliable"
    COALESCIBLE = "coalescible"
    DROPPABLE = "droppable"


# Enum members read once: ``Policy.X`` is an attribute lookup on every message otherwise.
_COALESCIBLE, _DROPPABLE = Policy.COALESCIBLE, Policy.DROPPABLE

DEFAULT_POLICIES: Mapping[Lane, Policy] = {
    Lane.CONTROL: Policy.RELIABLE,
    Lane.STATE: Policy.RELIABLE,
    Lane.EVENTS: Policy.RELIABLE,  # a room event shed would leave a hole in its offsets
    Lane.CHAT: Policy.RELIABLE,
    Lane.TELEMETRY: Policy.DROPPABLE,
}

# Queue waits (seconds): a tenth of a millisecond (written at once) to ten seconds (a slow
# consumer's grace).
WAIT_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0, 10.0)


def parse_lane(value: object) -> Lane:
    """``"events"`` → :attr:`Lane.EVENTS`; anything else a ValueError naming the choices."""
    if isinstance(value, str) and value.islower() and value.upper() in Lane.__members__:
        return Lane[value.upper()]
    raise ValueError(f"lane must be one of {', '.join(lane.label for lane in Lane)}; "
                     f"got {value!r}")


def parse_policy(value: object) -> Policy:
    """``"droppable"`` → :attr:`Policy.DROPPABLE`; anything else a ValueError naming them."""
    try:
        return Policy(value)
    except ValueError:
        raise ValueError(f"policy must be one of {', '.join(p.value for p in Policy)}; "
                         f"got {value!r}") from None


@dataclass(slots=True)
class LaneCounters:
    """One lane's numbers, summed over every queue that shares them."""

    depth: int = 0  # messages waiting now
    depth_bytes: int = 0
    queued: int = 0  # messages put, coalesced ones included
    sent: int = 0  # messages taken out to be written
    sent_bytes: int = 0
    coalesced: int = 0  # replaced, while waiting, by a newer one with the same key
    dropped: int = 0  # shed under pressure or dropped by the owner's overflow policy
    wait: BucketCounts = field(default_factory=lambda: BucketCounts(WAIT_BUCKETS))


class LaneStats:
    """Counters per lane (``stats[Lane.EVENTS].dropped``)."""

    __slots__ = ("by_lane",)

    def __init__(self) -> None:
        self.by_lane = {lane: LaneCounters() for lane in Lane}

    def __getitem__(self, lane: Lane) -> LaneCounters:
        return self.by_lane[lane]

    def items(self) -> Iterator[tuple[Lane, LaneCounters]]:
        return iter(self.by_lane.items())


@dataclass(eq=False, slots=True)
class Entry(Generic[T]):
    """One waiting message; ``since`` is when its place in the queue was taken."""

    value: T
    size: int
    lane: Lane
    policy: Policy
    key: Hashable | None
    since: float
    gone: bool = False  # shed or removed while others wait in front of it (its value dropped)


class LaneQueue(Generic[T]):
    """Per-lane FIFOs with coalescing by key and shedding of droppable messages.

    With ``lanes`` False it is one FIFO that neither coalesces nor sheds (the
    comparison run), though each message still counts in its own lane.

    A message shed or removed from the middle of its lane is only marked gone
    (a deque cannot lose its middle in O(1)) and skipped when it reaches the
    front. So that a lane stuck behind an unwritten head cannot fill up with
    them, shedding drops a gone message's value at once, and a lane whose gone
    messages outnumber its live ones is compacted (amortised O(1) per message).
    Each lane's droppable messages are also kept in a deque of their own, in
    order, so shedding takes the oldest without walking the reliable ones.
    """

    __slots__ = ("_clock", "_counters", "_droppable", "_drops", "_gone", "_keys",
                 "_lane_bytes", "_live", "_on", "_queues", "bytes", "stats")

    def __init__(self, stats: LaneStats, clock: Callable[[], float], *,
                 lanes: bool = True) -> None:
        self.stats = stats
        self._counters = stats.by_lane  # the hot path reads the dict, not a method
        self._clock = clock
        self._on = lanes
        self._queues: dict[Lane, deque[Entry[T]]] = {}  # made on first use: most stay empty
        self._keys: dict[tuple[Lane, Hashable], Entry[T]] = {}
        self._lane_bytes: dict[Lane, int] = dict.fromkeys(Lane, 0)
        self._droppable: dict[Lane, int] = dict.fromkeys(Lane, 0)  # live ones, per lane
        self._drops: dict[Lane, deque[Entry[T]]] = {lane: deque() for lane in Lane}
        self._gone: dict[Lane, int] = dict.fromkeys(Lane, 0)  # marked gone, per queue
        self.bytes = 0
        self._live = 0

    def __len__(self) -> int:
        return self._live

    def lane_bytes(self, lane: Lane) -> int:
        return self._lane_bytes[lane]

    def put(self, value: T, size: int, lane: Lane = Lane.EVENTS, policy: Policy | None = None,
            key: Hashable | None = None, since: float | None = None) -> T | None:
        """Queue ``value`` (``size`` bytes); return the value it replaced, if it coalesced.

        A coalescible message needs a ``key`` (ValueError without one). ``since`` is when
        it began to wait, if before now (moved here from a queue of the owner's own).
        """
        policy = DEFAULT_POLICIES[lane] if policy is None else policy
        counters = self._counters[lane]
        counters.queued += 1
        if policy is _COALESCIBLE:
            if key is None:
                raise ValueError("a coalescible message needs a key")
            old = self._keys.get((lane, key)) if self._on else None
            if old is not None:
                replaced, old.value = old.value, value
                self._account(lane, size - old.size)
                old.size = size
                counters.coalesced += 1
                return replaced
        self._admit(Entry(value, size, lane, policy, key,
                          self._clock() if since is None else since), front=False)
        return None

    def _admit(self, entry: Entry[T], *, front: bool) -> None:
        """``entry`` takes its place at the back of its lane, or at the ``front`` (put back)."""
        lane = entry.lane
        slot = lane if self._on else Lane.CONTROL
        queue = self._queues.get(slot)
        if queue is None:  # a lane's first message: keep the lanes in order for _front
            queue = self._queues[slot] = deque()
            self._queues = dict(sorted(self._queues.items()))
        if front:
            queue.appendleft(entry)
        else:
            queue.append(entry)
        policy = entry.policy
        if policy is _COALESCIBLE and self._on:
            self._keys[(lane, entry.key)] = entry
        elif policy is _DROPPABLE:
            self._droppable[lane] += 1
            if self._on:  # only shedding reads them
                drops = self._drops[lane]
                if front:
                    drops.appendleft(entry)
                else:
                    drops.append(entry)
        self._live += 1
        counters = self._counters[lane]
        counters.depth += 1
        size = entry.size  # _account, inlined: this runs once per message
        self.bytes += size
        self._lane_bytes[lane] += size
        counters.depth_bytes += size

    def _account(self, lane: Lane, delta: int) -> None:
        self.bytes += delta
        self._lane_bytes[lane] += delta
        self._counters[lane].depth_bytes += delta

    def _front(self) -> deque[Entry[T]] | None:
        for slot, queue in self._queues.items():  # highest lane first (see _admit)
            while queue and queue[0].gone:
                queue.popleft()
                self._gone[slot] -= 1
            if queue:
                return queue
        return None

    def peek(self) -> Entry[T] | None:
        """The message :meth:`pop` would take, left in place."""
        queue = self._front()
        return None if queue is None else queue[0]

    def pop(self) -> Entry[T] | None:
        """Take the next message to write (highest lane first), counting its wait."""
        queue = self._front()
        if queue is None:
            return None
        entry = queue.popleft()
        self._forget(entry)
        counters = self._counters[entry.lane]
        counters.sent += 1
        counters.sent_bytes += entry.size
        counters.wait.observe(self._clock() - entry.since)
        return entry

    def _forget(self, entry: Entry[T]) -> None:
        """``entry`` leaves the queue (sent, shed or removed): its bytes and its key go."""
        lane, size = entry.lane, entry.size
        entry.gone = True
        if entry.key is not None and self._keys.get((lane, entry.key)) is entry:
            del self._keys[(lane, entry.key)]
        if entry.policy is _DROPPABLE:
            self._droppable[lane] -= 1
            drops = self._drops[lane]
            while drops and drops[0].gone:  # sent or dropped: it was the oldest
                drops.popleft()
            if len(drops) > 2 * self._droppable[lane]:  # removed from the middle
                _compact(drops)
        self._live -= 1
        counters = self._counters[lane]
        counters.depth -= 1
        self.bytes -= size
        self._lane_bytes[lane] -= size
        counters.depth_bytes -= size

    def _discard(self, entry: Entry[T]) -> None:
        """``entry`` leaves from where it waits (not the front): it is marked gone, and
        its queue compacted once gone messages outnumber live ones."""
        self._forget(entry)
        slot = entry.lane if self._on else Lane.CONTROL
        gone = self._gone[slot] = self._gone[slot] + 1
        queue = self._queues[slot]
        if 2 * gone > len(queue):
            _compact(queue)
            self._gone[slot] = 0

    def shed(self, down_to: int) -> int:
        """Drop droppable messages, lowest lane and oldest first, until at most ``down_to``
        bytes wait (or none is left to drop); return how many went."""
        if not self._on:
            return 0
        dropped = 0
        for lane in reversed(Lane):
            drops = self._drops[lane]
            while self.bytes > down_to and drops:
                entry = drops[0]  # live: _forget keeps gone ones off the front
                self._discard(entry)
                del entry.value  # nothing reads a gone message: its bytes go now
                self._counters[lane].dropped += 1
                dropped += 1
        return dropped

    def drop_oldest(self, lane: Lane) -> Entry[T] | None:
        """Drop the oldest message of ``lane`` whatever its policy (counted); None if empty."""
        queue = self._queues.get(lane if self._on else Lane.CONTROL)
        for entry in queue or ():
            if not entry.gone and entry.lane is lane:
                self.remove(entry)
                self.stats[lane].dropped += 1
                return entry
        return None

    def waiting(self, lane: Lane, key: Hashable) -> Entry[T] | None:
        """The coalescible message with ``key`` waiting in ``lane``: the one a put would replace."""
        return self._keys.get((lane, key)) if self._on else None

    def newest(self, lane: Lane) -> Entry[T] | None:
        """The last message put in ``lane`` still waiting: the owner's handle for
        :meth:`remove` (a client's queued call that may time out)."""
        for entry in reversed(self._queues.get(lane if self._on else Lane.CONTROL) or ()):
            if not entry.gone and entry.lane is lane:
                return entry
        return None

    def putback(self, entry: Entry[T]) -> bool:
        """Return ``entry``, which :meth:`pop` gave out but could not be written, to the
        front of its lane (over any bound: it was within it when put), its send uncounted
        and its ``since`` kept (the failed attempt's wait stays observed). False when a
        newer message with its key waits: that one replaces it, as it would have while
        queued (counted coalesced)."""
        lane, counters = entry.lane, self.stats[entry.lane]
        counters.sent -= 1
        counters.sent_bytes -= entry.size
        if entry.policy is _COALESCIBLE and self.waiting(lane, entry.key) is not None:
            counters.coalesced += 1
            return False
        entry.gone = False
        self._admit(entry, front=True)
        return True

    def remove(self, entry: Entry[T]) -> bool:
        """Take ``entry`` out unsent and uncounted (a call that timed out); False if gone."""
        if entry.gone:
            return False
        self._discard(entry)
        return True

    def clear(self) -> list[Entry[T]]:
        """Empty the queue; return what waited, in the order :meth:`pop` would have taken it."""
        waiting = []
        while (queue := self._front()) is not None:
            entry = queue.popleft()
            self._forget(entry)
            waiting.append(entry)
        return waiting


def _compact(queue: deque[Entry[T]]) -> None:
    """Drop the gone entries of ``queue`` in place: a caller iterating it keeps a live view."""
    live = [entry for entry in queue if not entry.gone]
    queue.clear()
    queue.extend(live)
