"""Sessions, rooms and room state in Redis, through redis-py's asyncio client.

Several gateways share one Redis. Every key starts with a prefix (default
``rtctl:``) followed by a kind and one name, so names containing ``:`` never
collide; ``docs/integration.md`` lists the keys, types and TTLs. Changes that
must be seen together run in one ``MULTI`` transaction.

Failure is bounded: sockets time out after ``timeout`` s, a broken pooled
connection is retried once, and any connection error becomes
:class:`~rtctl.backends.base.BackendUnavailable`. A monitor task pings every
``probe`` s so :meth:`RedisConnection.failure` answers ``/readyz`` from memory.
Every call is timed, and its failures counted, under a fixed operation name
(:data:`RedisOperation`) in :attr:`RedisConnection.stats`, for ``/metrics``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Literal, TypeAlias, cast, get_args

import orjson
from redis import exceptions as rexc
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from rtctl.backends.base import BackendUnavailable, RecoveryHook, SessionRecord
from rtctl.backends.stats import BackendStats
from rtctl.protocol.redact import redact

__all__ = ["REDIS_OPERATIONS", "RedisConnection", "RedisOperation", "RedisRoomStore",
           "RedisSessionStore", "RedisSnapshotStore"]

logger = logging.getLogger("rtctl.backends.redis")

DEFAULT_TIMEOUT = 1.0  # a call needing a dead Redis fails within about this
DEFAULT_PROBE = 0.5  # how often the monitor pings (readiness freshness)
DEFAULT_CONNECTIONS = 100  # sockets to Redis per node; more calls at once wait for one
_ERRORS = (rexc.ConnectionError, rexc.TimeoutError, OSError)
_NOT_STARTED = "not started"

# Every call site's name in /metrics (``store.method``, and the health probe): a fixed set,
# so mypy refuses a guard() with a name not declared here.
RedisOperation: TypeAlias = Literal[
    "ping",
    "session.put", "session.get", "session.remove", "session.by_user", "session.by_node",
    "session.beat", "session.dead_nodes", "session.claim", "session.forget_node",
    "presence.connect", "presence.disconnect", "presence.set_status", "presence.get",
    "rooms.join", "rooms.leave", "rooms.members", "rooms.rooms_of",
    "snapshots.own", "snapshots.release", "snapshots.put", "snapshots.get", "snapshots.forget",
    "history.append", "history.position", "history.since",
    "replies.recall", "replies.remember",
]
REDIS_OPERATIONS: tuple[RedisOperation, ...] = get_args(RedisOperation)


class RedisConnection:
    """One client shared by the stores, with cached health for ``/readyz``."""

    name = "redis"

    def __init__(self, url: str, *, prefix: str = "rtctl:", timeout: float = DEFAULT_TIMEOUT,
                 probe: float = DEFAULT_PROBE, connections: int = DEFAULT_CONNECTIONS) -> None:
        self.url = url
        self.prefix = prefix
        # A burst of calls (a reconnect storm's joins) waits up to `timeout` for a socket:
        # the default pool refuses the call at once, which would read as Redis being down.
        pool = BlockingConnectionPool.from_url(
            url, max_connections=connections, timeout=timeout, decode_responses=True,
            socket_timeout=timeout, socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1), health_check_interval=0)
        self.client: Redis = Redis(connection_pool=pool)
        self._probe = probe
        self.stats = BackendStats(REDIS_OPERATIONS)
        self._failure: str | None = _NOT_STARTED
        self._hooks: list[RecoveryHook] = []
        self._monitor: asyncio.Task[None] | None = None

    def key(self, kind: str, name: str = "") -> str:
        return f"{self.prefix}{kind}:{name}" if name else f"{self.prefix}{kind}"

    async def start(self) -> None:
        with self.guard("ping"):
            await self.client.ping()
        self._monitor = asyncio.get_running_loop().create_task(self._watch())

    async def close(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        await self.client.aclose(close_connection_pool=True)

    def failure(self) -> str | None:
        return self._failure

    def on_recovered(self, hook: RecoveryHook) -> None:
        self._hooks.append(hook)

    @contextlib.contextmanager
    def guard(self, operation: RedisOperation) -> Iterator[None]:
        """Turn connection errors into BackendUnavailable, keep the health state, and time
        the call as ``operation`` (:attr:`stats`)."""
        with self.stats.timed(operation):
            try:
                yield
            except _ERRORS as exc:
                self._mark(f"{type(exc).__name__}: {exc}"[:200])
                raise BackendUnavailable("redis", str(exc) or type(exc).__name__) from None
        self._mark(None)

    def _mark(self, failure: str | None) -> None:
        was, self._failure = self._failure, failure
        if failure is not None and was is None:
            logger.warning("redis unreachable: %s", failure)
        elif failure is None and was == _NOT_STARTED:
            # Nothing was missed: no recovery. (The URL may carry a password.)
            logger.info("redis connected at %s", redact(self.url))
        elif failure is None and was is not None:
            logger.info("redis reachable again")
            self.stats.reconnects += 1
            for hook in self._hooks:
                hook()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._probe)  # a periodic probe, not synchronisation
            with contextlib.suppress(BackendUnavailable), self.guard("ping"):
                await self.client.ping()


def _record(raw: dict[str, str]) -> SessionRecord | None:
    if not raw:
        return None
    return SessionRecord(id=raw["id"], user=raw["user"], node=raw["node"],
                         created_at=float(raw["created_at"]), last_seen=float(raw["last_seen"]),
                         metadata=orjson.loads(raw.get("metadata", "{}")))


class RedisSessionStore:
    """``session:ID`` hashes with a TTL; ``user-sessions:`` and ``node-sessions:`` indexes."""

    def __init__(self, redis: RedisConnection) -> None:
        self._r = redis

    async def put(self, records: Sequence[SessionRecord], *, ttl: float) -> None:
        r, ms = self._r, int(ttl * 1000)
        pipe = r.client.pipeline(transaction=True)
        for rec in records:
            key = r.key("session", rec.id)
            pipe.hset(key, mapping={
                "id": rec.id, "user": rec.user, "node": rec.node,
                "created_at": repr(rec.created_at), "last_seen": repr(rec.last_seen),
                "metadata": orjson.dumps(dict(rec.metadata)).decode()})
            pipe.pexpire(key, ms)
            pipe.sadd(r.key("user-sessions", rec.user), rec.id)
            pipe.pexpire(r.key("user-sessions", rec.user), ms)
            pipe.hset(r.key("node-sessions", rec.node), rec.id, rec.user)
        with r.guard("session.put"):
            await pipe.execute()

    async def get(self, session_id: str) -> SessionRecord | None:
        with self._r.guard("session.get"):
            raw = await self._r.client.hgetall(self._r.key("session", session_id))
        return _record(cast(dict[str, str], raw))

    async def remove(self, session_id: str, *, user: str, node: str) -> None:
        r = self._r
        pipe = r.client.pipeline(transaction=True)
        pipe.delete(r.key("session", session_id))
        pipe.srem(r.key("user-sessions", user), session_id)
        pipe.hdel(r.key("node-sessions", node), session_id)
        with r.guard("session.remove"):
            await pipe.execute()

    async def by_user(self, user: str) -> list[SessionRecord]:
        r, index = self._r, self._r.key("user-sessions", user)
        with r.guard("session.by_user"):
            ids = sorted(cast(set[str], await r.client.smembers(index)))
            pipe = r.client.pipeline(transaction=False)
            for session_id in ids:
                pipe.hgetall(r.key("session", session_id))
            found = [_record(raw) for raw in await pipe.execute()]
            expired = [sid for sid, rec in zip(ids, found, strict=True) if rec is None]
            if expired:
                await r.client.srem(index, *expired)
        records = [rec for rec in found if rec is not None]
        return sorted(records, key=lambda rec: (rec.created_at, rec.id))

    async def by_node(self, node: str) -> dict[str, str]:
        with self._r.guard("session.by_node"):
            raw = await self._r.client.hgetall(self._r.key("node-sessions", node))
        return cast(dict[str, str], raw)

    async def beat(self, node: str, *, ttl: float) -> bool:
        r = self._r
        pipe = r.client.pipeline(transaction=True)
        pipe.set(r.key("node", node), "1", px=int(ttl * 1000), get=True)
        pipe.sadd(r.key("nodes"), node)
        with r.guard("session.beat"):
            previous, _ = await pipe.execute()
        return previous is not None

    async def dead_nodes(self) -> list[str]:
        r = self._r
        with r.guard("session.dead_nodes"):
            nodes = sorted(cast(set[str], await r.client.smembers(r.key("nodes"))))
            pipe = r.client.pipeline(transaction=False)
            for node in nodes:
                pipe.exists(r.key("node", node))
            alive = await pipe.execute()
        return [node for node, up in zip(nodes, alive, strict=True) if not up]

    async def claim(self, node: str, claimant: str, *, ttl: float) -> bool:
        with self._r.guard("session.claim"):
            return bool(await self._r.client.set(self._r.key("reap", node), claimant, nx=True,
                                                 px=int(ttl * 1000)))

    async def forget_node(self, node: str) -> None:
        r = self._r
        pipe = r.client.pipeline(transaction=True)
        pipe.srem(r.key("nodes"), node)
        pipe.delete(r.key("node-sessions", node), r.key("node", node))
        with r.guard("session.forget_node"):
            await pipe.execute()


# Membership changes run as scripts: whether a session was the user's first or last
# in the room decides the sorted set, and must be read and written in one step.
_JOIN = """
if redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  redis.call('SADD', KEYS[4], ARGV[3])
  return {0, redis.call('ZCARD', KEYS[3])}
