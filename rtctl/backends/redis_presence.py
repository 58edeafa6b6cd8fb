"""Presence in Redis: each user's status, devices and version, changed in one script each.

``presence:USER`` hash (``status``, ``text``, ``last_seen`` in ms, ``version``) and
``devices:USER`` set (the sessions keeping the user online); ``docs/integration.md``
lists them. A change and its version are written in one Lua script, so no reader
sees one without the other, and no two changes get the same version.
"""

from __future__ import annotations

from collections.abc import Sequence

from rtctl.backends.base import Presence, Status
from rtctl.backends.redis import RedisConnection

__all__ = ["PRESENCE_RETENTION_MS", "RedisPresenceStore"]

PRESENCE_RETENTION_MS = 30 * 24 * 3600 * 1000  # last_seen outlives a month offline

# A presence change and its version are written in one step; the version is Redis' clock
# in ms when that is ahead (see PresenceStore), so it stays ahead of any lost version.
_BUMP = """
local function bump()
  local now = redis.call('TIME')
  local version = tonumber(redis.call('HGET', KEYS[1], 'version') or '0') + 1
  version = math.max(version, tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
  redis.call('HSET', KEYS[1], 'version', string.format('%d', version))
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
"""
# KEYS presence, devices; ARGV retention, 'add' or 'remove', session, last_seen ('' for none).
_DEVICES = _BUMP + """
local changed = redis.call(ARGV[2] == 'add' and 'SADD' or 'SREM', KEYS[2], ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'last_seen', ARGV[4]) end
if changed == 1 or ARGV[4] ~= '' then bump() end
return {changed, redis.call('SCARD', KEYS[2])}
"""
# KEYS presence; ARGV retention, status, '1' if there is text, text, last_seen ('' for none).
_STATUS = _BUMP + """
redis.call('HSET', KEYS[1], 'status', ARGV[2])
if ARGV[3] == '1' then redis.call('HSET', KEYS[1], 'text', ARGV[4])
else redis.call('HDEL', KEYS[1], 'text') end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'last_seen', ARGV[5]) end
bump()
"""


class RedisPresenceStore:
    """``presence:USER`` hash (status, text, last_seen, version) and ``devices:USER`` set."""

    def __init__(self, redis: RedisConnection) -> None:
        self._r = redis
        self._devices_script = redis.client.register_script(_DEVICES)
        self._status = redis.client.register_script(_STATUS)

    async def _devices(self, user: str, session_id: str, *, add: bool,
                       last_seen: str) -> tuple[int, int]:
        r = self._r
        with r.guard("presence.connect" if add else "presence.disconnect"):
            changed, count = await self._devices_script(
                keys=[r.key("presence", user), r.key("devices", user)],
                args=[PRESENCE_RETENTION_MS, "add" if add else "remove", session_id, last_seen])
        return int(changed), int(count)

    async def connect(self, user: str, session_id: str) -> bool:
        added, count = await self._devices(user, session_id, add=True, last_seen="")
        return bool(added) and count == 1

    async def disconnect(self, user: str, session_id: str, *, now_ms: float) -> bool:
        removed, count = await self._devices(user, session_id, add=False,
                                             last_seen=repr(now_ms))
        return bool(removed) and count == 0

    async def set_status(self, user: str, status: Status, text: str | None, *,
                         now_ms: float) -> None:
        last_seen = repr(now_ms) if status == "invisible" else ""
        with self._r.guard("presence.set_status"):
            await self._status(keys=[self._r.key("presence", user)], args=[
                PRESENCE_RETENTION_MS, status, "" if text is None else "1", text or "",
                last_seen])

    async def get(self, users: Sequence[str]) -> dict[str, Presence]:
        r = self._r
        pipe = r.client.pipeline(transaction=False)
        for user in users:
            pipe.hgetall(r.key("presence", user))
            pipe.scard(r.key("devices", user))
        with r.guard("presence.get"):
            raw = await pipe.execute()
        result: dict[str, Presence] = {}
        for index, user in enumerate(users):
            stored, devices = raw[2 * index], raw[2 * index + 1]
            last_seen = stored.get("last_seen")
            result[user] = Presence(status=stored.get("status", "online"),
                                    text=stored.get("text"), devices=int(devices),
                                    last_seen=None if last_seen is None else float(last_seen),
                                    version=int(stored.get("version", 0)))
        return result
