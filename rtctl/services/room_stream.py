"""One room's messages as one node delivers them: in offset order, no gap, no duplicate.

Sans-I/O: :class:`RoomStream` takes messages and history reads' answers and
says what to deliver and what to read; :mod:`~rtctl.services.room_delivery`
does the I/O. Every ``room.message`` on the bus carries the ``offset`` and
``epoch`` its append to the room's history gave it
(:class:`~rtctl.backends.base.HistoryStore`), but the bus may lose or reorder
messages (NATS core is at-most-once; two publishers race), and a node may die
between acknowledging a publish and sending it. So, for each room:

* the offset after the last one delivered goes out at once (the common case);
* one further on is held, and the missing range is read from history
  (``since`` the last delivered), one read at a time per room; what was held
  goes out, in order, once the hole is filled: a member that stays connected
  never sees a hole (Centrifugo's per-channel position check, done by the
  server for every member);
* one at or below the last delivered is a duplicate, dropped;
* one of another epoch is judged by the store: history is read, and if the
  room's epoch there is still this one, the message is a straggler from a lost
  history (dropped); if it changed, the stream starts over in the new epoch;
* a hole that history can no longer fill (``too_old``, ``too_many``; or
  ``unknown_offset``, a store behind this node) is skipped: the members here
  miss those messages, reported as :class:`Lost` for the log.

The stream starts at the position read by the join that subscribed this node
to the room; messages that arrive before that wait for it. Members who join
later start where their own read says: :class:`Backlog` keeps what the room
delivered while that read was under way, and :class:`Start` tells what of it,
and of what follows, comes after their start. A member whose read found a newer
epoch than this node's stream is in (the store lost the room's history, and
this node has yet to hear) gets nothing more of the old epoch, and in the new
one only what comes after its start.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from rtctl.backends.base import HistoryEntry, Replay, Unrecoverable
from rtctl.protocol.streams import Reason, StreamPosition
from rtctl.router import Peer
from rtctl.services.room_tags import UNTAGGED, Outgoing, Tags

__all__ = ["Backlog", "Lost", "RoomStream", "Start", "Step", "StreamMessage"]


class StreamMessage(NamedTuple):
    """One published message: where it is in the stream, who sent it, what it says, and
    how it waits in members' outboxes."""

    offset: int
    epoch: str
    session: str | None  # the publishing session: never delivered back to it
    sender: Any  # the publishing user, ``from`` on the wire
    data: Any
    tags: Tags = UNTAGGED

    @classmethod
    def read(cls, offset: int, epoch: str, fields: Mapping[str, Any]) -> StreamMessage:
        """A message as the room service sends it on the bus and appends it to history:
        ``{"from", "data", "session"}`` and its tags (:meth:`Tags.fields`)."""
        session = fields.get("session")
        return cls(offset, epoch, session if isinstance(session, str) else None,
                   fields.get("from"), fields.get("data"), Tags.read(fields))

    @classmethod
    def of(cls, entry: HistoryEntry, epoch: str) -> StreamMessage:
        """A message read from history."""
        return cls.read(entry.offset, epoch, entry.message)


class Lost(NamedTuple):
    """Messages after ``after`` up to ``upto`` (None: all of that epoch's rest) of
    ``epoch`` that this node did not deliver, and why."""

    epoch: str
    after: int
    upto: int | None
    reason: Reason


class Step(NamedTuple):
    """What to do now: deliver these, in order; read history ``since`` this position
    and hand the answer to :meth:`RoomStream.filled`; log what was lost."""

    deliver: tuple[StreamMessage, ...] = ()
    read: StreamPosition | None = None
    lost: tuple[Lost, ...] = ()


_NOTHING = Step()


class Start(NamedTuple):
    """Where one member starts: after ``position``. ``stale``: the epoch this node's stream
    was still in when the member's read found ``position`` in a newer one; the member is
    past all of it."""

    position: StreamPosition
    stale: str | None = None

    def news(self, offset: int, epoch: str) -> bool:
        """Whether a message at ``offset`` of ``epoch`` comes after this start. One of
        another epoch does (the stream has started over since), unless of the stale one."""
        if epoch == self.position.epoch:
            return offset > self.position.offset
        return epoch != self.stale

    def reached(self, offset: int, epoch: str) -> bool:
        """Whether a stream that has delivered up to ``offset`` of ``epoch`` is at or past
        this start: all it delivers from then on is news."""
        if epoch == self.position.epoch:
            return offset >= self.position.offset
        return epoch != self.stale


