"""``room.*``: named groups of sessions that talk to each other, across nodes.

Membership lives in the room store, counted and ordered by user, so a join
costs the same in a room of ten and of ten thousand; traffic goes over the bus
on ``<prefix>.room.<room>``, which a node subscribes to while it has at least
one local member. Each node forwards what arrives to its local members
(:mod:`~rtctl.services.room_delivery`), except the session that sent it:

* ``room.message {room, from, data}`` for ``room.publish``;
* in a small room, ``room.joined`` / ``room.left {room, user}`` when a user's
  first session joins or their last one leaves (a second device is not news);
  in a big one, those are coalesced into periodic ``room.diff``.

A big room's member list is never sent whole: ``room.join`` answers its
``total`` and ``room.members`` pages through it (Discord's lazy member lists).
Leaving also happens when a session ends: on disconnect, or when its node died
and a survivor cleans up (:class:`~rtctl.services.sessions.SessionService`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any, TypeVar

from rtctl.backends.base import Subscription
from rtctl.exceptions import InvalidParams, RpcError
from rtctl.host import Host
from rtctl.protocol.codes import ErrorCode
from rtctl.router import CallContext, Peer, Router
from rtctl.services.room_delivery import RoomDelivery, RoomLimits, Timer
from rtctl.services.sessions import SessionService
from rtctl.services.state import StateService

__all__ = ["DEFAULT_PAGE", "MAX_PAGE", "MAX_ROOMS_PER_CONNECTION", "ROOM_NAME", "RoomService"]

ROOM_NAME = re.compile(r"[A-Za-z0-9_:-]{1,64}")  # one NATS subject token, readable in Redis
MAX_ROOMS_PER_CONNECTION = 100
DEFAULT_PAGE = 100  # users per room.members page when no limit is given
MAX_PAGE = 1000

_T = TypeVar("_T")


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


async def _paced(items: Iterable[_T], every: int) -> AsyncIterator[_T]:
    """``items``, giving the loop back every ``every`` of them (the memory store never
    awaits anything, so a long loop of its calls would otherwise hold the loop)."""
    for index, item in enumerate(items, 1):
        yield item
        if not index % every:
            await asyncio.sleep(0)


class RoomService:
    """Rooms for one gateway: the store, the bus and this node's members."""

    def __init__(self, host: Host, sessions: SessionService, *,
                 limits: RoomLimits = RoomLimits(), timer: Timer | None = None,
                 stateful: StateService | None = None) -> None:
        self._host = host
        self._stateful = stateful
        self._backends = sessions.backends
        self._limits = limits
        self._local: dict[str, dict[str, Peer]] = {}  # room → conn id → conn
        self._joined: dict[str, set[str]] = {}  # conn id → rooms
        self._subs: dict[str, Subscription] = {}
        self._delivery = RoomDelivery(self._local, limits, timer)
        sessions.on_ended(self._ended)
        sessions.on_resync(self._resync)
        host.on_shutdown(self._delivery.close)
        self.router = Router()
        self.router.add_method(self.join, name="room.join")
        self.router.add_method(self.leave, name="room.leave")
        self.router.add_method(self.publish, name="room.publish")
        self.router.add_method(self.members, name="room.members")

    def _subject(self, room: str) -> str:
        return f"{self._backends.subject_prefix}.room.{room}"

    async def _send(self, room: str, event: str, session_id: str, **fields: Any) -> None:
        await self._backends.bus.publish(
            self._subject(room), {"event": event, "room": room, "session": session_id, **fields})

    async def _drop_local(self, room: str, conn_id: str, *, leaving: bool = True) -> None:
        """Forget ``conn_id``'s membership here; ``leaving`` is False when its connection
        ended (a stateful room then keeps its snapshot, to resume if players come back)."""
        members = self._local.get(room, {})
        members.pop(conn_id, None)
        rooms = self._joined.get(conn_id, set())
        rooms.discard(room)
        if not rooms:
            self._joined.pop(conn_id, None)
        if self._stateful is not None:
            await self._stateful.left(room, conn_id, leaving=leaving)
        if not members:
            self._local.pop(room, None)
            self._delivery.forget(room)
            sub = self._subs.pop(room, None)
            if sub is not None:
                await sub.unsubscribe()

    async def _leave_store(self, room: str, session_id: str, user: str) -> None:
        last, total = await self._backends.rooms.leave(room, session_id)
        if last:
            await self._send(room, "left", session_id, user=user, total=total)

    async def _ended(self, session_id: str, user: str) -> None:
        local = self._joined.get(session_id, set())
        for room in list(local):
            await self._drop_local(room, session_id, leaving=False)
        for room in sorted(local | set(await self._backends.rooms.rooms_of(session_id))):
            await self._leave_store(room, session_id, user)

    async def _resync(self, conns: Sequence[Peer]) -> None:
        memberships = [(room, conn) for room, members in list(self._local.items())
                       for conn in list(members.values())]
        async for room, conn in _paced(memberships, self._limits.chunk):
            await self._backends.rooms.join(room, conn.id, conn.user)

    # -- methods -----------------------------------------------------------------

    async def join(self, ctx: CallContext, room: str,
                   options: dict[str, Any] | None = None) -> dict[str, Any]:
        """``room.join {room, options?}`` → ``{members, total}``; a big room's reply has no
        ``members``. A stateful room's adds ``version`` and ``encoding``, and takes the
        ``options`` its type's ``on_create`` reads (the first joiner's)."""
        _checked(room)
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
        if room not in self._subs:  # before the store: no message falls in between
            self._subs[room] = await self._backends.bus.subscribe(
                self._subject(room), functools.partial(self._delivery.deliver, room))
        self._local.setdefault(room, {})[conn.id] = conn
        self._joined.setdefault(conn.id, set()).add(room)
        try:
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
                await self._backends.rooms.leave(room, conn.id)  # quietly: nobody was told
                await self._drop_local(room, conn.id)
                raise
            if conn.id not in self._local.get(room, {}):  # its connection ended meanwhile
                await self._stateful.left(room, conn.id, leaving=False)
        if first:
            await self._send(room, "joined", conn.id, user=conn.user, total=total)
        return reply

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

    async def publish(self, ctx: CallContext, room: str, data: Any = None) -> None:
        """``room.publish {room, data}``: every other member gets ``room.message``."""
        self._require_member(ctx, _checked(room))
        await self._send(room, "message", ctx.connection_id, **{"from": ctx.user, "data": data})

    async def members(self, ctx: CallContext, room: str, cursor: str | None = None,
                      limit: int = DEFAULT_PAGE) -> dict[str, Any]:
        """``room.members {room, cursor?, limit?}`` → ``{members, total, next}``.

        Users in order, ``limit`` (1 to :data:`MAX_PAGE`) at a time; ``next`` is
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
