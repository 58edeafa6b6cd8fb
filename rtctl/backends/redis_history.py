"""Room streams and kept replies in Redis: offsets, epochs and messages shared by every node.

A room's stream is three keys (``docs/integration.md`` lists them with their TTLs):

* ``history-meta:ROOM`` — hash ``{epoch, offset}``: the stream's end. It lives
  :data:`~rtctl.backends.base.DEFAULT_POSITION_TTL` after the last append, so
  offsets never restart under kept messages;
* ``history:ROOM`` — a Redis Stream whose entry IDs are ``<offset>-0``, trimmed with
  ``MAXLEN ~ size`` and expiring ``ttl`` after the last append;
* ``history-keys:ROOM`` — sorted set of idempotency keys scored by their offset,
  trimmed to the same window and expiring with the stream.

Each operation is one Lua script, so two nodes appending at once get two offsets,
and a room's epoch is made once: the first script to find no epoch stores its
candidate (``HSETNX``) and drops what an older epoch left, every other reads it.
A flushed or restarted Redis thus gives a room a new epoch, which readers see as
``epoch_changed``.
"""

from __future__ import annotations

from typing import Any, cast

import orjson

from rtctl.backends.base import (
    DEFAULT_POSITION_TTL,
    HistoryEntry,
    HistoryLimits,
    Replay,
    Unrecoverable,
)
from rtctl.backends.history import new_epoch, replay_after
from rtctl.backends.redis import RedisConnection
from rtctl.protocol.streams import StreamPosition

__all__ = ["RedisHistoryStore", "RedisReplyCache"]

_POSITION_TTL_MS = int(DEFAULT_POSITION_TTL * 1000)

# Every script: KEYS meta, stream, keys; ARGV[1] a candidate epoch, ARGV[2] the position TTL.
_EPOCH = """
local function epoch()
  if redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1]) == 1 then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    redis.call('DEL', KEYS[2], KEYS[3])
  end
  return redis.call('HGET', KEYS[1], 'epoch')
end
local function offset()
  return tonumber(redis.call('HGET', KEYS[1], 'offset') or '0')
end
"""
# ARGV[3] message, ARGV[4] key ('' for none), ARGV[5] size, ARGV[6] ttl ms.
_APPEND = _EPOCH + """
local e = epoch()
if ARGV[4] ~= '' then
  local first = redis.call('ZSCORE', KEYS[3], ARGV[4])
  if first then return {tonumber(first), e, 1} end
end
local n = redis.call('HINCRBY', KEYS[1], 'offset', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], n .. '-0', 'm', ARGV[3])
if ARGV[4] ~= '' then redis.call('ZADD', KEYS[3], n, ARGV[4]) end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', n - tonumber(ARGV[5]))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
redis.call('PEXPIRE', KEYS[3], ARGV[6])
return {n, e, 0}
"""
_POSITION = _EPOCH + """
local e = epoch()
return {offset(), e}
"""
# ARGV[3] since's epoch, ARGV[4] since's offset, ARGV[5] max_replay. Past max_replay only
# the first entry is read: it tells too_many from too_old.
_SINCE = _EPOCH + """
local e, n = epoch(), offset()
local since = tonumber(ARGV[4])
local want = n - since
if want > tonumber(ARGV[5]) then want = 1 end
if e ~= ARGV[3] or want <= 0 then return {n, e, {}} end
return {n, e, redis.call('XRANGE', KEYS[2], since + 1, '+', 'COUNT', want)}
"""


class RedisHistoryStore:
    """Room streams in Redis (see the module docstring for the keys)."""

    def __init__(self, redis: RedisConnection, limits: HistoryLimits = HistoryLimits()) -> None:
        self._r = redis
        self.limits = limits
        self._append = redis.client.register_script(_APPEND)
        self._position = redis.client.register_script(_POSITION)
        self._since = redis.client.register_script(_SINCE)

    def _keys(self, room: str) -> list[str]:
        r = self._r
        return [r.key("history-meta", room), r.key("history", room), r.key("history-keys", room)]

    async def append(self, room: str, message: dict[str, Any], *, key: str | None = None
                     ) -> tuple[StreamPosition, bool]:
        with self._r.guard("history.append"):
            offset, epoch, duplicate = await self._append(keys=self._keys(room), args=[
                new_epoch(), _POSITION_TTL_MS, orjson.dumps(message), key or "",
                self.limits.size, int(self.limits.ttl * 1000)])
        return StreamPosition(int(offset), str(epoch)), bool(duplicate)

    async def position(self, room: str) -> StreamPosition:
        with self._r.guard("history.position"):
            offset, epoch = await self._position(keys=self._keys(room),
                                                 args=[new_epoch(), _POSITION_TTL_MS])
        return StreamPosition(int(offset), str(epoch))

    async def since(self, room: str, since: StreamPosition) -> Replay | Unrecoverable:
        with self._r.guard("history.since"):
            offset, epoch, raw = await self._since(keys=self._keys(room), args=[
                new_epoch(), _POSITION_TTL_MS, since.epoch, since.offset,
                self.limits.max_replay])
        kept = [HistoryEntry(int(entry_id.partition("-")[0]), orjson.loads(fields[1]))
                for entry_id, fields in cast(list[tuple[str, list[str]]], raw)]
        return replay_after(since, StreamPosition(int(offset), str(epoch)), kept, self.limits)


class RedisReplyCache:
    """``reply:KEY`` strings that expire on their own (``SET PX``)."""

    def __init__(self, redis: RedisConnection) -> None:
        self._r = redis

    async def recall(self, key: str) -> str | None:
        with self._r.guard("replies.recall"):
            return cast(str | None, await self._r.client.get(self._r.key("reply", key)))

    async def remember(self, key: str, reply: str, *, ttl: float) -> None:
        with self._r.guard("replies.remember"):
            await self._r.client.set(self._r.key("reply", key), reply, px=int(ttl * 1000))
