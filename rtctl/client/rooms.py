"""Rooms whose message streams survive reconnects: nothing missed, nothing twice.

::

    rooms = Rooms(client)
    rooms.on_message(lambda m: print(m.room, m.sender, m.data, m.offset))
    rooms.on_recovery(on_recovery)          # recovered (n replayed), or a reset to handle
    await rooms.join("lobby")
    await rooms.publish("lobby", {"text": "hi"})   # StreamPosition(offset, epoch)

Every ``room.message`` carries its place in the room's stream: ``offset``
(+1 per message) and ``epoch`` (changes when the room's history is lost). A
:class:`RoomStream` per room keeps the client's position: the last offset
up to which it has every message, its own acknowledged publishes counted
(the gateway does not send a member's own messages back). On each new
connection, before anything queued is sent, every room is joined again with
``since`` = that position (a reconnect step, :mod:`rtctl.client.recovery`);
the gateway replays what was missed or says it cannot (``recovered: false``
and a reason, ``docs/api.md``; never part of it). Each room's outcome is a
:class:`RoomRecovery`; a reset means messages were lost and the game must
resynchronise whatever it built from them. An epoch change seen on a live
message is a reset too. A join again that fails for a while (no reply in
time: it may yet be done, and the gateway refuses a second ``since`` on the
same connection; a busy backend) loses nothing: the connection is given up
(:meth:`~rtctl.client.recovery.Reconnection.reconnect`) and the next one joins
again from the same position. Only a refusal that retrying cannot cure ends
the room.

The position is not simply the highest offset seen: an own publish
acknowledged at offset *n* does not prove that the messages before *n* from
others have arrived (they may still be on their way), so it counts only once
everything before it has. Joining again from an earlier position costs a
replayed message or two, which are dropped as duplicates by offset; joining
from a later one would lose them.

:meth:`Rooms.publish` is a request with a fresh ``idempotency_key``: if the
connection drops before the reply, it is sent again after the rooms were
joined again, and the gateway answers the first one's ``{offset, epoch}``
without appending it twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeAlias, TypeVar

from rtctl.client.connection import Client
from rtctl.client.errors import ClientError, ConnectionLost, ProtocolError, ServerError
from rtctl.client.recovery import Reconnection
from rtctl.protocol.codes import ErrorCode
from rtctl.protocol.lanes import Lane, Policy
from rtctl.protocol.streams import StreamPosition, parse_position, position_in

__all__ = ["RoomCounters", "RoomMessage", "RoomRecovery", "RoomStream", "Rooms"]

logger = logging.getLogger("rtctl.client")

_R = TypeVar("_R")
_KEY_BYTES = 12  # 16 URL-safe characters: within idempotency_key's 64, never repeated
# How far a hole (a message shed, or still on a slower lane) may hold the position back,
# in offsets remembered beyond it and in offsets from the newest, before it is given up on:
# bounded memory in a room whose droppable messages leave many. Below
# the gateway's default history (and max_replay, 1000 messages), so a join again from a
# position held back by a hole is still replayed, not reset as too_many. As many holes
# given up on are remembered, so a message that comes after all is still delivered.
MAX_AHEAD = 512


class RoomMessage(NamedTuple):
    """One ``room.message``: ``sender`` is its ``from`` (a user id). A NamedTuple: one per
    message, on the hot path."""

    room: str
    sender: str
    data: Any
    offset: int
    epoch: str

    @property
    def position(self) -> StreamPosition:
        """Where the message stands in its room's stream."""
        return StreamPosition(self.offset, self.epoch)


