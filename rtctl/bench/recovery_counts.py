"""What the ``reconnect-storm`` scenario counts besides time to recover: outcomes and messages.

Every recovery of a client (its link dropped, it reconnected and joined its
room again with ``since``, :class:`~rtctl.client.Rooms`) ends one of three
ways: *recovered* (the gateway replayed what was missed: ``replayed`` of
them), *reset* (``recovered: false`` and a reason: what was missed is gone,
and the game was told), or the join again *failed*. Whether the session itself
was resumed (same id, presence not flapping) is counted beside it.

Messages are checked by number, not by offset: a room's publisher numbers
its messages (``{"n": 1}``, ``{"n": 2}`` ...) and records each acknowledged
one in the room's :class:`Ledger` with the stream position the gateway
acknowledged it at. A member's :class:`Inbox` keeps the numbers it was
handed, in order, and the stretches of the stream it was told it has
(:meth:`Inbox.reset` cuts one short and starts another, :meth:`Inbox.leave`
ends one when its join again failed and it is out of the room). An acknowledged message of the
measured window that a member's stretches cover must reach it exactly once:
never is ``lost``, twice or more ``duplicated`` (a publish appended twice
would come at two offsets: the number tells), before a lower number
``reordered``. One that fell in a reset's gap is ``skipped``: lost too, but
the gateway said so and the game was told. One a member had not got by the
end of the drain is ``late`` rather than lost when it lies beyond the last
one it got (still on its way: a stream has no hole there yet) or the member
was still recovering (its recovery is counted as lost already, and what it
would have replayed cannot be told from a hole).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

from rtctl.bench.histogram import Histogram
from rtctl.bench.parts import summed
from rtctl.protocol.streams import StreamPosition

__all__ = ["Inbox", "Ledger", "MessageCounts", "RecoveryTotals"]


class _Acked(NamedTuple):
    position: StreamPosition
    measured: bool  # published in the measured window


class Ledger:
    """One room's acknowledged publishes: number → where the gateway put it."""

    def __init__(self) -> None:
        self.acked: dict[int, _Acked] = {}
        self.end: StreamPosition | None = None  # the last acknowledged, once publishing ended

    def record(self, number: int, position: StreamPosition, *, measured: bool) -> None:
        self.acked[number] = _Acked(position, measured)


class _Stretch(NamedTuple):
    """Offsets ``start`` < offset <= ``end`` of epoch ``epoch``: what a member was told it has."""

    epoch: str
    start: int
    end: float

    def covers(self, at: StreamPosition) -> bool:
        return at.epoch == self.epoch and self.start < at.offset <= self.end