end
redis.call('SADD', KEYS[4], ARGV[3])
local first = redis.call('HINCRBY', KEYS[2], ARGV[2], 1) == 1
if first then redis.call('ZADD', KEYS[3], 0, ARGV[2]) end
return {first and 1 or 0, redis.call('ZCARD', KEYS[3])}
"""
_LEAVE = """
redis.call('SREM', KEYS[4], ARGV[2])
local user = redis.call('HGET', KEYS[1], ARGV[1])
if not user then return {0, redis.call('ZCARD', KEYS[3])} end
redis.call('HDEL', KEYS[1], ARGV[1])
local last = redis.call('HINCRBY', KEYS[2], user, -1) <= 0
if last then
  redis.call('HDEL', KEYS[2], user)
  redis.call('ZREM', KEYS[3], user)
end
return {last and 1 or 0, redis.call('ZCARD', KEYS[3])}
"""


class RedisRoomStore:
    """``room:NAME`` hash (session → user), ``room-counts:NAME`` hash (user → sessions),
    ``room-users:NAME`` sorted set (users, all score 0: ordered by bytes), and
    ``session-rooms:ID`` set."""

    def __init__(self, redis: RedisConnection) -> None:
        self._r = redis
        self._join = redis.client.register_script(_JOIN)
        self._leave = redis.client.register_script(_LEAVE)

    def _keys(self, room: str, session_id: str) -> list[str]:
        r = self._r
        return [r.key("room", room), r.key("room-counts", room), r.key("room-users", room),
                r.key("session-rooms", session_id)]

    async def join(self, room: str, session_id: str, user: str) -> tuple[bool, int]:
        with self._r.guard("rooms.join"):
            first, total = await self._join(keys=self._keys(room, session_id),
                                            args=[session_id, user, room])
        return bool(first), int(total)

    async def leave(self, room: str, session_id: str) -> tuple[bool, int]:
        with self._r.guard("rooms.leave"):
            last, total = await self._leave(keys=self._keys(room, session_id),
                                            args=[session_id, room])
        return bool(last), int(total)

    async def members(self, room: str, *, after: str | None, limit: int) -> tuple[list[str], int]:
        r, key = self._r, self._r.key("room-users", room)
        pipe = r.client.pipeline(transaction=True)
        pipe.zrangebylex(key, "-" if after is None else f"({after}", "+", start=0, num=limit)
        pipe.zcard(key)
        with r.guard("rooms.members"):
            users, total = await pipe.execute()
        return list(users), int(total)

    async def rooms_of(self, session_id: str) -> list[str]:
        with self._r.guard("rooms.rooms_of"):
            raw = await self._r.client.smembers(self._r.key("session-rooms", session_id))
        return sorted(cast(set[str], raw))


# A lease is read and written in one step, so two nodes can never both believe they
# claimed it, and a node whose lease lapsed cannot delete its successor's.
_OWN = """
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then return owner end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
"""


class RedisSnapshotStore:
    """``state-owner:ROOM`` string (the owning node) and ``state-snapshot:ROOM`` string
    (``VERSION:DATA``, the data in base64: the shared client decodes replies as UTF-8,
    which arbitrary bytes would not survive)."""

    def __init__(self, redis: RedisConnection) -> None:
        self._r = redis
        self._own = redis.client.register_script(_OWN)
        self._release = redis.client.register_script(_RELEASE)

    async def own(self, room: str, node: str, *, ttl: float) -> str:
        with self._r.guard("snapshots.own"):
            owner = await self._own(keys=[self._r.key("state-owner", room)],
                                    args=[node, int(ttl * 1000)])
        return str(owner)

    async def release(self, room: str, node: str) -> None:
        with self._r.guard("snapshots.release"):
            await self._release(keys=[self._r.key("state-owner", room)], args=[node])

    async def put(self, room: str, version: int, data: bytes, *, ttl: float) -> None:
        value = f"{version}:{base64.b64encode(data).decode('ascii')}"
        with self._r.guard("snapshots.put"):
            await self._r.client.set(self._r.key("state-snapshot", room), value,
                                     px=int(ttl * 1000))

    async def get(self, room: str) -> tuple[int, bytes] | None:
        with self._r.guard("snapshots.get"):
            raw = await self._r.client.get(self._r.key("state-snapshot", room))
        if raw is None:
            return None
        version, _, data = cast(str, raw).partition(":")
        return int(version), base64.b64decode(data, validate=True)

    async def forget(self, room: str) -> None:
        with self._r.guard("snapshots.forget"):
            await self._r.client.delete(self._r.key("state-snapshot", room))
