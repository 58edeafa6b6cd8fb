"""How a room's bus traffic reaches this node's members, at a cost that grows as O(members).

:class:`~rtctl.services.rooms.RoomService` hands every message on a room's
subject to :meth:`RoomDelivery.deliver`. Two things keep big rooms cheap:

* **Membership news depends on the room's size.** While a room has at most
  ``small_room`` users, a user's first join and last leave are each one
  ``room.joined`` / ``room.left``, sent at once, as they always were. Above
  that (by the total the news carries, or by the members here when it is
  handled, so joins that outrun their news cannot slip past), they are
  coalesced into one ``room.diff {room, total, joined, left, truncated}`` per
  room, sent at most every ``max(diff_interval, members here / diff_rate)``
  seconds: a node delivers at most ``diff_rate`` diffs a second per room,
  however fast the room churns, so a storm of n joins lasting T seconds costs
  at most n + ``diff_rate`` × T deliveries (and ``small_room``²/2 for its
  first joins) instead of n²/2 (Phoenix Presence's ``presence_diff``,
  rate-limited for size). A user who
  joins and leaves between two diffs is in neither list.
* **A big fan-out yields.** It is pushed ``chunk`` connections at a time with
  the loop given back in between, so the writes it wakes are spread over
  several loop iterations. Notifications of one room keep their order: while
  one fan-out is under way, the next waits behind it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from rtctl.protocol import jsonrpc
from rtctl.router import Peer

__all__ = [
    "DEFAULT_CHUNK",
    "DEFAULT_DIFF_INTERVAL",
    "DEFAULT_DIFF_NAMES",
    "DEFAULT_DIFF_RATE",
    "DEFAULT_SMALL_ROOM",
    "Cancellable",
    "PendingDiff",
    "RoomDelivery",
    "RoomLimits",
    "Timer",
]

DEFAULT_SMALL_ROOM = 100  # users: up to this, joins are listed and announced one by one
DEFAULT_DIFF_INTERVAL = 1.0  # seconds between two diffs of one room, at least
DEFAULT_DIFF_RATE = 5000.0  # diff deliveries per second per room on one node, at most
DEFAULT_DIFF_NAMES = 100  # users listed in each of a diff's joined and left, at most
DEFAULT_CHUNK = 500  # pushes between two yields to the loop


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomLimits:
    """Where a room counts as big, and how membership news is paced there."""

    small_room: int = DEFAULT_SMALL_ROOM
    diff_interval: float = DEFAULT_DIFF_INTERVAL
    diff_rate: float = DEFAULT_DIFF_RATE
    diff_names: int = DEFAULT_DIFF_NAMES
    chunk: int = DEFAULT_CHUNK

    def diff_spacing(self, members_here: int) -> float:
        return max(self.diff_interval, members_here / self.diff_rate)


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Timer(Protocol):
    """``loop.call_later``'s shape; tests pass one they fire themselves."""

    def __call__(self, delay: float, callback: Callable[[], None], /) -> Cancellable: ...


class PendingDiff:
    """One room's net membership change since its last diff (sans-I/O)."""

    __slots__ = ("changes", "handle", "total")

    def __init__(self) -> None:
        self.changes: dict[str, bool] = {}  # user → joined (True) or left (False)
        self.total = 0
        self.handle: Cancellable | None = None  # the timer that will send it

    def add(self, user: str, joined: bool, total: int) -> None:
        """Count a change; one that undoes a pending one cancels it."""
        if self.changes.get(user) is (not joined):
            del self.changes[user]
        else:
            self.changes[user] = joined
        self.total = total

    def params(self, room: str, names: int) -> dict[str, Any]:
        """``room.diff`` params: at most ``names`` users per list, ``truncated`` if more."""
        joined = sorted(user for user, j in self.changes.items() if j)
        left = sorted(user for user, j in self.changes.items() if not j)
        return {"room": room, "total": self.total, "joined": joined[:names],
                "left": left[:names], "truncated": max(len(joined), len(left)) > names}


