"""Stateful rooms' owners and snapshots: the contract over memory and a real Redis, then the
memory store's exact expiry on a fake clock, then a Redis that went away."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import pytest

from rtctl.backends import Backends, BackendUnavailable
from rtctl.backends.memory import MemorySnapshotStore
from tests.backends.test_contract import eventually
from tests.conftest import TIMING
from tests.services.fakes import FakeClock

EVERY_BYTE = bytes(range(256))

# -- ownership ------------------------------------------------------------------


async def test_the_first_node_owns_a_room_until_it_releases_it(stores: Backends) -> None:
    s = stores.snapshots
    assert await s.own("arena:1", "n1", ttl=30) == "n1"
    assert await s.own("arena:1", "n2", ttl=30) == "n1"  # live: the second learns who owns it
    assert await s.own("arena:1", "n1", ttl=30) == "n1"  # the owner renews
    assert await s.own("arena:2", "n2", ttl=30) == "n2"  # rooms are independent
    await s.release("arena:1", "n2")  # not the owner: no effect
    assert await s.own("arena:1", "n2", ttl=30) == "n1"
    await s.release("arena:1", "n1")
    assert await s.own("arena:1", "n2", ttl=30) == "n2"
    assert await s.own("arena:1", "n1", ttl=30) == "n2"
    await s.release("nowhere", "n1")  # never claimed: harmless


async def test_a_claim_lapses_after_its_ttl_unless_the_owner_renews_it(stores: Backends) -> None:
    s = stores.snapshots
    assert await s.own("renewed", "n1", ttl=0.3) == "n1"
    assert await s.own("lapsing", "n1", ttl=0.3) == "n1"  # claimed after "renewed" was
    assert await s.own("renewed", "n1", ttl=30) == "n1"

    async def taken_over() -> bool:
        return await s.own("lapsing", "n2", ttl=30) == "n2"

    await eventually(taken_over)
    assert await s.own("renewed", "n2", ttl=30) == "n1"  # its first lease has lapsed too


# -- snapshots ------------------------------------------------------------------


async def test_a_snapshot_keeps_any_bytes_exactly_and_the_newest_wins(stores: Backends) -> None:
    s = stores.snapshots
    assert await s.get("arena:1") is None
    await s.put("arena:1", 40, EVERY_BYTE, ttl=30)
    assert await s.get("arena:1") == (40, EVERY_BYTE)
    await s.put("arena:1", 60, b"", ttl=30)
    assert await s.get("arena:1") == (60, b"")
    await s.put("arena:é", 2**63 - 1, EVERY_BYTE[::-1] * 3, ttl=30)
    assert await s.get("arena:é") == (2**63 - 1, EVERY_BYTE[::-1] * 3)
    assert await s.get("arena:1") == (60, b"")
    await s.forget("arena:1")  # the room ended: its next life starts afresh
    assert await s.get("arena:1") is None
    assert await s.get("arena:é") is not None
    await s.forget("arena:1")  # twice is harmless


async def test_a_snapshot_expires_after_its_ttl_and_outlives_its_owner(stores: Backends) -> None:
    s = stores.snapshots
    await s.own("kept", "n1", ttl=30)
    await s.put("kept", 5, b"\x01\x05", ttl=30)
    await s.release("kept", "n1")  # the next owner resumes from it
    await s.put("brief", 1, b"\x00", ttl=0.2)

    async def expired() -> bool:
        return await s.get("brief") is None

    await eventually(expired)
    assert await s.get("kept") == (5, b"\x01\x05")


# -- memory: exact expiry, nothing piles up ---------------------------------------


async def test_memory_leases_and_snapshots_end_exactly_at_their_ttl() -> None:
    clock = FakeClock()
    start, s = clock.now, MemorySnapshotStore(clock=clock)
    await s.own("arena", "n1", ttl=10)
    await s.put("arena", 3, b"x", ttl=20)
    clock.now = start + 9.5
    assert await s.own("arena", "n2", ttl=10) == "n1"
    clock.now = start + 10
    assert await s.own("arena", "n2", ttl=10) == "n2"  # a lease is over at its expiry
    assert await s.get("arena") == (3, b"x")
    clock.now = start + 20
    assert await s.get("arena") is None


async def test_memory_expired_entries_are_swept_as_rooms_come_and_go() -> None:
    clock = FakeClock()
    s = MemorySnapshotStore(clock=clock)
    step, ttl = 0.01, 1.0
    live = round(ttl / step)  # rooms whose lease and snapshot are still running at any time
    held = []
    for index in range(20 * live):  # each room is written once and never read again
        await s.own(f"room:{index}", "n1", ttl=ttl)
        await s.put(f"room:{index}", index, b"state", ttl=ttl)
        held.append(len(s))
        clock.now += step
    # a sweep runs when a table has doubled since the last one, so each of the two tables
    # stays under twice its live entries (live + 1 as the clock's float steps fall)
    assert max(held) < 2 * 2 * (live + 1)
    for index in range(20 * live - live // 2, 20 * live):  # still live: no sweep dropped them
        assert await s.own(f"room:{index}", "n2", ttl=ttl) == "n1"
        assert await s.get(f"room:{index}") == (index, b"state")


# -- a Redis that went away -----------------------------------------------------


async def test_every_call_fails_fast_when_redis_is_gone(lost_redis: Backends) -> None:
    s = lost_redis.snapshots
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: s.own("arena", "n1", ttl=30), lambda: s.release("arena", "n1"),
        lambda: s.put("arena", 1, EVERY_BYTE, ttl=30), lambda: s.get("arena"),
        lambda: s.forget("arena")]
    for call in calls:
        started = time.monotonic()
        with pytest.raises(BackendUnavailable) as info:
            await call()
        assert info.value.backend == "redis"
        assert time.monotonic() - started < 3 * TIMING  # bounded, never hangs
