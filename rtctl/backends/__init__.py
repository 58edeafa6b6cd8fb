"""Shared state and events for the gateway's services: memory by default, Redis and NATS.

:func:`memory_backends` is the zero-configuration default (one process);
:func:`connect_backends` builds the bundle ``rtctl serve --redis URL --nats URL``
uses, so several gateway nodes share sessions, presence, rooms and room state::

    backends = connect_backends(redis_url="redis://127.0.0.1:6379/0",
                                nats_url="nats://127.0.0.1:4222", node_id="gw-1")
    async with Gateway(config, backends=backends) as gateway: ...

Redis may be given alone (state outlives a restart; no traffic between nodes);
NATS needs Redis (:func:`connect_backends` says why).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from rtctl.backends.base import (
    DEFAULT_NODE_TTL,
    DEFAULT_SESSION_TTL,
    Backends,
    BackendUnavailable,
    EventBus,
    Health,
    HistoryLimits,
    HistoryStore,
    Presence,
    PresenceStore,
    ReplyCache,
    RoomStore,
    SessionRecord,
    SessionStore,
    SnapshotStore,
)
from rtctl.backends.memory import (
    MemoryBus,
    MemoryHistoryStore,
    MemoryPresenceStore,
    MemoryReplyCache,
    MemoryRoomStore,
    MemorySessionStore,
    MemorySnapshotStore,
)
from rtctl.exceptions import ConfigError

__all__ = [
    "BackendUnavailable",
    "Backends",
    "EventBus",
    "HistoryLimits",
    "HistoryStore",
    "Presence",
    "PresenceStore",
    "ReplyCache",
    "RoomStore",
    "SessionRecord",
    "SessionStore",
    "SnapshotStore",
    "connect_backends",
    "default_node_id",
    "memory_backends",
]

_REDIS_SCHEMES = ("redis", "rediss", "unix")
_NATS_SCHEMES = ("nats", "tls")


def default_node_id() -> str:
    """``HOST-PID``: unique per process on a host, readable in logs and Redis."""
    return f"{socket.gethostname()}-{os.getpid()}"


def memory_backends(*, clock: Callable[[], float] = time.time, node_id: str | None = None,
                    node_ttl: float = DEFAULT_NODE_TTL,
                    history: HistoryLimits = HistoryLimits()) -> Backends:
    """Everything in this process: nothing to start, nothing that can fail."""
    return Backends(sessions=MemorySessionStore(clock=clock),
                    presence=MemoryPresenceStore(clock=clock), rooms=MemoryRoomStore(),
                    bus=MemoryBus(), snapshots=MemorySnapshotStore(clock=clock),
                    history=MemoryHistoryStore(history, clock=clock),
                    replies=MemoryReplyCache(clock=clock),
                    node_id=node_id or default_node_id(), node_ttl=node_ttl)


def _check_url(url: str, flag: str, schemes: tuple[str, ...]) -> None:
    parts = urlsplit(url)
    if parts.scheme not in schemes or not (parts.hostname or parts.path):
        raise ConfigError(f"{flag} expects a URL like {schemes[0]}://HOST:PORT, got {url!r}")
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise ConfigError(f"{flag}: {url!r} has a port that is not a number") from None


def connect_backends(*, redis_url: str | None = None, nats_url: str | None = None,
                     node_id: str | None = None, node_ttl: float = DEFAULT_NODE_TTL,
                     session_ttl: float = DEFAULT_SESSION_TTL, prefix: str = "rtctl",
                     history: HistoryLimits = HistoryLimits()) -> Backends:
    """A bundle on Redis and/or NATS; the URLs are checked now, connected at start.

    Raises :class:`ConfigError` for a URL that cannot be right, a TTL that is
    not positive, or NATS without Redis.
    """
    if node_ttl <= 0 or session_ttl <= node_ttl:
        raise ConfigError(f"--node-ttl must be positive and under the session TTL "
                          f"({session_ttl:g}s), got {node_ttl:g}s")
    if nats_url is not None and redis_url is None:
        # Nodes joined by NATS alone would each count their own offsets and keep their own
        # history, sessions and presence: a client moving between them would lose its place.
        raise ConfigError("--nats needs --redis: NATS shares only traffic between nodes, "
                          "while room offsets and history, sessions and presence must be "
                          "shared too; add --redis URL (or drop --nats for one node)")
    node = node_id or default_node_id()
    memory = memory_backends(node_id=node, node_ttl=node_ttl, history=history)
    sessions, presence, rooms, bus = memory.sessions, memory.presence, memory.rooms, memory.bus
    snapshots, history_store, replies = memory.snapshots, memory.history, memory.replies
    connections: list[Health] = []
    if redis_url is not None:
        from rtctl.backends.redis import (
            RedisConnection,
            RedisRoomStore,
            RedisSessionStore,
            RedisSnapshotStore,
        )
        from rtctl.backends.redis_history import RedisHistoryStore, RedisReplyCache
        from rtctl.backends.redis_presence import RedisPresenceStore

        _check_url(redis_url, "--redis", _REDIS_SCHEMES)
        redis = RedisConnection(redis_url, prefix=f"{prefix}:")
        sessions, presence = RedisSessionStore(redis), RedisPresenceStore(redis)
        rooms, snapshots = RedisRoomStore(redis), RedisSnapshotStore(redis)
        history_store, replies = RedisHistoryStore(redis, history), RedisReplyCache(redis)
        connections.append(redis)
    if nats_url is not None:
        from rtctl.backends.nats import NatsBus

        _check_url(nats_url, "--nats", _NATS_SCHEMES)
        nats_bus = NatsBus(nats_url, node_id=node)
        bus = nats_bus
        connections.append(nats_bus)
    return Backends(sessions=sessions, presence=presence, rooms=rooms, bus=bus,
                    snapshots=snapshots, history=history_store, replies=replies,
                    node_id=node, node_ttl=node_ttl,
                    session_ttl=session_ttl, subject_prefix=prefix,
                    connections=tuple(connections))
