"""How a room's bus traffic reaches this node's members, at a cost that grows as O(members).

:class:`~rtctl.services.rooms.RoomService` subscribes this node to a room's
subject while the room has a member here (:class:`LocalRoom`) and hands every
message on it to :meth:`RoomDelivery.deliver`.

* **Messages go out in stream order.** The room's
  :class:`~rtctl.services.room_stream.RoomStream` orders them by offset; the
  holes it finds are read from history here (again after ``FILL_RETRY`` s if
  the store failed), and what history no longer has is logged.
* **A joining member misses nothing and gets nothing twice.** While its join
  reads where it starts, what the room delivers is kept for it
  (:class:`~rtctl.services.room_stream.Backlog`); then its replay and what was
  kept after its start go out, and it receives like everyone else. One that
  starts beyond what this node has delivered skips the messages up to its
  start: the only per-member check on a fan-out, only while such a one exists.
* **Membership news depends on the room's size.** While a room has at most
  ``small_room`` users, a user's first join and last leave are each one
  ``room.joined`` / ``room.left``, sent at once. Above that (by the total the
  news carries, or by the members here when it is handled, so joins that
  outrun their news cannot slip past), they are coalesced into one ``room.diff
  {room, total, joined, left, truncated}`` per room
  (:mod:`~rtctl.services.room_diff`), sent at most every ``max(diff_interval,
  members here / diff_rate)`` seconds: a storm of n joins lasting T seconds
  costs at most n + ``diff_rate`` × T deliveries (and ``small_room``²/2 for
  its first joins) instead of n²/2 (Phoenix Presence's ``presence_diff``,
  rate-limited for size). A user who joins and leaves between two diffs is in
  neither list. Membership news waits in the ``chat`` lane of a member's
  outbox, behind room messages (issue 14).
* **Each message waits where its publish said** (:mod:`~rtctl.services.room_tags`):
  its lane, policy and key are the same for every member, on every node; a
  replay to a joining member is reliable, in the ``events`` lane, whatever its
  policy (a recovery is all or nothing).
* **A big fan-out yields.** It is encoded once and pushed ``chunk``
  connections at a time with the loop given back in between, so the writes it
  wakes are spread over several loop iterations; one who left (or whose
  connection closed) meanwhile is skipped. Notifications of one room keep
  their order: while one fan-out is under way, the next waits behind it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Sequence, Set
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

from rtctl.backends.base import BackendUnavailable, HistoryEntry, HistoryStore, Subscription
from rtctl.protocol import jsonrpc
from rtctl.protocol.lanes import Lane, Policy
from rtctl.protocol.streams import StreamPosition
from rtctl.router import Peer
from rtctl.services.room_diff import Cancellable, PendingDiff
from rtctl.services.room_stream import Backlog, RoomStream, Start, Step, StreamMessage
from rtctl.services.room_tags import Outgoing

__all__ = [
    "DEFAULT_CHUNK",
    "DEFAULT_DIFF_INTERVAL",
    "DEFAULT_DIFF_NAMES",
    "DEFAULT_DIFF_RATE",
    "DEFAULT_SMALL_ROOM",
    "FILL_RETRY",
    "LocalRoom",
    "RoomDelivery",
    "RoomLimits",
    "Timer",
]

DEFAULT_SMALL_ROOM = 100  # users: up to this, joins are listed and announced one by one
DEFAULT_DIFF_INTERVAL = 1.0  # seconds between two diffs of one room, at least
DEFAULT_DIFF_RATE = 5000.0  # diff deliveries per second per room on one node, at most
DEFAULT_DIFF_NAMES = 100  # users listed in each of a diff's joined and left, at most
DEFAULT_CHUNK = 500  # pushes between two yields to the loop
FILL_RETRY = 1.0  # seconds before a history read that failed is tried again

logger = logging.getLogger("rtctl.rooms")


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


class Timer(Protocol):
    """``loop.call_later``'s shape; tests pass one they fire themselves."""

    def __call__(self, delay: float, callback: Callable[[], None], /) -> Cancellable: ...


_FanOut: TypeAlias = tuple[Sequence[Peer], Outgoing, str | None]  # targets, what, skip


class LocalRoom:
    """One room on this node: members, joins under way, its stream, its subscription."""

    __slots__ = ("diff", "joining", "members", "name", "opening", "queue", "recent", "retry",
                 "stream", "subscription")

    def __init__(self, name: str) -> None:
        self.name = name
        self.members: dict[str, Peer] = {}  # conn id → conn: receiving
        self.joining: dict[str, Backlog] = {}  # conn id → kept for it until it knows its start
        self.recent: dict[str, Start] = {}  # members starting beyond the stream here
        self.stream = RoomStream()
        self.opening = asyncio.Lock()  # subscribing; the read the stream starts at
        self.subscription: Subscription | None = None
        self.diff: PendingDiff | None = None
        self.queue: deque[_FanOut] | None = None  # fan-outs under way, in order
        self.retry: Cancellable | None = None  # a failed history read, to be tried again

    def __len__(self) -> int:
        return len(self.members) + len(self.joining)

    def member(self, conn_id: str) -> Peer | None:
        """The connection with this id in the room here, receiving or joining."""
        conn = self.members.get(conn_id)
        if conn is None and (backlog := self.joining.get(conn_id)) is not None:
            return backlog.peer
        return conn

    def peers(self) -> list[Peer]:
        return [*self.members.values(), *(backlog.peer for backlog in self.joining.values())]