@dataclass(frozen=True, slots=True)
class RoomRecovery:
    """What joining ``room`` again after a reconnect gave.

    ``recovered``: every missed message was (or is being) replayed, ``replayed``
    of them. Else a reset: ``reason`` is the gateway's (``too_old``,
    ``epoch_changed``, ``too_many``, ``unknown_offset``; ``epoch_changed`` also
    when a live message came with a new epoch) and what was missed is lost; or
    the join was refused for good (an error that is not ``retryable``: the room
    was closed, the join forbidden): ``error`` says why, and the room is no
    longer joined. ``position`` is where the room's stream stood (the client is
    there once the replay is in).
    """

    room: str
    recovered: bool
    replayed: int
    reason: str | None
    position: StreamPosition
    error: ClientError | None = None


@dataclass(slots=True)
class RoomCounters:
    """Totals over every room of one :class:`Rooms`."""

    recovered: int = 0  # joins again that replayed every missed message
    replayed: int = 0  # messages those replays brought
    resets: int = 0  # joins again, or live epoch changes, that lost what was missed
    duplicates: int = 0  # messages dropped: already delivered, or the client's own
    late: int = 0  # messages delivered after their hole was given up on (MAX_AHEAD)


_Event: TypeAlias = RoomMessage | RoomRecovery


class RoomStream:
    """One room's place in its stream as this client has it; no I/O.

    Messages that arrive while a join is in flight are held until its answer
    says where the stream starts (the gateway may send them first).
    """

    def __init__(self, room: str, options: dict[str, Any] | None = None, *,
                 counters: RoomCounters | None = None) -> None:
        self.room = room
        self.options = options
        self.counters = RoomCounters() if counters is None else counters
        self.position: StreamPosition | None = None  # None until the first join answers
        self._ahead: set[int] = set()  # had beyond the position (own publishes, overtakers)
        # Holes the position moved past, newest last: a message may still fill one.
        self._given_up: OrderedDict[int, None] = OrderedDict()
        self._held: list[RoomMessage] | None = []  # while a join is in flight

    def join_params(self) -> dict[str, Any]:
        """``room.join``'s params: ``since`` the position once there is one."""
        params: dict[str, Any] = {"room": self.room}
        if self.options is not None:
            params["options"] = self.options
        if self.position is not None:
            params["since"] = self.position.to_json()
        return params

    def joining(self) -> None:
        self._held = []

    def joined(self, reply: Any) -> list[_Event]:
        """The join's answer: what to report and deliver now. ValueError if malformed."""
        if not isinstance(reply, dict):
            raise ValueError(f"not an object: {reply!r:.100}")
        start = position_in(reply)
        since, events = self.position, list[_Event]()
        if since is None:
            self.position = start
        elif reply.get("recovered") is True:
            replayed = reply.get("replayed")
            if type(replayed) is not int:
                raise ValueError("'replayed' must be an integer")
            self.counters.recovered += 1
            self.counters.replayed += replayed
            events.append(RoomRecovery(self.room, True, replayed, None, start))
        elif isinstance(reason := reply.get("reason"), str):
            events.append(self._reset(start, reason))
        else:
            raise ValueError("'reason' must be a string when not recovered")
        held, self._held = self._held or [], None
        for message in held:
            events += self.received(message)
        return events

    def received(self, message: RoomMessage) -> list[_Event]:
        """A ``room.message`` of this room: what to report and deliver, in order."""
        if self._held is not None:
            self._held.append(message)
            return []
        assert self.position is not None  # a join answered, or messages are held
        if message.epoch != self.position.epoch:
            reset = self._reset(StreamPosition(message.offset - 1, message.epoch),
                                "epoch_changed")
            return [reset, *self.received(message)]
        if message.offset in self._given_up:
            self.counters.late += 1
        elif message.offset <= self.position.offset or message.offset in self._ahead:
            self.counters.duplicates += 1
            return []
        self._had(message.offset)
        return [message]

    def acked(self, position: StreamPosition) -> None:
        """An own publish is in the stream at ``position`` (never sent back: it counts as had)."""
        current = self.position
        if current is not None and position.epoch == current.epoch:
            self._had(position.offset)

    def _had(self, offset: int) -> None:
        """``offset`` is had: move the position over every offset had without a hole."""
        assert self.position is not None
        ahead, at, given_up = self._ahead, self.position.offset, self._given_up
        if offset > at:
            ahead.add(offset)
        else:
            given_up.pop(offset, None)  # a hole given up on, filled after all
        newest = max(offset, at)
        while True:
            while at + 1 in ahead:
                at += 1
                ahead.discard(at)
            # Held back too far, by count or by span (holes between what came): the
            # first hole is given up on, remembered, and the position moves on.
            if not ahead or (len(ahead) <= MAX_AHEAD and newest - at <= MAX_AHEAD):
                break
            hole, at = at + 1, min(ahead) - 1
            given_up.update(dict.fromkeys(range(max(hole, at + 1 - MAX_AHEAD), at + 1)))
            while len(given_up) > MAX_AHEAD:
                given_up.popitem(last=False)
        self.position = StreamPosition(at, self.position.epoch)

    def _reset(self, start: StreamPosition, reason: str) -> RoomRecovery:
        self.counters.resets += 1
        self._ahead.clear()
        self._given_up.clear()
        self.position = start
        return RoomRecovery(self.room, False, 0, reason, start)