class RoomDelivery:
    """Turns one node's room bus messages into its members' notifications."""

    def __init__(self, local: Mapping[str, Mapping[str, Peer]], limits: RoomLimits,
                 timer: Timer | None = None) -> None:
        self._local = local  # room → conn id → conn, owned by the room service
        self._limits = limits
        self._timer = timer
        self._diffs: dict[str, PendingDiff] = {}
        self._queues: dict[str, deque[tuple[Sequence[Peer], bytes, str | None]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def deliver(self, room: str, message: dict[str, Any]) -> None:
        """The bus handler: ``message`` as :class:`~rtctl.services.rooms.RoomService` sent it."""
        event, sender = message.get("event"), message.get("session")
        sender = sender if isinstance(sender, str) else None
        if event == "message":
            self._fan_out(room, "room.message", {"room": room, "from": message.get("from"),
                                                 "data": message.get("data")}, sender)
        elif event in ("joined", "left"):
            user, total = message.get("user"), message.get("total")
            if not isinstance(user, str):
                return
            here, small = len(self._local.get(room, ())), self._limits.small_room
            total = total if isinstance(total, int) else here
            if total > small or here > small:
                self._coalesce(room, user, event == "joined", total)
            else:  # small, or from a node that sends no total
                self.flush(room)  # what was coalesced before comes first
                self._fan_out(room, f"room.{event}", {"room": room, "user": user}, sender)

    def _coalesce(self, room: str, user: str, joined: bool, total: int) -> None:
        diff = self._diffs.get(room)
        if diff is None:
            diff = self._diffs[room] = PendingDiff()
        diff.add(user, joined, total)
        if diff.handle is None:
            delay = self._limits.diff_spacing(len(self._local.get(room, ())))
            timer = self._timer or asyncio.get_running_loop().call_later
            diff.handle = timer(delay, lambda: self.flush(room))

    def flush(self, room: str) -> None:
        """Send the room's pending diff now, if it has one."""
        diff = self._diffs.pop(room, None)
        if diff is None:
            return
        if diff.handle is not None:
            diff.handle.cancel()
        if diff.changes:
            self._fan_out(room, "room.diff", diff.params(room, self._limits.diff_names), None)

    def _fan_out(self, room: str, method: str, params: dict[str, Any], skip: str | None
                 ) -> None:
        members = self._local.get(room)
        if not members:
            return
        data = jsonrpc.dumps(jsonrpc.encode_notification(method, params))  # once for all
        queue = self._queues.get(room)
        if queue is None and len(members) <= self._limits.chunk:
            _push(members.values(), data, skip)
            return
        if queue is None:
            queue = self._queues[room] = deque()
            task = asyncio.get_running_loop().create_task(self._drain(room, queue))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        queue.append((list(members.values()), data, skip))  # who is here now

    async def _drain(self, room: str, queue: deque[tuple[Sequence[Peer], bytes, str | None]]
                     ) -> None:
        chunk = self._limits.chunk
        try:
            while queue:
                targets, data, skip = queue[0]
                for start in range(0, len(targets), chunk):
                    _push(targets[start:start + chunk], data, skip)
                    await asyncio.sleep(0)  # let the writes just woken run
                queue.popleft()
        finally:
            del self._queues[room]

    def forget(self, room: str) -> None:
        """The last local member left: nothing pending for the room matters any more."""
        diff = self._diffs.pop(room, None)
        if diff is not None and diff.handle is not None:
            diff.handle.cancel()

    async def close(self) -> None:
        """Stop timers and fan-outs under way (the node shuts down)."""
        for room in list(self._diffs):
            self.forget(room)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _push(targets: Iterable[Peer], data: bytes, skip: str | None) -> None:
    for conn in targets:
        if conn.id != skip:
            conn.push(data)