class RoomDelivery:
    """Turns one node's room bus messages into its members' notifications."""

    def __init__(self, history: HistoryStore, limits: RoomLimits,
                 timer: Timer | None = None) -> None:
        self._history = history
        self._limits = limits
        self._timer = timer
        self._rooms: dict[str, LocalRoom] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def room(self, name: str) -> LocalRoom | None:
        return self._rooms.get(name)

    def open(self, name: str) -> LocalRoom:
        """The room here, made if it has no member here yet."""
        local = self._rooms.get(name)
        if local is None:
            local = self._rooms[name] = LocalRoom(name)
        return local

    def rooms(self) -> list[LocalRoom]:
        return list(self._rooms.values())

    def _current(self, local: LocalRoom) -> bool:
        """Whether ``local`` is still the room here (not forgotten, maybe made again)."""
        return self._rooms.get(local.name) is local

    # -- members ---------------------------------------------------------------

    def admit(self, local: LocalRoom, conn: Peer) -> None:
        """``conn`` is joining: what the room delivers is kept for it until :meth:`activate`."""
        local.joining[conn.id] = Backlog(conn, local.stream.restarts)

    def start(self, local: LocalRoom, position: StreamPosition) -> None:
        """The room's stream here starts after ``position`` (read after subscribing)."""
        self._apply(local, local.stream.start(position))

    def activate(self, local: LocalRoom, conn: Peer, position: StreamPosition,
                 replay: Sequence[HistoryEntry] = ()) -> int:
        """``conn`` starts after ``position``: push ``replay`` (its own messages skipped, as
        live delivery skips the sender), then what was kept for it after ``position``; from
        now on it receives with the others. Returns how many replayed messages were pushed
        (0 if it is joining no more: its connection ended meanwhile)."""
        backlog = local.joining.get(conn.id)
        if backlog is None or backlog.peer is not conn:
            return 0
        del local.joining[conn.id]
        replayed = 0
        for entry in replay:
            message = StreamMessage.of(entry, position.epoch)
            if message.session != conn.id:
                conn.push(_message(local.name, message), lane=Lane.EVENTS,
                          policy=Policy.RELIABLE)  # all of it, whatever its own policy
                replayed += 1
        start = local.stream.placed(position, backlog.restarts)
        for out in backlog.release(start):
            out.send((conn,))
        local.members[conn.id] = conn
        here = local.stream.position
        assert here is not None, "a join reads where it starts after the stream started"
        if not start.reached(here.offset, here.epoch):
            local.recent[conn.id] = start
        return replayed

    def remove(self, local: LocalRoom, conn_id: str) -> bool:
        """Forget a member; True when it was the last here (the caller unsubscribes)."""
        local.members.pop(conn_id, None)
        local.joining.pop(conn_id, None)
        local.recent.pop(conn_id, None)
        if local:
            return False
        self.forget(local)
        return True

    def forget(self, local: LocalRoom) -> None:
        """The room has no member here any more: nothing pending for it matters."""
        if self._current(local):
            del self._rooms[local.name]
        for handle in (local.retry, local.diff.handle if local.diff is not None else None):
            if handle is not None:
                handle.cancel()
        local.retry = local.diff = None

    # -- what arrives on the bus -------------------------------------------------

    def deliver(self, local: LocalRoom, message: dict[str, Any]) -> None:
        """The bus handler of the room's subscription (what ``RoomService`` sends)."""
        if not self._current(local):  # a subscription being dropped
            return
        event, sender = message.get("event"), message.get("session")
        sender = sender if isinstance(sender, str) else None
        if event == "message":
            offset, epoch = message.get("offset"), message.get("epoch")
            if type(offset) is int and isinstance(epoch, str):  # else it has no place
                received = StreamMessage.read(offset, epoch, message)
                if local.stream.takes(received):
                    self._send(local, received)
                else:
                    self._apply(local, local.stream.receive(received))
        elif event in ("joined", "left"):
            user, total = message.get("user"), message.get("total")
            if not isinstance(user, str):
                return
            here, small = len(local), self._limits.small_room
            total = total if isinstance(total, int) else here
            if total > small or here > small:
                self._coalesce(local, user, event == "joined", total)
            else:  # small, or from a node that sends no total
                self.flush(local)  # what was coalesced before comes first
                self._fan_out(local, _news(f"room.{event}", {"room": local.name,
                                                             "user": user}), sender)

    def _apply(self, local: LocalRoom, step: Step) -> None:
        for lost in step.lost:
            logger.warning("room %s: messages of epoch %s after offset %d%s not delivered "
                           "here: %s", local.name, lost.epoch, lost.after,
                           "" if lost.upto is None else f" up to {lost.upto}", lost.reason)
        for message in step.deliver:
            self._send(local, message)
        if step.read is not None:
            self._spawn(self._fill(local, step.read))

    async def _fill(self, local: LocalRoom, since: StreamPosition) -> None:
        try:
            answer = await self._history.since(local.name, since)
        except Exception as exc:  # any: a stream left reading would hold all that follows
            local.stream.unfilled()
            if self._current(local):
                waits = f"room {local.name}: a hole in its stream waits for history"
                if isinstance(exc, BackendUnavailable):
                    logger.info("%s: %s", waits, exc.message)
                else:  # the store refused (Redis OOM, READONLY): it may not for long
                    logger.exception(waits)
                timer = self._timer or asyncio.get_running_loop().call_later
                local.retry = timer(FILL_RETRY, lambda: self._retry(local))
            return
        if self._current(local):
            self._apply(local, local.stream.filled(answer))

    def _retry(self, local: LocalRoom) -> None:
        local.retry = None
        self._apply(local, local.stream.retry())

    def _send(self, local: LocalRoom, message: StreamMessage) -> None:
        behind: Set[str] = frozenset()
        if local.recent:  # rarely: only just after a join read ahead of this node
            behind = {conn_id for conn_id, start in local.recent.items()
                      if not start.news(message.offset, message.epoch)}
            for conn_id, start in list(local.recent.items()):
                if start.reached(message.offset, message.epoch):
                    del local.recent[conn_id]  # the stream here has caught up with it
        self._fan_out(local, message.tags.outgoing(local.name, _message(local.name, message)),
                      message.session, message, behind)

    # -- membership news -----------------------------------------------------------

    def _coalesce(self, local: LocalRoom, user: str, joined: bool, total: int) -> None:
        diff = local.diff
        if diff is None:
            diff = local.diff = PendingDiff()
        diff.add(user, joined, total)
        if diff.handle is None:
            delay = self._limits.diff_spacing(len(local))
            timer = self._timer or asyncio.get_running_loop().call_later
            diff.handle = timer(delay, lambda: self.flush(local))

    def flush(self, local: LocalRoom) -> None:
        """Send the room's pending diff now, if it has one."""
        diff, local.diff = local.diff, None
        if diff is None:
            return
        if diff.handle is not None:
            diff.handle.cancel()
        if diff.changes:
            self._fan_out(local, _news(
                "room.diff", diff.params(local.name, self._limits.diff_names)), None)

    # -- fan-out ---------------------------------------------------------------------

    def _fan_out(self, local: LocalRoom, out: Outgoing, skip: str | None,
                 message: StreamMessage | None = None, behind: Set[str] = frozenset()
                 ) -> None:
        """Push ``out`` to every member but ``skip`` (the sender) and those ``behind``,
        and keep it for those joining."""
        for conn_id, backlog in local.joining.items():
            if conn_id != skip:
                backlog.keep(out, message)
        members = local.members
        if not members:
            return
        targets: Iterable[Peer] = members.values()
        if behind:
            targets = [conn for conn in targets if conn.id not in behind]
        if local.queue is None and len(members) <= self._limits.chunk:
            out.send(targets, skip)
            return
        if local.queue is None:
            local.queue = deque()
            self._spawn(self._drain(local, local.queue))
        local.queue.append((list(targets), out, skip))  # who is here now

    async def _drain(self, local: LocalRoom, queue: deque[_FanOut]) -> None:
        chunk = self._limits.chunk
        try:
            while queue:
                targets, out, skip = queue[0]
                for start in range(0, len(targets), chunk):
                    members = local.members  # still here, on the same connection
                    out.send([conn for conn in targets[start:start + chunk]
                              if members.get(conn.id) is conn], skip)
                    await asyncio.sleep(0)  # let the writes just woken run
                queue.popleft()
        finally:
            local.queue = None

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Stop timers, reads and fan-outs under way (the node shuts down)."""
        for local in self.rooms():
            self.forget(local)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _notification(method: str, params: dict[str, Any]) -> bytes:
    return jsonrpc.dumps(jsonrpc.encode_notification(method, params))  # once for all


def _news(method: str, params: dict[str, Any]) -> Outgoing:
    """Membership news (``room.joined``, ``room.left``, ``room.diff``): chat, reliable."""
    return Outgoing(_notification(method, params), Lane.CHAT)


def _message(room: str, message: StreamMessage) -> bytes:
    return _notification("room.message", {"room": room, "from": message.sender,
                                          "data": message.data, "offset": message.offset,
                                          "epoch": message.epoch})
