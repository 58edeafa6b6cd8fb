"""``presence.*``: who is online, across every node, multi-device aware.

A user is online while any of their sessions is (the presence store counts
devices). They choose a status — ``online``, ``away``, ``busy`` or
``invisible`` — with optional text; ``invisible`` and "no device" both read as
``offline`` to others, with ``last_seen`` in Unix epoch milliseconds.

Every change is written to the presence store and then published on the bus
subject ``<prefix>.presence``; each node forwards it to its own subscribers as
``presence.changed`` notifications, skipping what a subscriber has already
seen. Each stored change raises the user's ``version``, carried by the bus
message, the notification and the replies: messages from two nodes may arrive
in either order, and one older than what a subscriber was last given is
dropped, so a late update never overwrites a newer status. NATS core may drop
messages while a node is cut off, so on resync the node re-announces its users
and re-reads what its subscribers watch.

Subscriptions belong to a connection and end when it closes, even while its
session is held for a resume: the connection that resumes it may be on another
node, which never had them. The client subscribes again (``presence.subscribe``
answers the current map, so nothing is missed); what others see of the user
does not flap meanwhile, since the session, not the connection, keeps the user
online.

A ``presence.changed`` waits in the ``chat`` lane of a subscriber's outbox,
coalescible by user: one still waiting when a newer one comes is replaced by
it, so a slow subscriber gets each user's latest status, not their history.

``/metrics`` shows ``rtctl_presence_online_users``: distinct users with a
connection on this node, counted from the session service's records at scrape time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any, TypedDict

from prometheus_client.core import GaugeMetricFamily, Metric

from rtctl.backends.base import Seen, Status
from rtctl.exceptions import InvalidParams
from rtctl.host import Host
from rtctl.protocol.codes import ErrorCode
from rtctl.protocol.lanes import Lane, Policy
from rtctl.router import CallContext, Peer, Router
from rtctl.services.sessions import SessionService

__all__ = ["MAX_TEXT", "MAX_USERS_PER_CALL", "MAX_WATCHED", "PresenceChanged",
           "PresenceService", "Watching"]

logger = logging.getLogger("rtctl.presence")

MAX_USERS_PER_CALL = 100
MAX_WATCHED = 1000  # users one connection may subscribe to
MAX_TEXT = 256  # characters of status text
_SEEN = ("status", "last_seen", "text")  # what a subscriber sees change


class _Watch:
    """One connection watching one user: the presence it was last sent, and the newest
    version it has heard of (sent, or found to change nothing it sees)."""

    __slots__ = ("conn", "seen", "version")

    def __init__(self, conn: Peer, seen: dict[str, Any], version: int) -> None:
        self.conn, self.seen, self.version = conn, seen, version


class PresenceChanged(Seen):
    user: str


class Watching(TypedDict):
    watching: list[str]


def _users(users: list[str]) -> list[str]:
    if not users or len(users) > MAX_USERS_PER_CALL:
        raise InvalidParams(f"Invalid params: 'users' must list 1 to {MAX_USERS_PER_CALL} users")
    if not all(users):
        raise InvalidParams("Invalid params: 'users' must not contain an empty name")
    return list(dict.fromkeys(users))


class PresenceService:
    """Presence for one gateway: the store, the bus and this node's subscribers."""

    def __init__(self, host: Host, sessions: SessionService) -> None:
        self._host = host
        self._backends = sessions.backends
        self._sessions = sessions
        self._subject = f"{self._backends.subject_prefix}.presence"
        self._watchers: dict[str, dict[str, _Watch]] = {}  # user → conn id → watch
        self._watching: dict[str, set[str]] = {}  # conn id → users
        sessions.on_started(self._started)
        sessions.on_detached(self._detached)
        sessions.on_ended(self._ended)
        sessions.on_resync(self._resync)
        host.on_startup(self._subscribe)
        host.add_metrics(self._families)
        self.router = Router()
        self.router.add_method(self.set, name="presence.set",
                               errors=[ErrorCode.BACKEND_UNAVAILABLE])
        self.router.add_method(self.get, name="presence.get",
                               errors=[ErrorCode.BACKEND_UNAVAILABLE])
        self.router.add_method(self.subscribe, name="presence.subscribe",
                               errors=[ErrorCode.BACKEND_UNAVAILABLE])
        self.router.add_method(self.unsubscribe, name="presence.unsubscribe")
        self.router.notification("presence.changed", PresenceChanged, doc=(
            "A watched user's presence changed (see `presence.subscribe`). Waits in the "
            "chat lane, coalescible by user: a slow subscriber gets each user's latest "
            "status, not their history. One with a `version` below one already received "
            "for that user is never sent."))

    def _families(self) -> Iterator[Metric]:
        online = {record.user for record in self._sessions.records.values()}
        yield GaugeMetricFamily("rtctl_presence_online_users",
                                "Distinct users with a connection on this node",
                                value=len(online))

    def _now_ms(self) -> float:
        return round(self._host.clock() * 1000, 3)

    async def _subscribe(self) -> None:
        await self._backends.bus.subscribe(self._subject, self._deliver)

    async def _announce(self, users: Sequence[str]) -> None:
        for user, presence in (await self._backends.presence.get(users)).items():
            await self._backends.bus.publish(self._subject, {"user": user, **presence.seen()})

    def _deliver(self, message: dict[str, Any]) -> None:
        user = message.get("user")
        watchers = self._watchers.get(user) if isinstance(user, str) else None
        if not watchers:
            return
        seen = {name: message.get(name) for name in _SEEN}
        version = message.get("version", 0)
        for watch in list(watchers.values()):
            if version < watch.version:  # a late copy of an older change, from another node
                continue
            watch.version = version
            if watch.seen != seen:  # a resync or a late message repeats what it knows
                watch.seen = seen
                watch.conn.notify("presence.changed", {"user": user, **seen,
                                                       "version": version},
                                  lane=Lane.CHAT, policy=Policy.COALESCIBLE,
                                  key=("presence", user))

    # -- sessions come and go ---------------------------------------------------

    async def _started(self, conn: Peer) -> None:
        if await self._backends.presence.connect(conn.user, conn.id):
            await self._announce([conn.user])

    async def _detached(self, conn_id: str) -> None:
        """The connection closed: its subscriptions end (not those of a newer connection
        that resumed its session here already)."""
        live = self._host.peer(conn_id)
        self._forget(conn_id, [user for user in self._watching.get(conn_id, ())
                               if self._watchers[user][conn_id].conn is not live])

    async def _ended(self, session_id: str, user: str) -> None:
        if await self._backends.presence.disconnect(user, session_id, now_ms=self._now_ms()):
            await self._announce([user])

    async def _resync(self, conns: Sequence[Peer]) -> None:
        for conn in conns:
            await self._backends.presence.connect(conn.user, conn.id)
        await self._announce(list(dict.fromkeys(conn.user for conn in conns)))
        if self._watchers:
            for user, presence in (await self._backends.presence.get(list(self._watchers))).items():
                self._deliver({"user": user, **presence.seen()})

    def _forget(self, conn_id: str, users: Sequence[str] | None) -> None:
        watched = self._watching.get(conn_id, set())
        for user in list(watched) if users is None else users:
            watched.discard(user)
            watchers = self._watchers.get(user, {})
            watchers.pop(conn_id, None)
            if not watchers:
                self._watchers.pop(user, None)
        if not watched:
            self._watching.pop(conn_id, None)

    # -- methods -----------------------------------------------------------------

    async def set(self, ctx: CallContext, status: Status,
                  text: str | None = None) -> Seen:
        """``presence.set {status, text?}`` → what others now see of the caller, and its
        version."""
        if text is not None and len(text) > MAX_TEXT:
            raise InvalidParams(f"Invalid params: 'text' must be at most {MAX_TEXT} characters")
        self._backends.require_healthy()  # store and broadcast together, or neither
        await self._backends.presence.set_status(ctx.user, status, text, now_ms=self._now_ms())
        await self._announce([ctx.user])
        return (await self._backends.presence.get([ctx.user]))[ctx.user].seen()

    async def get(self, users: list[str]) -> dict[str, Seen]:
        """``presence.get {users}`` → user → ``{status, last_seen, text, version}``."""
        found = await self._backends.presence.get(_users(users))
        return {user: presence.seen() for user, presence in found.items()}

    async def subscribe(self, ctx: CallContext, users: list[str]) -> dict[str, Seen]:
        """``presence.subscribe {users}``: the current map, then ``presence.changed``."""
        wanted = _users(users)
        watched = self._watching.get(ctx.connection_id, set())
        if len(watched | set(wanted)) > MAX_WATCHED:
            raise InvalidParams(f"Invalid params: a connection may watch at most "
                                f"{MAX_WATCHED} users")
        conn = ctx.peer
        assert conn is not None, "the gateway gives every call its caller's peer"
        current = await self.get(wanted)
        if self._host.peer(conn.id) is not conn:  # it closed meanwhile: nobody to tell
            return current
        self._watching.setdefault(conn.id, set()).update(wanted)
        for user, seen in current.items():
            self._watchers.setdefault(user, {})[conn.id] = _Watch(
                conn, {name: value for name, value in seen.items() if name in _SEEN},
                seen["version"])
        return current

    def unsubscribe(self, ctx: CallContext, users: list[str] | None = None) -> Watching:
        """``presence.unsubscribe {users?}`` (all when left out) → who is still watched."""
        self._forget(ctx.connection_id, None if users is None else _users(users))
        return {"watching": sorted(self._watching.get(ctx.connection_id, ()))}
