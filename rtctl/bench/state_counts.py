"""What the ``state`` scenario measures besides latency: bytes per tick, sync health, server cost.

Each client counts, between the start and the end of the measured window,
what its :class:`~rtctl.client.StateStore` received (its stats: state
messages and their bytes, patches, snapshots, gaps, resyncs, stale and dropped
messages) and what its connection received (its netstats: WebSocket payload
bytes, which add to each state message its frame header, or the JSON-RPC
notification around it, plus any other message). :class:`SyncCounts` are
summed per encoding. *Per tick* is per version a client's store advanced: a
room's version is a tick that changed something, and a stamped ``drift``
room changes at every tick.

The server's side (:class:`RoomCost`) is what ``state.info {room}`` says at
both ends of the window, taken apart: ticks, patches, their size and the time
spent committing and encoding them (binary, once for all members), the
patches held back from members that were behind and the single catch-up
deltas and full states sent instead.

Which version was the last one stamped in the window (:class:`WindowEnd`) is
what tells a client's lost versions apart from those stamped after the window.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from rtctl.client.netstats import NetSnapshot
from rtctl.client.state import StoreStats

__all__ = ["RoomCost", "StateTotals", "SyncCounts", "WindowEnd"]


@dataclass(slots=True)
class SyncCounts:
    """What ``clients`` clients of one encoding received, summed."""

    clients: int = 0
    versions: int = 0  # versions their stores advanced
    messages: int = 0  # state messages (patches, snapshots, stale, dropped ...)
    bytes: int = 0  # their size: the encoder's bytes, or the JSON message object's
    patches: int = 0
    patch_bytes: int = 0
    snapshots: int = 0
    resyncs: int = 0  # snapshots that repaired a state held before
    gaps: int = 0
    stale: int = 0
    dropped: int = 0  # patches that came while a snapshot was awaited
    corrupt: int = 0
    wire_messages: int = 0  # every WebSocket message received, state or not
    wire_bytes: int = 0

    @classmethod
    def of(cls, version: int | None, stats: StoreStats, net: NetSnapshot) -> SyncCounts:
        """One client's totals so far: its store's ``version`` and ``stats``, its netstats."""
        return cls(clients=1, versions=version or 0, messages=stats.messages,
                   bytes=stats.bytes, patches=stats.patches, patch_bytes=stats.patch_bytes,
                   snapshots=stats.snapshots, resyncs=stats.resyncs, gaps=stats.gaps,
                   stale=stats.stale, dropped=stats.dropped, corrupt=stats.corrupt,
                   wire_messages=net.messages_in, wire_bytes=net.bytes_in)

    def since(self, start: SyncCounts) -> SyncCounts:
        """What came between ``start`` and these totals, of the same client."""
        window = SyncCounts(*(getattr(self, f.name) - getattr(start, f.name)
                              for f in fields(self)))
        window.clients = self.clients
        return window

    def add(self, other: SyncCounts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        document |= {"bytes_per_tick": _ratio(self.bytes, self.versions),
                     "wire_bytes_per_tick": _ratio(self.wire_bytes, self.versions),
                     "bytes_per_patch": _ratio(self.patch_bytes, self.patches)}
        return document


@dataclass(frozen=True, slots=True)
class RoomCost:
    """The room's own counts over the window, from two ``state.info`` answers."""

    ticks: int
    versions: int
    patches: int
    bytes_per_patch: float | None
    encode_us_per_patch: float | None
    coalesced: int
    catch_ups: int
    fulls: int
    members: int

    @classmethod
    def between(cls, start: Mapping[str, Any], end: Mapping[str, Any]) -> RoomCost:
        """The window between two ``state.info`` answers (KeyError or TypeError if one is
        not such an answer). Its means are over all the room's patches: the sums are those
        means times the patches."""
        patches = end["patches"] - start["patches"]

        def per_patch(name: str) -> float | None:
            total = end[name] * end["patches"] - start[name] * start["patches"]
            return total / patches if patches else None

        return cls(ticks=end["ticks"] - start["ticks"],
                   versions=end["version"] - start["version"], patches=patches,
                   bytes_per_patch=per_patch("bytes_per_patch"),
                   encode_us_per_patch=per_patch("encode_us_per_patch"),
                   coalesced=end["coalesced"] - start["coalesced"],
                   catch_ups=end["catch_ups"] - start["catch_ups"],
                   fulls=end["fulls"] - start["fulls"], members=int(end["members"]))

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class WindowEnd:
    """The last version stamped in the window, as one worker's clients learn it.

    The room stamps its versions in order, so a version stamped before the
    window's end and the next one stamped after it pin the end exactly, whichever
    clients applied the two. A client that jumps over the end (a resync, a
    catch-up delta) only brackets it, so :attr:`settled` is set once the end is
    pinned or no client can tell more (each one is past the end, or gone); an end
    still not pinned then is estimated from the room's tick rate, within what the
    clients saw.
    """

    def __init__(self) -> None:
        self.before: tuple[int, float] | None = None  # (latest version before, its stamp's lead)
        self.after: int | None = None  # the earliest version stamped after the end
        self.waiting = 0  # clients not yet past the end
        self.settled = asyncio.Event()

    def __reduce__(self) -> tuple[type[WindowEnd], tuple[()]]:
        # The event belongs to the worker's loop; the parent merging results needs none of it.
        return WindowEnd, ()

    def expect_client(self) -> None:
        self.waiting += 1

    def applied_before(self, version: int, lead: float) -> None:
        """A client applied ``version``, stamped ``lead`` s before the window's end."""
        if self.before is None or version > self.before[0]:
            self.before = (version, lead)
            self._check()

    def passed(self, version: int | None) -> None:
        """A client is past the end: ``version`` is the first it applied stamped after the
        end (later ones are higher: they tell nothing more), or None if it is gone."""
        self.waiting -= 1
        if version is not None and (self.after is None or version < self.after):
            self.after = version
        self._check()

    def _check(self) -> None:
        pinned = (self.before is not None and self.after is not None
                  and self.after <= self.before[0] + 1)
        if pinned or self.waiting <= 0:
            self.settled.set()

    def version(self, rate: float) -> int | None:
        """The last version stamped in the window (None if no client applied one stamped
        before its end): exact once pinned, else the versions after the latest one seen
        before the end, one per tick at ``rate``, that fall before it."""
        if self.before is None:
            return None
        version, lead = self.before
        estimate = version + max(0, math.ceil(lead * rate) - 1)
        return estimate if self.after is None else max(version, min(estimate, self.after - 1))