@dataclass(slots=True)
class MessageCounts:
    """Messages of the measured window, summed over members (one delivery each)."""

    expected: int = 0  # acknowledged messages a member's stream covers
    delivered: int = 0  # of those, handed to the member (once)
    lost: int = 0  # expected, never handed over, no reset said so
    duplicated: int = 0  # handed over again
    reordered: int = 0  # handed over after a higher number
    skipped: int = 0  # in a reset's gap: lost, and the member was told
    late: int = 0  # expected, not handed over by the end: beyond its last, or recovering

    def add(self, other: MessageCounts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def to_json(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class Inbox:
    """What one member of a room was handed, and which stretches of the stream it has."""

    def __init__(self, start: StreamPosition) -> None:
        self.first = start  # where its first join started it: nothing before is expected
        self.last = start  # the last position it was handed (or started at)
        self.stretches = [_Stretch(start.epoch, start.offset, math.inf)]
        self.numbers: list[int] = []  # in the order handed over

    def delivered(self, number: int, at: StreamPosition) -> None:
        self.numbers.append(number)
        self.last = at

    def leave(self) -> None:
        """The member is out of the room (its join again failed): it has the stream up to
        where it was, and nothing more until :meth:`reset`."""
        epoch, begin, end = self.stretches[-1]
        if end == math.inf:
            self.stretches[-1] = _Stretch(epoch, begin, self.last.offset
                                          if self.last.epoch == epoch else begin)

    def reset(self, start: StreamPosition) -> None:
        """A reset: the member has the stream up to where it was, then from ``start`` on."""
        self.leave()
        self.stretches.append(_Stretch(start.epoch, start.offset, math.inf))
        self.last = start

    def count(self, ledger: Ledger, *, recovering: bool = False) -> MessageCounts:
        """This member's counts against ``ledger``, for the measured window's messages;
        ``recovering``: it was still recovering at the end (what it lacks is late)."""
        last = self.last
        counts = MessageCounts()
        handed = Counter(self.numbers)
        for number, (at, measured) in ledger.acked.items():
            if not measured or (at.epoch == self.first.epoch and at.offset <= self.first.offset):
                continue
            times = handed[number]
            counts.duplicated += max(0, times - 1)
            if any(stretch.covers(at) for stretch in self.stretches):
                counts.expected += 1
                counts.delivered += times > 0
                if not times:
                    late = recovering or (at.epoch == last.epoch and at.offset > last.offset)
                    counts.late += late
                    counts.lost += not late
            elif not times:
                counts.skipped += 1
        highest = 0
        for number in self.numbers:
            if number in ledger.acked and ledger.acked[number].measured:
                counts.reordered += number < highest
            highest = max(highest, number)
        return counts


@dataclass(slots=True)
class RecoveryTotals:
    """One worker's (then the run's) recoveries and messages."""

    rooms: int = 0
    members: int = 0  # clients that joined, publishers included
    publish_rate: float = 0.0  # per room, messages/s
    recovered: int = 0
    resets: Counter[str] = field(default_factory=Counter)  # by the gateway's reason
    failed: int = 0  # joins again that failed (the room is joined afresh: a reset too)
    unfinished: int = 0  # still under way after the drain (the recorder's ``lost`` error)
    resumed: int = 0  # reconnections that resumed their session
    not_resumed: Counter[str] = field(default_factory=Counter)  # by resume_error, or "none"
    overlapped: int = 0  # cuts of a client still recovering from the last: not a new attempt
    replayed: Histogram = field(default_factory=Histogram)  # per recovery
    # Offsets a subscriber's SDK was handed twice and dropped: subscribers never publish,
    # so each is a duplicate the gateway sent (``messages`` is counted after the SDK).
    resent: int = 0
    published: int = 0  # acknowledged publishes of the window
    unacked: int = 0  # publishes of the window never acknowledged (timed out, failed)
    messages: MessageCounts = field(default_factory=MessageCounts)

    @property
    def attempts(self) -> int:
        return self.recovered + sum(self.resets.values()) + self.failed + self.unfinished

    @property
    def success_rate(self) -> float | None:
        """Recovered / attempts; None when nothing was attempted."""
        return self.recovered / self.attempts if self.attempts else None

    def add(self, other: RecoveryTotals) -> None:
        for name in ("rooms", "members", "recovered", "failed", "unfinished", "resumed",
                     "overlapped", "resent", "published", "unacked"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.publish_rate = other.publish_rate
        self.resets.update(other.resets)
        self.not_resumed.update(other.not_resumed)
        self.replayed.merge(other.replayed)
        self.messages.add(other.messages)

    @classmethod
    def merged(cls, parts: list[RecoveryTotals]) -> RecoveryTotals | None:
        """The sum of the workers' parts; None if there are none (another scenario)."""
        return summed(parts, cls)

    def to_json(self) -> dict[str, Any]:
        replayed = self.replayed
        return {
            "rooms": self.rooms, "members": self.members, "publish_rate": self.publish_rate,
            "attempts": self.attempts, "recovered": self.recovered,
            "resets": dict(sorted(self.resets.items())), "failed": self.failed,
            "unfinished": self.unfinished, "success_rate": self.success_rate,
            "sessions": {"resumed": self.resumed,
                         "not_resumed": dict(sorted(self.not_resumed.items()))},
            "overlapped": self.overlapped,
            "replayed": {"sum": replayed.total,
                         "p50": replayed.percentile(50) if replayed.count else None,
                         "p99": replayed.percentile(99) if replayed.count else None,
                         "max": replayed.max if replayed.count else None},
            "published": self.published, "unacked": self.unacked, "resent": self.resent,
            "messages": self.messages.to_json(),
        }