class Rooms:
    """The rooms one client is in, their streams kept across reconnects."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.counters = RoomCounters()
        self._rooms: dict[str, RoomStream] = {}
        self._on_message: list[Callable[[RoomMessage], object]] = []
        self._on_recovery: list[Callable[[RoomRecovery], object]] = []
        client.on_notification(lambda event: self._notified(event.params), "room.message")
        client.add_reconnect_step(self._rejoin)

    def on_message(self, callback: Callable[[RoomMessage], _R]) -> Callable[[RoomMessage], _R]:
        """Call ``callback(RoomMessage)`` for each message of a joined room, in stream
        order, each once (replays included)."""
        self._on_message.append(callback)
        return callback

    def on_recovery(self, callback: Callable[[RoomRecovery], _R]
                    ) -> Callable[[RoomRecovery], _R]:
        """Call ``callback(RoomRecovery)`` for each room joined again, and each reset."""
        self._on_recovery.append(callback)
        return callback

    def position(self, room: str) -> StreamPosition | None:
        """Up to where ``room``'s stream is had; None if not joined (or not yet)."""
        stream = self._rooms.get(room)
        return None if stream is None else stream.position

    async def join(self, room: str, *, options: dict[str, Any] | None = None,
                   timeout: float | None = None) -> dict[str, Any]:
        """``room.join`` and return its result; messages flow from its ``offset`` on.

        Raises what ``client.call`` raises, and ValueError if already joined.
        """
        if room in self._rooms:
            raise ValueError(f"room {room!r} is already joined")
        stream = RoomStream(room, options, counters=self.counters)
        self._rooms[room] = stream  # before the join is sent: its messages may come first
        try:
            reply: dict[str, Any] = await self.client.call("room.join", stream.join_params(),
                                                           timeout=timeout)
            events = _answer(stream, reply)
        except BaseException:
            self._drop(stream)
            raise
        if self._rooms.get(room) is stream:  # not left meanwhile
            self._emit(events)
        return reply

    async def publish(self, room: str, data: Any, *, lane: Lane = Lane.EVENTS,
                      policy: Policy | None = None, key: str | None = None,
                      timeout: float | None = None) -> StreamPosition:
        """``room.publish`` as a request; its place in the stream once it is in history.

        ``lane``, ``policy`` and ``key`` say how members whose queues are backed up get
        it (``docs/api.md``, room.publish): ``policy=Policy.COALESCIBLE, key="pos:alice"``
        lets a newer message with that key replace this one while it waits. Sent again
        after a reconnect if the reply was lost: appended once all the same.
        """
        params: dict[str, Any] = {"room": room, "data": data}
        if lane is not Lane.EVENTS:
            params["lane"] = lane.label
        if policy is not None:
            params["policy"] = policy.value
        if key is not None:
            params["key"] = key
        result = await self.client.call("room.publish", params, timeout=timeout,
                                        idempotency_key=secrets.token_urlsafe(_KEY_BYTES))
        try:
            position = parse_position(result)
        except ValueError as exc:
            raise ProtocolError(f"room.publish answered {result!r:.100}: {exc}") from None
        if (stream := self._rooms.get(room)) is not None:
            stream.acked(position)
        return position

    async def leave(self, room: str, *, timeout: float | None = None) -> None:
        """Stop delivering ``room``'s messages and ``room.leave`` (sent again after a
        reconnect if need be). ValueError if not joined."""
        if self._rooms.pop(room, None) is None:
            raise ValueError(f"room {room!r} is not joined")
        try:
            await self.client.call("room.leave", {"room": room}, timeout=timeout,
                                   idempotency_key=secrets.token_urlsafe(_KEY_BYTES))
        except ServerError as exc:  # a session not resumed holds no membership: left already
            if exc.code != ErrorCode.FORBIDDEN:
                raise

    async def _rejoin(self, link: Reconnection) -> None:
        joined = [stream for stream in self._rooms.values() if stream.position is not None]
        await asyncio.gather(*(self._rejoin_one(link, stream) for stream in joined))

    async def _rejoin_one(self, link: Reconnection, stream: RoomStream) -> None:
        since = stream.position
        assert since is not None
        # Joins refused by the gateway's inbound rate (-32029) never ran: they are asked
        # again on this link, each after the wait it names times a jitter (the rooms of a
        # client re-join at once; in step they would be refused together again), until a
        # call's timeout has passed. A new link would only bring a new burst and the crowd.
        deadline = asyncio.get_running_loop().time() + self.client.call_timeout
        while True:
            stream.joining()
            try:
                events = _answer(stream, await link.call("room.join", stream.join_params()))
            except ConnectionLost:
                return  # the next connection joins again from the same position
            except ClientError as exc:
                if self._rooms.get(stream.room) is not stream:
                    return  # left meanwhile
                wait = exc.retry_after * random.uniform(1, 2)
                if exc.retry_after and asyncio.get_running_loop().time() + wait < deadline:
                    await asyncio.sleep(wait)
                    continue
                if exc.retryable:  # the next connection joins again from the same position
                    await link.reconnect(exc)
                else:
                    self._drop(stream)
                    self._emit([RoomRecovery(stream.room, False, 0, None, since, exc)])
                return
            if self._rooms.get(stream.room) is stream:  # not left meanwhile
                self._emit(events)
            return

    def _notified(self, params: Any) -> None:
        try:
            room, sender = params["room"], params["from"]
            if not isinstance(room, str) or not isinstance(sender, str):
                raise TypeError("room and from must be strings")
            at = position_in(params)
        except (KeyError, TypeError, ValueError) as exc:
            logger.warning("room.message dropped: %s: %r", exc, params)
            return
        if (stream := self._rooms.get(room)) is not None:
            self._emit(stream.received(RoomMessage(room, sender, params.get("data"),
                                                   at.offset, at.epoch)))

    def _emit(self, events: list[_Event]) -> None:
        for event in events:
            if isinstance(event, RoomMessage):
                for on_message in self._on_message:
                    self.client._emit(on_message, event)
                continue
            logger.info("room %s: %s", event.room,
                        f"recovered, {event.replayed} replayed" if event.recovered
                        else f"reset ({event.reason or event.error})")
            for on_recovery in self._on_recovery:
                self.client._emit(on_recovery, event)

    def _drop(self, stream: RoomStream) -> None:
        if self._rooms.get(stream.room) is stream:
            del self._rooms[stream.room]


def _answer(stream: RoomStream, reply: Any) -> list[_Event]:
    try:
        return stream.joined(reply)
    except ValueError as exc:
        raise ProtocolError(f"room.join answered {reply!r:.100}: {exc}") from None
