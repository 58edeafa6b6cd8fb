"""``room.*``: named groups of sessions that talk to each other, across nodes.

Membership lives in the room store, counted and ordered by user, so a join
costs the same in a room of ten and of ten thousand; traffic goes over the bus
on ``<prefix>.room.<room>``, which a node subscribes to while it has at least
one local member. Each node forwards what arrives to its local members
(:mod:`~rtctl.services.room_delivery`), except the session that sent it:

* ``room.message {room, from, data, offset, epoch}`` for ``room.publish``: the
  message is appended to the room's history first (its ``offset`` counts the
  room's messages from 1 within its ``epoch``), then sent; each node delivers
  a room's messages in offset order, holes filled from history
  (:mod:`~rtctl.services.room_stream`), in the outbox lane, policy and key the
  publish chose (:mod:`~rtctl.services.room_tags`);
* in a small room, ``room.joined`` / ``room.left {room, user}`` when a user's
  first session joins or their last one leaves (a second device is not news);
  in a big one, those are coalesced into periodic ``room.diff``.

``room.join`` answers where the member starts (``offset, epoch``); a client
that reconnects joins with ``since`` and gets what it missed replayed, or is
told why not (Centrifugo's stream recovery). A big room's member list is never
sent whole: ``room.join`` answers its ``total`` and ``room.members`` pages
through it (Discord's lazy member lists). A connection that closes stops
receiving at once; its session leaves the store's rooms when it ends: after the
recovery grace unless it is resumed, or when its node died and a survivor
cleans up (:class:`~rtctl.services.sessions.SessionService`). A join whose
connection closes before it is done is taken back: its client was never told.
``/metrics`` shows rooms, members and recoveries (:mod:`~rtctl.services.room_metrics`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import logging
import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, TypeVar, cast

from rtctl.backends.base import BackendUnavailable, Replay, Unrecoverable
from rtctl.exceptions import InvalidParams, RpcError
from rtctl.host import Host
from rtctl.protocol.codes import ErrorCode
from rtctl.protocol.streams import Position, PositionParam, StreamPosition, parse_position
from rtctl.router import CallContext, Peer, Router
from rtctl.services.room_delivery import LocalRoom, RoomDelivery, RoomLimits, Timer
from rtctl.services.room_metrics import RoomMetrics
from rtctl.services.room_tags import PublishLane, Tags
from rtctl.services.room_wire import Joined, MembersPage, RoomDiff, RoomMember, RoomMessage
from rtctl.services.sessions import SessionService
from rtctl.services.state import StateService

__all__ = ["DEFAULT_PAGE", "MAX_PAGE", "MAX_ROOMS_PER_CONNECTION", "ROOM_NAME", "RoomService"]

ROOM_NAME = re.compile(r"[A-Za-z0-9_:-]{1,64}")  # one NATS subject token, readable in Redis
MAX_ROOMS_PER_CONNECTION = 100
DEFAULT_PAGE = 100  # users per room.members page when no limit is given
MAX_PAGE = 1000

_T = TypeVar("_T")

logger = logging.getLogger("rtctl.rooms")


def _checked(room: str) -> str:
    if ROOM_NAME.fullmatch(room) is None:
        raise InvalidParams("Invalid params: 'room' must be 1 to 64 characters of "
                            "A-Z a-z 0-9 _ : -", {"room": room})
    return room


def _cursor(after: str) -> str:
    """Opaque to clients: the last user of a page, so the next starts after it."""
    return base64.urlsafe_b64encode(after.encode()).decode().rstrip("=")


def _after(cursor: str) -> str:
    try:
        after = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_",
                                 validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        after = ""
    if not after:
        raise InvalidParams("Invalid params: 'cursor' must be a cursor that room.members "
                            "returned", {"cursor": cursor})
    return after


def _since(value: Any) -> StreamPosition:
    try:
        return parse_position(value)
    except ValueError as exc:
        raise InvalidParams(f"Invalid params: 'since': {exc}", {"since": value}) from None


def _check_rejoin(local: LocalRoom, conn: Peer, since: Any) -> None:
    """A connection joins a room it is in already: it is sent nothing again."""
    if conn.id in local.joining:
        raise InvalidParams(f"Invalid params: this connection is joining {local.name!r} "
                            "already", {"room": local.name})
    if since is not None:
        raise InvalidParams(f"Invalid params: 'since' is for joining, and this connection "
                            f"is in {local.name!r} already (it was sent every message since)",
                            {"since": since})


async def _paced(items: Iterable[_T], every: int) -> AsyncIterator[_T]:
    """``items``, giving the loop back every ``every`` of them (the memory store never
    awaits anything, so a long loop of its calls would otherwise hold the loop)."""
    for index, item in enumerate(items, 1):
        yield item
        if not index % every:
            await asyncio.sleep(0)


class RoomService:
    """Rooms for one gateway: the store, history, the bus and this node's members."""

    def __init__(self, host: Host, sessions: SessionService, *,
                 limits: RoomLimits = RoomLimits(), timer: Timer | None = None,
                 stateful: StateService | None = None) -> None:
        self._host = host
        self._stateful = stateful
        self._backends = sessions.backends
        self._limits = limits
        self._joined: dict[str, set[str]] = {}  # conn id → rooms
        self._delivery = RoomDelivery(self._backends.history, limits, timer)
        self._metrics = RoomMetrics(self._delivery)
        host.add_metrics(self._metrics.families)
        sessions.on_detached(self._detached)
        sessions.on_ended(self._ended)
        sessions.on_resync(self._resync)
        host.on_shutdown(self._delivery.close)
        self.router = Router()
        self.router.add_method(self.join, name="room.join",
                               errors=[ErrorCode.WRONG_NODE, ErrorCode.BACKEND_UNAVAILABLE])
        self.router.add_method(self.leave, name="room.leave",
                               errors=[ErrorCode.FORBIDDEN, ErrorCode.BACKEND_UNAVAILABLE])
        self.router.add_method(self.publish, name="room.publish", handles_key=True,
                               errors=[ErrorCode.FORBIDDEN, ErrorCode.BACKEND_UNAVAILABLE])
        self.router.add_method(self.members, name="room.members",
                               errors=[ErrorCode.BACKEND_UNAVAILABLE])
        # Sent by RoomDelivery (rtctl.services.room_delivery), declared with the methods.
        self.router.notification("room.message", RoomMessage, doc=(
            "A message another member published (`room.publish`), in the lane it chose; "
            "`offset` counts the room's messages from 1 within its `epoch`."))
        for news, what in (("joined", "first session joined"), ("left", "last session left")):
            self.router.notification(f"room.{news}", RoomMember,
                                     doc=f"In a small room: a user's {what}.")
        self.router.notification("room.diff", RoomDiff, doc=(
            "In a big room: the net joins and leaves since the last diff, at most a "
            "configured number of names per list (`truncated` when there were more)."))

    def _subject(self, room: str) -> str:
        return f"{self._backends.subject_prefix}.room.{room}"

    async def _send(self, room: str, event: str, session_id: str, **fields: Any) -> None:
        await self._backends.bus.publish(
            self._subject(room), {"event": event, "room": room, "session": session_id, **fields})

    async def _drop_local(self, room: str, conn_id: str, *, leaving: bool = True) -> None:
        """Forget ``conn_id``'s membership here; ``leaving`` is False when its connection
        ended (a stateful room then keeps its snapshot, to resume if players come back)."""
        rooms = self._joined.get(conn_id, set())
        rooms.discard(room)
        if not rooms:
            self._joined.pop(conn_id, None)
        local = self._delivery.room(room)
        emptied = local is not None and self._delivery.remove(local, conn_id)
        if self._stateful is not None:
            await self._stateful.left(room, conn_id, leaving=leaving)
        if emptied and local is not None and local.subscription is not None:
            await local.subscription.unsubscribe()

    async def _subscribe(self, local: LocalRoom) -> None:
        """Subscribe this node to the room once, before its member is in the store: no news
        or message sent after that passes it by."""
        if local.subscription is None:
            async with local.opening:
                if local.subscription is None:
                    local.subscription = await self._backends.bus.subscribe(
                        self._subject(local.name), functools.partial(self._delivery.deliver, local))
                    if self._delivery.room(local.name) is not local:  # emptied meanwhile
                        await local.subscription.unsubscribe()

    async def _leave_store(self, room: str, session_id: str, user: str) -> None:
        last, total = await self._backends.rooms.leave(room, session_id)
        if last:
            await self._send(room, "left", session_id, user=user, total=total)

    async def _detached(self, conn_id: str) -> None:
        """A connection closed: nothing is pushed to it any more. Its session stays in the
        store's rooms until it ends (:meth:`_ended`), so a resume flaps nothing."""
        live = self._host.peer(conn_id)  # a newer connection of the session, resumed here
        for room in sorted(self._joined.get(conn_id, ())):
            local = self._delivery.room(room)
            if local is None or local.member(conn_id) is not live:
                await self._drop_local(room, conn_id, leaving=False)

    async def _ended(self, session_id: str, user: str) -> None:
        for room in sorted(await self._backends.rooms.rooms_of(session_id)):
            await self._leave_store(room, session_id, user)

    async def _resync(self, conns: Sequence[Peer]) -> None:
        memberships = [(local.name, conn) for local in self._delivery.rooms()
                       for conn in local.peers()]
        async for room, conn in _paced(memberships, self._limits.chunk):
            await self._backends.rooms.join(room, conn.id, conn.user)

    # -- methods -----------------------------------------------------------------

    async def join(self, ctx: CallContext, room: str, options: dict[str, Any] | None = None,
                   since: PositionParam | None = None) -> Joined:
        """``room.join {room, options?, since?}`` → ``{members, total, offset, epoch}``.

        A big room's reply (more than 100 users) has no ``members``. A stateful
        room's adds ``version`` and ``encoding``, and hands ``options`` to the room
        type's handler when this join creates the room (``on_create``; later
        joiners' options are ignored). ``offset, epoch``: the stream position the
        member starts after. With ``since`` (the last position the client had), every
        later message is pushed first (``recovered: true, replayed: n``), or none
        (``recovered: false, reason``): never a partial replay.
        """
        _checked(room)
        position = None if since is None else _since(since)
        stateful = self._stateful is not None and self._stateful.handles(room)
        if options is not None and not stateful:
            raise InvalidParams("Invalid params: 'options' are for stateful rooms, and "
                                f"{room!r} is not one", {"room": room})
        mine = self._joined.get(ctx.connection_id, set())
        if room not in mine and len(mine) >= MAX_ROOMS_PER_CONNECTION:
            raise InvalidParams(f"Invalid params: a connection may be in at most "
                                f"{MAX_ROOMS_PER_CONNECTION} rooms")
        conn = ctx.peer
        assert conn is not None, "the gateway gives every call its caller's peer"
        self._backends.require_healthy()
        local = self._delivery.open(room)
        here = local.member(conn.id)
        if here is not None and here is not conn:  # a closed connection of this session
            await self._drop_local(room, conn.id, leaving=False)
            local, here = self._delivery.open(room), None
        if here is None:
            self._delivery.admit(local, conn)
        else:
            _check_rejoin(local, conn, since)
        self._joined.setdefault(conn.id, set()).add(room)
        try:
            await self._subscribe(local)
            read = None if here is not None else await self._read(local, position)
            first, total = await self._backends.rooms.join(room, conn.id, conn.user)
        except RpcError:
            await self._drop_local(room, conn.id)
            raise
        reply = await self._membership(room, total)
        if stateful:
            assert self._stateful is not None
            try:
                reply.update(await self._stateful.joined(room, conn, options))
            except BaseException:  # refused (by the game, or another node owns it): undo it
                await self._undo_join(room, conn, first)
                await self._drop_local(room, conn.id)
                raise
        now = self._delivery.room(room)  # (not ``local`` if that emptied meanwhile)
        holder = None if now is None else now.member(conn.id)
        if holder is not conn:  # its connection closed meanwhile: nobody hears of this join
            if stateful and self._stateful is not None:
                await self._stateful.left(room, conn.id, leaving=False)
            # Taken back only if its session has ended too: one held for a resume, or
            # resumed elsewhere, keeps its membership (the session's end leaves the room).
            if holder is None and await self._backends.sessions.get(conn.id) is None:
                await self._undo_join(room, conn, first)
            return cast(Joined, reply)
        reply.update(self._entered(local, conn, read, recovering=position is not None))
        if first:
            await self._send(room, "joined", conn.id, user=conn.user, total=total)
        return cast(Joined, reply)

    async def _undo_join(self, room: str, conn: Peer, first: bool) -> None:
        """Take back a store join that is not going through. Others knew the user was in
        the room unless that join was its ``first`` session there: they are told it left
        if this was its last one."""
        last, total = await self._backends.rooms.leave(room, conn.id)
        if last and not first:
            await self._send(room, "left", conn.id, user=conn.user, total=total)

    async def _read(self, local: LocalRoom, since: StreamPosition | None
                    ) -> Replay | Unrecoverable:
        """Where a joining member starts: the stream's end, or what it missed ``since``.

        The first read after the node subscribed starts the room's stream here; joins
        that come meanwhile read after it, so no member starts before the stream.
        """
        if local.stream.started:
            return await self._history_after(local.name, since)
        async with local.opening:
            read = await self._history_after(local.name, since)
            self._delivery.start(local, read.position)
        return read

    async def _history_after(self, room: str, since: StreamPosition | None
                             ) -> Replay | Unrecoverable:
        history = self._backends.history
        if since is None:
            return Replay(await history.position(room), ())
        return await history.since(room, since)

    def _entered(self, local: LocalRoom, conn: Peer, read: Replay | Unrecoverable | None, *,
                 recovering: bool) -> Mapping[str, object]:
        """The member receives from here on: the reply's stream fields."""
        if read is None:  # in the room already: where what it was sent has reached
            ahead = local.recent.get(conn.id)
            here = local.stream.position if ahead is None else ahead.position
            assert here is not None, "a member receiving has a started stream"
            return here.to_json()
        if isinstance(read, Unrecoverable):  # (only a read since a position can be)
            self._delivery.activate(local, conn, read.position)
            self._metrics.recovery(read.reason)
            return {**read.position.to_json(), "recovered": False, "reason": read.reason}
        replayed = self._delivery.activate(local, conn, read.position, read.entries)
        if not recovering:
            return read.position.to_json()
        self._metrics.recovery("recovered", replayed)
        return {**read.position.to_json(), "recovered": True, "replayed": replayed}

    async def _membership(self, room: str, total: int) -> dict[str, Any]:
        small = self._limits.small_room
        if total > small:
            return {"total": total}
        members, total = await self._backends.rooms.members(room, after=None, limit=small + 1)
        return {"members": members, "total": total} if total <= small else {"total": total}

    def _require_member(self, ctx: CallContext, room: str) -> None:
        if room not in self._joined.get(ctx.connection_id, ()):
            raise RpcError(ErrorCode.FORBIDDEN, f"Not in room {room!r}: join it first",
                           {"room": room})

    async def leave(self, ctx: CallContext, room: str) -> None:
        """``room.leave {room}``; -32003 if this connection is not in it."""
        self._require_member(ctx, _checked(room))
        self._backends.require_healthy()
        await self._leave_store(room, ctx.connection_id, ctx.user)
        await self._drop_local(room, ctx.connection_id)

    async def publish(self, ctx: CallContext, room: str, data: Any = None,
                      lane: PublishLane = None, policy: str | None = None,
                      key: str | None = None) -> Position:
        """``room.publish {room, data, lane?, policy?, key?}`` → ``{offset, epoch}``, once
        the message is in the room's history; every other member gets ``room.message``,
        queued in ``lane`` (absent or null: ``events``) with ``policy`` (absent or
        null: the lane's default; ``coalescible`` needs ``key``).

        Re-sent with the same ``idempotency_key`` (by the same user, to the same room,
        while the first is kept), it answers the first one's position and appends
        nothing. A bus that fails after the append costs no message: every node
        fills the hole from history when the next message comes.
        """
        self._require_member(ctx, _checked(room))
        tags = Tags.published(lane, policy, key).fields()
        self._backends.require_healthy()
        repeat = None if ctx.idempotency_key is None else f"{ctx.user}:{ctx.idempotency_key}"
        position, duplicate = await self._backends.history.append(
            room, {"from": ctx.user, "data": data, "session": ctx.connection_id, **tags},
            key=repeat)
        if not duplicate:
            try:
                await self._send(room, "message", ctx.connection_id,
                                 **{"from": ctx.user, "data": data}, **position.to_json(),
                                 **tags)
            except BackendUnavailable as exc:
                logger.warning("room %s: message %d is in history but not on the bus (%s)",
                               room, position.offset, exc.message)
        return position.to_json()

    async def members(self, ctx: CallContext, room: str, cursor: str | None = None,
                      limit: int = DEFAULT_PAGE) -> MembersPage:
        """``room.members {room, cursor?, limit?}`` → ``{members, total, next}``.

        Users in order, ``limit`` (1 to 1000) at a time; ``next`` is
        the ``cursor`` of the following page, null after the last. A walk sees
        every user who stays in the room throughout exactly once.
        """
        self._require_member(ctx, _checked(room))
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidParams(f"Invalid params: 'limit' must be 1 to {MAX_PAGE}",
                                {"limit": limit})
        after = None if cursor is None else _after(cursor)
        page, total = await self._backends.rooms.members(room, after=after, limit=limit + 1)
        more = len(page) > limit
        page = page[:limit]
        return {"members": page, "total": total, "next": _cursor(page[-1]) if more else None}