class RoomStream:
    """The order of one room's messages on one node."""

    __slots__ = ("_early", "_epoch", "_foreign", "_held", "_judged", "_offset", "reading",
                 "restarts")

    def __init__(self) -> None:
        self._epoch: str | None = None  # None: not started
        self._offset = 0  # the last offset delivered
        self._held: dict[int, StreamMessage] = {}  # beyond a hole, by offset
        self._early: list[StreamMessage] = []  # arrived before the start
        self._foreign: list[StreamMessage] = []  # of another epoch, for the store to judge
        self._judged = 0  # how many of _foreign were there when the read in flight began
        self.reading: StreamPosition | None = None  # the read in flight, since this
        self.restarts = 0  # how many times it started over in a new epoch

    @property
    def position(self) -> StreamPosition | None:
        """The last message delivered (None before the start)."""
        return None if self._epoch is None else StreamPosition(self._offset, self._epoch)

    @property
    def started(self) -> bool:
        return self._epoch is not None

    def start(self, position: StreamPosition) -> Step:
        """Deliver what comes after ``position``; only the first start counts."""
        if self._epoch is not None:
            return _NOTHING
        self._epoch, self._offset = position.epoch, position.offset
        early, self._early = self._early, []
        for message in early:
            self._keep(message)
        return self._next()

    def placed(self, position: StreamPosition, restarts: int) -> Start:
        """Where a member whose read found ``position`` starts; ``restarts``: this stream's
        :attr:`restarts` when that member began to join, before its read.

        Epochs have no order, but if the stream has not started over since, its epoch
        was fixed before that read: another one in ``position`` is newer (the store has
        lost the room's history and this node has yet to hear). If it has, either may be
        the newer, and the member is given all the stream delivers of other epochs than
        its own: at worst some from before its start, never a hole.
        """
        assert self._epoch is not None, "not started"
        newer = restarts == self.restarts and position.epoch != self._epoch
        return Start(position, self._epoch if newer else None)

    def takes(self, message: StreamMessage) -> bool:
        """Deliver ``message`` at once if it is the next one and nothing waits: the common
        case, answered without building a :class:`Step` (else :meth:`receive` it)."""
        if message.epoch == self._epoch and message.offset == self._offset + 1 \
                and not self._held:
            self._offset = message.offset
            return True
        return False

    def receive(self, message: StreamMessage) -> Step:
        """A message from the bus."""
        if self.takes(message):
            return Step((message,))
        if self._epoch is None:
            self._early.append(message)
            return _NOTHING
        self._keep(message)
        return self._next()

    def _keep(self, message: StreamMessage) -> None:
        if message.epoch != self._epoch:
            self._foreign.append(message)
        elif message.offset > self._offset:
            self._held.setdefault(message.offset, message)

    def filled(self, answer: Replay | Unrecoverable) -> Step:
        """History's answer to the read :meth:`receive` or :meth:`start` asked for."""
        assert self._epoch is not None, "not started"
        assert self.reading is not None, "no read in flight"
        self.reading = None
        judged, self._judged = self._judged, 0
        end = answer.position
        if end.epoch != self._epoch:  # the store lost the room's history: start over
            lost = Lost(self._epoch, self._offset, None, "epoch_changed")
            self._epoch, self._offset = end.epoch, 0
            self.restarts += 1
            self._held = {}
            foreign, self._foreign = self._foreign, []
            for index, message in enumerate(foreign):
                if message.epoch == end.epoch or index >= judged:  # else older still
                    self._keep(message)
            return self._next((lost,))
        del self._foreign[:judged]  # from an epoch the store had already left behind
        if isinstance(answer, Replay):
            for entry in answer.entries:
                if entry.offset > self._offset:
                    self._held.setdefault(entry.offset, StreamMessage.of(entry, end.epoch))
            return self._next()
        upto = min(self._held) - 1 if self._held else end.offset
        lost = Lost(self._epoch, self._offset, upto, answer.reason)
        self._offset = upto  # what was held after the hole goes out; the hole never will
        return self._next((lost,))

    def unfilled(self) -> None:
        """The read failed (the store is unreachable); :meth:`retry` asks again."""
        self.reading = None
        self._judged = 0

    def retry(self) -> Step:
        """After :meth:`unfilled`: ask again if anything still waits on history."""
        return self._next()

    def _next(self, lost: tuple[Lost, ...] = ()) -> Step:
        """Deliver what follows on; ask for a read if a hole or a stranger is left."""
        ready = []
        while (message := self._held.pop(self._offset + 1, None)) is not None:
            ready.append(message)
            self._offset = message.offset
        read = None
        if self.reading is None and (self._held or self._foreign):
            assert self._epoch is not None
            read = self.reading = StreamPosition(self._offset, self._epoch)
            self._judged = len(self._foreign)
        return Step(tuple(ready), read, lost)


class Backlog:
    """What a member's room delivered while its join was reading where it starts;
    ``restarts``: the stream's :attr:`RoomStream.restarts` when the join began."""

    __slots__ = ("_kept", "peer", "restarts")

    def __init__(self, peer: Peer, restarts: int) -> None:
        self.peer, self.restarts = peer, restarts
        self._kept: list[tuple[Outgoing, StreamMessage | None]] = []  # None: membership news

    def keep(self, out: Outgoing, message: StreamMessage | None) -> None:
        self._kept.append((out, message))

    def release(self, start: Start) -> list[Outgoing]:
        """What to push once the member starts at ``start``, in the order delivered."""
        return [out for out, message in self._kept
                if message is None or start.news(message.offset, message.epoch)]