@dataclass(slots=True)
class StateTotals:
    """One worker's (then the run's) state counts: per encoding, and the room's cost."""

    room: str
    entities: int
    movers: int
    tick_rate: float
    clients: dict[str, SyncCounts] = field(default_factory=dict)  # by encoding
    server: RoomCost | None = None  # from the one client that asks
    early: int = 0  # versions applied before their stamp: the two clocks disagree
    window: WindowEnd = field(default_factory=WindowEnd, repr=False, compare=False)

    def add(self, encoding: str, counts: SyncCounts) -> None:
        self.clients.setdefault(encoding, SyncCounts()).add(counts)

    @classmethod
    def merged(cls, parts: list[StateTotals]) -> StateTotals | None:
        """The sum of the workers' parts; None if there are none (another scenario)."""
        if not parts:
            return None
        first = parts[0]
        total = cls(room=first.room, entities=first.entities, movers=first.movers,
                    tick_rate=first.tick_rate)
        for part in parts:
            for encoding, counts in part.clients.items():
                total.add(encoding, counts)
            total.server = total.server or part.server
            total.early += part.early
        return total

    def to_json(self) -> dict[str, Any]:
        return {"room": self.room, "entities": self.entities, "movers": self.movers,
                "tick_rate": self.tick_rate, "early": self.early,
                "server": None if self.server is None else self.server.to_json(),
                "clients": {encoding: counts.to_json()
                            for encoding, counts in sorted(self.clients.items())}}


def _ratio(total: int, count: int) -> float | None:
    return total / count if count else None
