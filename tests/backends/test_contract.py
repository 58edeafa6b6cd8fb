"""One contract, every backend: the same assertions on memory, Redis and NATS.

Store tests run over memory and a real Redis (``stores``); bus tests over the
memory bus and a real NATS (``bus_backends``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from rtctl.backends import Backends, Presence, SessionRecord
from tests.backends.conftest import lose_keys, redis_of
from tests.conftest import TIMING


def record(sid: str, user: str = "alice", node: str = "n1", at: float = 1000.0,
           **metadata: Any) -> SessionRecord:
    return SessionRecord(id=sid, user=user, node=node, created_at=at, last_seen=at,
                         metadata=metadata)


async def eventually(condition: Any, timeout: float = 5.0) -> None:
    """Await ``condition()`` until true: only for what real time decides (TTLs)."""
    deadline = time.monotonic() + timeout * TIMING
    while not await condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


# -- sessions -------------------------------------------------------------------


async def test_sessions_are_indexed_by_user_and_node(stores: Backends) -> None:
    s = stores.sessions
    await s.put([record("a1", at=1.0, device="phone"), record("a2", node="n2", at=2.0),
                  record("b1", user="bob")], ttl=30)
    assert await s.get("a1") == record("a1", at=1.0, device="phone")
    assert [r.id for r in await s.by_user("alice")] == ["a1", "a2"]
    assert await s.by_node("n1") == {"a1": "alice", "b1": "bob"}
    refreshed = SessionRecord(id="a1", user="alice", node="n1", created_at=1.0, last_seen=5.0)
    await s.put([refreshed], ttl=30)
    assert await s.get("a1") == refreshed
    await s.remove("a1", user="alice", node="n1")
    assert await s.get("a1") is None
    assert [r.id for r in await s.by_user("alice")] == ["a2"]
    assert await s.by_node("n1") == {"b1": "bob"}
    await s.remove("a1", user="alice", node="n1")  # twice is harmless
    assert await s.get("nope") is None


async def test_a_session_expires_after_its_ttl_but_its_node_still_knows_it(
    stores: Backends,
) -> None:
    s = stores.sessions
    await s.put([record("a1")], ttl=0.2)
    await s.put([record("a2")], ttl=30)

    async def expired() -> bool:
        return await s.get("a1") is None

    await eventually(expired)
    assert [r.id for r in await s.by_user("alice")] == ["a2"]
    assert await s.by_node("n1") == {"a1": "alice", "a2": "alice"}  # for the cleanup


async def test_heartbeats_find_dead_nodes_and_one_claim_wins(stores: Backends) -> None:
    s = stores.sessions
    assert await s.beat("n1", ttl=30) is False  # a new node
    assert await s.beat("n1", ttl=30) is True
    assert await s.beat("n2", ttl=0.2) is False
    await s.put([record("x", node="n2")], ttl=30)

    async def n2_dead() -> bool:
        return await s.dead_nodes() == ["n2"]

    await eventually(n2_dead)
    assert await s.claim("n2", "n1", ttl=30) is True
    assert await s.claim("n2", "n3", ttl=30) is False
    await s.forget_node("n2")
    assert await s.dead_nodes() == []
    assert await s.by_node("n2") == {}
    assert await s.beat("n2", ttl=30) is False  # it lapsed: it must resynchronise


# -- presence -------------------------------------------------------------------


async def test_presence_counts_devices_and_stamps_last_seen(stores: Backends) -> None:
    p = stores.presence
    assert await p.connect("alice", "s1") is True
    assert await p.connect("alice", "s2") is False
    assert await p.connect("alice", "s2") is False  # the same device twice
    two = (await p.get(["alice"]))["alice"]
    assert two == Presence(devices=2, version=two.version)
    assert await p.disconnect("alice", "s1", now_ms=100.5) is False
    assert await p.disconnect("alice", "s2", now_ms=200.5) is True
    assert await p.disconnect("alice", "s2", now_ms=300.0) is False  # already gone
    alice = (await p.get(["alice"]))["alice"]
    assert alice.devices == 0
    assert alice.seen() == {"status": "offline", "last_seen": 300.0, "text": None,
                            "version": alice.version}
    assert (await p.get(["nobody"]))["nobody"] == Presence()


async def test_every_stored_presence_change_raises_the_version(stores: Backends) -> None:
    p = stores.presence

    async def version() -> int:
        return (await p.get(["carol"]))["carol"].version

    assert await version() == 0  # never seen
    changes: list[Callable[[], Awaitable[object]]] = [
        lambda: p.connect("carol", "s1"), lambda: p.connect("carol", "s2"),
        lambda: p.set_status("carol", "away", "brb", now_ms=1.0),
        lambda: p.set_status("carol", "away", "brb", now_ms=2.0),  # stored again: a change
        lambda: p.disconnect("carol", "s1", now_ms=3.0),
        lambda: p.disconnect("carol", "s2", now_ms=4.0),
        lambda: p.disconnect("carol", "s2", now_ms=5.0)]  # last_seen stamped again
    versions = []
    for change in changes:
        await change()
        versions.append(await version())
    assert versions == sorted(set(versions))  # each one above the one before
    assert versions[0] >= 1
    await p.connect("carol", "s3")
    before = await version()
    assert await p.connect("carol", "s3") is False  # already there: nothing stored
    assert await version() == before


async def test_a_user_lost_from_redis_comes_back_with_a_higher_version(
    redis_stores: Backends,
) -> None:
    p, redis = redis_stores.presence, redis_of(redis_stores)
    for index in range(5):
        await p.connect("dave", f"s{index}")
    lost = (await p.get(["dave"]))["dave"].version

    async def past() -> bool:  # a lost store takes longer than changes can run ahead
        seconds, micros = await redis.client.time()
        return seconds * 1000 + micros // 1000 > lost

    await eventually(past)
    assert await lose_keys(redis_stores, "*:dave") == 2  # its presence and devices
    assert await p.connect("dave", "s0") is True
    assert (await p.get(["dave"]))["dave"].version > lost


async def test_status_and_text_and_invisible(stores: Backends) -> None:
    p = stores.presence
    await p.connect("bob", "s1")
    await p.set_status("bob", "busy", "in a match", now_ms=1.0)
    bob = (await p.get(["bob"]))["bob"]
    assert (bob.status, bob.text, bob.last_seen) == ("busy", "in a match", None)
    await p.set_status("bob", "away", None, now_ms=2.0)
    bob = (await p.get(["bob"]))["bob"]
    assert (bob.status, bob.text, bob.last_seen) == ("away", None, None)
    await p.set_status("bob", "online", "", now_ms=2.5)  # empty text is text, not none
    assert (await p.get(["bob"]))["bob"].text == ""
    await p.set_status("bob", "invisible", "hidden", now_ms=3.0)
    bob = (await p.get(["bob"]))["bob"]
    assert (bob.status, bob.devices) == ("invisible", 1)
    assert bob.seen() == {"status": "offline", "last_seen": 3.0, "text": None,
                          "version": bob.version}


# -- rooms ----------------------------------------------------------------------


async def test_rooms_count_users_not_sessions(stores: Backends) -> None:
    r = stores.rooms
    assert await r.join("lobby", "a1", "alice") == (True, 1)
    assert await r.join("lobby", "a1", "alice") == (False, 1)  # the same session twice
    assert await r.join("lobby", "a2", "alice") == (False, 1)
    assert await r.join("lobby", "b1", "bob") == (True, 2)
    assert await r.join("arena", "a1", "alice") == (True, 1)
    assert await r.rooms_of("a1") == ["arena", "lobby"]
    assert await r.members("lobby", after=None, limit=10) == (["alice", "bob"], 2)
    assert await r.leave("lobby", "a1") == (False, 2)  # a2 is still there
    assert await r.leave("lobby", "a2") == (True, 1)
    assert await r.leave("lobby", "a2") == (False, 1)  # not a member any more
    assert await r.rooms_of("a1") == ["arena"]
    assert await r.join("lobby", "c1", "carol") == (True, 2)
    assert await r.members("lobby", after=None, limit=10) == (["bob", "carol"], 2)
    assert await r.leave("lobby", "b1") == (True, 1)
    assert await r.leave("lobby", "c1") == (True, 0)
    assert await r.members("lobby", after=None, limit=10) == ([], 0)
    assert await r.leave("gone", "c1") == (False, 0)


async def test_room_members_page_in_code_point_order(stores: Backends) -> None:
    r = stores.rooms
    users = ["bob", "Zoë", "alice", "a:b", "émile", "日本", "alice2", "b"]
    for index, user in enumerate(users):
        await r.join("big", f"s{index}", user)
    ordered = ["Zoë", "a:b", "alice", "alice2", "b", "bob", "émile", "日本"]  # by code point
    assert await r.members("big", after=None, limit=3) == (ordered[:3], len(users))
    assert await r.members("big", after=ordered[2], limit=3) == (ordered[3:6], len(users))
    assert await r.members("big", after=ordered[5], limit=3) == (ordered[6:], len(users))
    assert await r.members("big", after=ordered[-1], limit=3) == ([], len(users))
    assert await r.members("big", after="alice1", limit=1) == (["alice2"], len(users))
    await r.leave("big", "s0")  # bob goes; the walk from a cursor before him still works
    assert await r.members("big", after="b", limit=2) == (["émile", "日本"], len(users) - 1)


# -- the bus --------------------------------------------------------------------


async def test_bus_delivers_to_subscribers_until_they_unsubscribe(
    bus_backends: Backends,
) -> None:
    bus = bus_backends.bus
    first: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    second: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sub = await bus.subscribe("t.a", first.put_nowait)
    await bus.subscribe("t.b", second.put_nowait)
    await bus.publish("t.a", {"n": 1, "text": "é"})
    assert await asyncio.wait_for(first.get(), 5 * TIMING) == {"n": 1, "text": "é"}
    await sub.unsubscribe()
    await bus.publish("t.a", {"n": 2})
    await bus.publish("t.b", {"n": 3})  # sent after: once it is here, t.a would be too
    assert await asyncio.wait_for(second.get(), 5 * TIMING) == {"n": 3}
    assert first.empty()
