"""``room.*``: named groups of sessions that talk to each other, across nodes.

Membership lives in the room store (so ``room.join`` can answer every member,
wherever connected); traffic goes over the bus on ``<prefix>.room.<room>``,
which a node subscribes to while it has at least one local member. Each node
forwards what arrives to its local members, except the session that sent it:

* ``room.message {room, from, data}`` for ``room.publish``;
* ``room.joined`` / ``room.left {room, user}`` when a user's first session
  joins or their last one leaves (a second device joining is not news).

Leaving also happens when a session ends: on disconnect, or when its node died
and a survivor cleans up (:class:`~rtctl.services.sessions.SessionService`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

from rtctl.backends.base import Subscription
from rtctl.exceptions import InvalidParams, RpcError
from rtctl.host import Host
from rtctl.protocol import jsonrpc
from rtctl.protocol.codes import ErrorCode
from rtctl.router import CallContext, Peer, Router
from rtctl.services.sessions import SessionService

__all__ = ["MAX_ROOMS_PER_CONNECTION", "ROOM_NAME", "RoomService"]

ROOM_NAME = re.compile(r"[A-Za-z0-9_:-]{1,64}")  # one NATS subject token, readable in Redis
MAX_ROOMS_PER_CONNECTION = 100


def _checked(room: str) -> str:
    if ROOM_NAME.fullmatch(room) is None:
        raise InvalidParams("Invalid params: 'room' must be 1 to 64 characters of "
                            "A-Z a-z 0-9 _ : -", {"room": room})
    return room


class RoomService:
    """Rooms for one gateway: the store, the bus and this node's members."""

    def __init__(self, host: Host, sessions: SessionService) -> None:
        self._host = host
        self._backends = sessions.backends
        self._local: dict[str, dict[str, Peer]] = {}  # room → conn id → conn
        self._joined: dict[str, set[str]] = {}  # conn id → rooms
        self._subs: dict[str, Subscription] = {}
        sessions.on_ended(self._ended)
        sessions.on_resync(self._resync)
        self.router = Router()
        self.router.add_method(self.join, name="room.join")
        self.router.add_method(self.leave, name="room.leave")
        self.router.add_method(self.publish, name="room.publish")

    def _subject(self, room: str) -> str:
        return f"{self._backends.subject_prefix}.room.{room}"

    async def _send(self, room: str, event: str, session_id: str, **fields: Any) -> None:
        await self._backends.bus.publish(
            self._subject(room), {"event": event, "room": room, "session": session_id, **fields})

    def _deliver(self, room: str, message: dict[str, Any]) -> None:
        event, sender = message.get("event"), message.get("session")
        if event == "message":
            method, params = "room.message", {"room": room, "from": message.get("from"),
                                              "data": message.get("data")}
        elif event in ("joined", "left"):
            method, params = f"room.{event}", {"room": room, "user": message.get("user")}
        else:
            return
        data = jsonrpc.dumps(jsonrpc.encode_notification(method, params))  # once for all
        for conn_id, conn in list(self._local.get(room, {}).items()):
            if conn_id != sender:
                conn.push(data)

    async def _drop_local(self, room: str, conn_id: str) -> None:
        members = self._local.get(room, {})
        members.pop(conn_id, None)
        rooms = self._joined.get(conn_id, set())
        rooms.discard(room)
        if not rooms:
            self._joined.pop(conn_id, None)
        if not members:
            self._local.pop(room, None)
            sub = self._subs.pop(room, None)
            if sub is not None:
                await sub.unsubscribe()

    async def _leave_store(self, room: str, session_id: str, user: str) -> None:
        if await self._backends.rooms.leave(room, session_id, user):
            await self._send(room, "left", session_id, user=user)

    async def _ended(self, session_id: str, user: str) -> None:
        local = self._joined.get(session_id, set())
        for room in list(local):
            await self._drop_local(room, session_id)
        for room in sorted(local | set(await self._backends.rooms.rooms_of(session_id))):
            await self._leave_store(room, session_id, user)

    async def _resync(self, conns: Sequence[Peer]) -> None:
        for room, members in list(self._local.items()):
            for conn in list(members.values()):
                await self._backends.rooms.join(room, conn.id, conn.user)

    # -- methods -----------------------------------------------------------------

    async def join(self, ctx: CallContext, room: str) -> dict[str, Any]:
        """``room.join {room}`` → ``{members}``: every user in the room, sorted."""
        _checked(room)
        mine = self._joined.get(ctx.connection_id, set())
        if room not in mine and len(mine) >= MAX_ROOMS_PER_CONNECTION:
            raise InvalidParams(f"Invalid params: a connection may be in at most "
                                f"{MAX_ROOMS_PER_CONNECTION} rooms")
        conn = ctx.peer
        assert conn is not None, "the gateway gives every call its caller's peer"
        self._backends.require_healthy()
        if room not in self._subs:  # before the store: no message falls in between
            self._subs[room] = await self._backends.bus.subscribe(
                self._subject(room), functools.partial(self._deliver, room))
        self._local.setdefault(room, {})[conn.id] = conn
        self._joined.setdefault(conn.id, set()).add(room)
        try:
            first, members = await self._backends.rooms.join(room, conn.id, conn.user)
        except RpcError:
            await self._drop_local(room, conn.id)
            raise
        if first:
            await self._send(room, "joined", conn.id, user=conn.user)
        return {"members": members}

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
