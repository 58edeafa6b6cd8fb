"""The embedded backends: real in-process stores and bus, the zero-configuration default.

They keep the contract of the Redis and NATS backends exactly (the same
contract tests run over all of them), so one process can also host several
gateways that share one :class:`~rtctl.backends.base.Backends` bundle, as the
service tests do. TTLs are read from an injectable clock, lazily, so nothing
runs in the background.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_left, bisect_right, insort
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from itertools import islice
from typing import Any, Generic, TypeVar

from rtctl.backends.base import (
    DEFAULT_POSITION_TTL,
    HistoryEntry,
    HistoryLimits,
    MessageHandler,
    Presence,
    Replay,
    SessionRecord,
    Status,
    Unrecoverable,
)
from rtctl.backends.history import new_epoch, replay_after
from rtctl.protocol.streams import StreamPosition

__all__ = ["MemoryBus", "MemoryHistoryStore", "MemoryPresenceStore", "MemoryReplyCache",
           "MemoryRoomStore", "MemorySessionStore", "MemorySnapshotStore"]

Clock = Callable[[], float]
V = TypeVar("V")
_SWEEP_MIN = 64  # below this many entries, expired ones wait to be read


class _Expiring(Generic[V]):
    """Values by key, each until its own expiry.

    An expired entry is dropped when read, and all of them are swept whenever
    the table has doubled since the last sweep, so keys nobody reads again (a
    closed room's snapshot, a session whose node died) cannot pile up: the
    table stays under twice its live entries (or ``_SWEEP_MIN``), at an
    amortised O(1) per write.
    """

    __slots__ = ("_clock", "_entries", "_sweep_at")

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._entries: dict[str, tuple[V, float]] = {}  # key → (value, expires)
        self._sweep_at = _SWEEP_MIN

    def __len__(self) -> int:
        return len(self._entries)

    def values(self) -> list[V]:
        """Every value held, the expired ones included until they are swept."""
        return [value for value, _ in self._entries.values()]

    def get(self, key: str) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] <= self._clock():
            del self._entries[key]
            return None
        return entry[0]

    def set(self, key: str, value: V, ttl: float) -> None:
        now = self._clock()
        self._entries[key] = (value, now + ttl)
        if len(self._entries) >= self._sweep_at:
            self._entries = {k: e for k, e in self._entries.items() if e[1] > now}
            self._sweep_at = max(_SWEEP_MIN, 2 * len(self._entries))

    def discard(self, key: str) -> None:
        self._entries.pop(key, None)


class MemorySessionStore:
    """Session records and node heartbeats in dicts; expiry checked on read."""

    def __init__(self, *, clock: Clock = time.time) -> None:
        self._clock = clock
        self._records: _Expiring[SessionRecord] = _Expiring(clock)
        self._by_user: dict[str, set[str]] = {}
        self._by_node: dict[str, dict[str, str]] = {}
        self._beats: dict[str, float] = {}  # node → heartbeat expiry
        self._claims: dict[str, float] = {}

    async def put(self, records: Sequence[SessionRecord], *, ttl: float) -> None:
        for record in records:
            self._records.set(record.id, record, ttl)
            self._by_user.setdefault(record.user, set()).add(record.id)
            self._by_node.setdefault(record.node, {})[record.id] = record.user

    async def get(self, session_id: str) -> SessionRecord | None:
        return self._records.get(session_id)

    async def remove(self, session_id: str, *, user: str, node: str) -> None:
        self._records.discard(session_id)
        self._by_user.get(user, set()).discard(session_id)
        if not self._by_user.get(user, True):
            del self._by_user[user]
        self._by_node.get(node, {}).pop(session_id, None)

    async def by_user(self, user: str) -> list[SessionRecord]:
        ids = self._by_user.get(user, set())
        records = [r for r in map(self._records.get, list(ids)) if r is not None]
        ids.intersection_update(r.id for r in records)  # drop the expired from the index
        return sorted(records, key=lambda r: (r.created_at, r.id))

    async def by_node(self, node: str) -> dict[str, str]:
        return dict(self._by_node.get(node, {}))

    async def beat(self, node: str, *, ttl: float) -> bool:
        now = self._clock()
        alive = self._beats.get(node, 0.0) > now
        self._beats[node] = now + ttl
        return alive

    async def dead_nodes(self) -> list[str]:
        now = self._clock()
        return sorted(node for node, expires in self._beats.items() if expires <= now)

    async def claim(self, node: str, claimant: str, *, ttl: float) -> bool:
        now = self._clock()
        if self._claims.get(node, 0.0) > now:
            return False
        self._claims[node] = now + ttl
        return True

    async def forget_node(self, node: str) -> None:
        self._beats.pop(node, None)
        self._by_node.pop(node, None)


class MemoryPresenceStore:
    """Presence per user; the devices are the session ids that keep a user online."""

    def __init__(self, *, clock: Clock = time.time) -> None:
        self._clock = clock
        self._presence: dict[str, Presence] = {}
        self._devices: dict[str, set[str]] = {}

    def _update(self, user: str, **changes: Any) -> None:
        stored = self._presence.get(user, Presence())
        self._presence[user] = replace(
            stored, devices=len(self._devices.get(user, ())), **changes,
            version=max(stored.version + 1, int(self._clock() * 1000)))

    async def connect(self, user: str, session_id: str) -> bool:
        devices = self._devices.setdefault(user, set())
        if session_id in devices:
            return False
        devices.add(session_id)
        self._update(user)
        return len(devices) == 1

    async def disconnect(self, user: str, session_id: str, *, now_ms: float) -> bool:
        devices = self._devices.get(user, set())
        had = session_id in devices
        devices.discard(session_id)
        if not devices:
            self._devices.pop(user, None)
        self._update(user, last_seen=now_ms)
        return had and not devices

    async def set_status(self, user: str, status: Status, text: str | None, *,
                         now_ms: float) -> None:
        self._update(user, status=status, text=text,
                     **({"last_seen": now_ms} if status == "invisible" else {}))

    async def get(self, users: Sequence[str]) -> dict[str, Presence]:
        return {user: self._presence.get(user, Presence()) for user in users}


class _Room:
    """One room: its sessions, each user's session count, and its users in order."""

    __slots__ = ("counts", "sessions", "users")

    def __init__(self) -> None:
        self.sessions: dict[str, str] = {}  # session → user
        self.counts: dict[str, int] = {}  # user → sessions here
        self.users: list[str] = []  # sorted; insort moves pointers, cheap next to a scan


class MemoryRoomStore:
    """Room → sessions and users; each session's rooms."""

    def __init__(self) -> None:
        self._rooms: dict[str, _Room] = {}
        self._of: dict[str, set[str]] = {}

    async def join(self, room: str, session_id: str, user: str) -> tuple[bool, int]:
        state = self._rooms.get(room)
        if state is None:
            state = self._rooms[room] = _Room()
        self._of.setdefault(session_id, set()).add(room)
        if session_id in state.sessions:
            return False, len(state.counts)
        state.sessions[session_id] = user
        count = state.counts[user] = state.counts.get(user, 0) + 1
        if count == 1:
            insort(state.users, user)
        return count == 1, len(state.counts)

    async def leave(self, room: str, session_id: str) -> tuple[bool, int]:
        rooms = self._of.get(session_id, set())
        rooms.discard(room)
        if not rooms:
            self._of.pop(session_id, None)
        state = self._rooms.get(room)
        user = None if state is None else state.sessions.pop(session_id, None)
        if state is None or user is None:
            return False, 0 if state is None else len(state.counts)
        last = state.counts[user] == 1
        if last:
            del state.counts[user]
            del state.users[bisect_left(state.users, user)]
        else:
            state.counts[user] -= 1
        if not state.sessions:
            del self._rooms[room]
        return last, len(state.counts)

    async def members(self, room: str, *, after: str | None, limit: int) -> tuple[list[str], int]:
        state = self._rooms.get(room)
        if state is None:
            return [], 0
        start = 0 if after is None else bisect_right(state.users, after)
        return state.users[start:start + limit], len(state.counts)

    async def rooms_of(self, session_id: str) -> list[str]:
        return sorted(self._of.get(session_id, ()))


class MemorySnapshotStore:
    """Room owners (leases) and snapshots, each with its own expiry."""

    def __init__(self, *, clock: Clock = time.time) -> None:
        self._owners: _Expiring[str] = _Expiring(clock)
        self._snapshots: _Expiring[tuple[int, bytes]] = _Expiring(clock)

    def __len__(self) -> int:
        """Owners and snapshots held, the expired ones included until they are swept."""
        return len(self._owners) + len(self._snapshots)

    async def own(self, room: str, node: str, *, ttl: float) -> str:
        owner = self._owners.get(room)
        if owner is not None and owner != node:
            return owner
        self._owners.set(room, node, ttl)
        return node

    async def release(self, room: str, node: str) -> None:
        if self._owners.get(room) == node:
            self._owners.discard(room)

    async def put(self, room: str, version: int, data: bytes, *, ttl: float) -> None:
        self._snapshots.set(room, (version, bytes(data)), ttl)  # a copy, as Redis would keep

    async def get(self, room: str) -> tuple[int, bytes] | None:
        return self._snapshots.get(room)

    async def forget(self, room: str) -> None:
        self._snapshots.discard(room)


class _Window:
    """A room's kept messages, each with its idempotency key, and the keys' offsets."""

    __slots__ = ("kept", "keys")

    def __init__(self) -> None:
        self.kept: deque[tuple[HistoryEntry, str | None]] = deque()
        self.keys: dict[str, int] = {}


class MemoryHistoryStore:
    """Each room's end (epoch, offset) and window of messages, each expiring on its own.

    A window holds the last ``limits.size`` messages and is dropped ``limits.ttl`` s after
    its room's last append; an end is forgotten :data:`DEFAULT_POSITION_TTL` s after it.
    Messages are kept as given (not copied): readers must not change them.
    """

    def __init__(self, limits: HistoryLimits = HistoryLimits(), *,
                 clock: Clock = time.time) -> None:
        self.limits = limits
        self._ends: _Expiring[StreamPosition] = _Expiring(clock)
        self._windows: _Expiring[_Window] = _Expiring(clock)

    def __len__(self) -> int:
        """Ends, messages and keys held, the expired ones included until they are swept."""
        return len(self._ends) + sum(len(w.kept) + len(w.keys) for w in self._windows.values())

    def _end(self, room: str) -> StreamPosition:
        end = self._ends.get(room)
        if end is None:  # never published to, or forgotten: a new epoch (no window is
            end = StreamPosition(0, new_epoch())  # left: it lives at most as long)
            self._ends.set(room, end, DEFAULT_POSITION_TTL)
        return end

    async def append(self, room: str, message: dict[str, Any], *, key: str | None = None
                     ) -> tuple[StreamPosition, bool]:
        end = self._end(room)
        window = self._windows.get(room) or _Window()
        if key is not None and (first := window.keys.get(key)) is not None:
            return StreamPosition(first, end.epoch), True
        end = StreamPosition(end.offset + 1, end.epoch)
        if len(window.kept) == self.limits.size:
            _, old_key = window.kept.popleft()
            if old_key is not None:
                del window.keys[old_key]
        window.kept.append((HistoryEntry(end.offset, message), key))
        if key is not None:
            window.keys[key] = end.offset
        self._ends.set(room, end, DEFAULT_POSITION_TTL)
        self._windows.set(room, window, self.limits.ttl)
        return end, False

    async def position(self, room: str) -> StreamPosition:
        return self._end(room)

    async def since(self, room: str, since: StreamPosition) -> Replay | Unrecoverable:
        end = self._end(room)
        window = self._windows.get(room)
        kept: list[HistoryEntry] = []
        if window is not None and since.offset < end.offset:  # a window is never empty
            start = max(0, since.offset + 1 - window.kept[0][0].offset)
            kept = [entry for entry, _ in
                    islice(window.kept, start, start + self.limits.max_replay)]
        return replay_after(since, end, kept, self.limits)


class MemoryReplyCache:
    """Replies by key, each until its own expiry."""

    def __init__(self, *, clock: Clock = time.time) -> None:
        self._replies: _Expiring[str] = _Expiring(clock)

    def __len__(self) -> int:
        """Replies held, the expired ones included until they are swept."""
        return len(self._replies)

    async def recall(self, key: str) -> str | None:
        return self._replies.get(key)

    async def remember(self, key: str, reply: str, *, ttl: float) -> None:
        self._replies.set(key, reply, ttl)


class _MemorySubscription:
    def __init__(self, bus: MemoryBus, subject: str, handler: MessageHandler) -> None:
        self._bus, self._subject, self._handler = bus, subject, handler

    async def unsubscribe(self) -> None:
        handlers = self._bus._handlers.get(self._subject, [])
        if self._handler in handlers:
            handlers.remove(self._handler)


class MemoryBus:
    """Subjects to handlers in one process; delivery is scheduled, never inline.

    Handlers run on a later loop iteration, as they would from a network bus,
    so a publisher never re-enters its own subscriber.
    """

    def __init__(self) -> None:
        self._handlers: dict[str, list[MessageHandler]] = {}

    async def publish(self, subject: str, message: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        for handler in list(self._handlers.get(subject, ())):
            loop.call_soon(handler, message)

    async def subscribe(self, subject: str, handler: MessageHandler) -> _MemorySubscription:
        self._handlers.setdefault(subject, []).append(handler)
        return _MemorySubscription(self, subject, handler)
