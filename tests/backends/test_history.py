"""Room streams and kept replies: the contract over memory and a real Redis, then what only
one of them can show (the memory store's bounds on a fake clock; keys lost under Redis).

Time passes differently for each: the memory store reads a fake clock the test moves, Redis
gets short TTLs and the test waits (bounded) for what they decide.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from rtctl.backends import Backends, BackendUnavailable, connect_backends
from rtctl.backends.base import (
    DEFAULT_POSITION_TTL,
    HistoryEntry,
    HistoryLimits,
    HistoryStore,
    Replay,
    Unrecoverable,
)
from rtctl.backends.memory import MemoryHistoryStore, MemoryReplyCache
from rtctl.backends.redis import DEFAULT_CONNECTIONS
from rtctl.backends.redis_history import RedisHistoryStore
from rtctl.exceptions import ConfigError
from rtctl.protocol.streams import StreamPosition
from tests.backends.conftest import lose_keys, redis_of, started
from tests.backends.test_contract import eventually
from tests.conftest import TIMING
from tests.services.fakes import FakeClock

Condition = Callable[[], Awaitable[bool]]
SHORT = 0.2  # s: a TTL short enough to wait for on Redis


def message(n: int) -> dict[str, Any]:
    return {"from": "alice", "data": {"n": n, "text": "é日本", "list": [1.5, None]},
            "session": "s1"}


@dataclass
class World:
    """How a test gets history stores, lets time pass and loses what is stored."""

    make: Callable[[HistoryLimits], HistoryStore]
    pass_time: Callable[[float, Condition], Awaitable[None]]
    lose: Callable[[], Awaitable[object]]


@pytest.fixture(params=["memory", "redis"])
async def world(request: pytest.FixtureRequest) -> AsyncIterator[World]:
    if request.param == "memory":
        clock = FakeClock()

        async def advance(seconds: float, condition: Condition) -> None:
            clock.now += seconds
            assert await condition()

        async def forget() -> None:  # everything is forgotten after the position TTL
            clock.now += DEFAULT_POSITION_TTL

        yield World(lambda limits: MemoryHistoryStore(limits, clock=clock), advance, forget)
        return
    async def wait(_: float, condition: Condition) -> None:
        await eventually(condition)

    async with started(redis_url=request.getfixturevalue("redis_server").url) as backends:
        yield World(lambda limits: RedisHistoryStore(redis_of(backends), limits), wait,
                    lambda: lose_keys(backends))


# -- appends and positions ---------------------------------------------------------


async def test_offsets_count_from_one_in_an_epoch_fixed_by_the_first_read(world: World) -> None:
    h = world.make(HistoryLimits())
    start = await h.position("lobby")
    assert start.offset == 0
    assert await h.position("lobby") == start
    for n in (1, 2, 3):
        assert await h.append("lobby", message(n)) == (StreamPosition(n, start.epoch), False)
    assert await h.position("lobby") == StreamPosition(3, start.epoch)
    other = await h.append("a:b", message(1))  # rooms are independent streams
    assert other[0].offset == 1
    assert other[0].epoch != start.epoch


async def test_since_replays_every_message_after_the_position_whole_and_in_order(
    world: World,
) -> None:
    h = world.make(HistoryLimits())
    epoch = (await h.position("lobby")).epoch
    for n in (1, 2, 3):
        await h.append("lobby", message(n))
    end = StreamPosition(3, epoch)
    assert await h.since("lobby", StreamPosition(1, epoch)) == Replay(
        end, (HistoryEntry(2, message(2)), HistoryEntry(3, message(3))))
    assert await h.since("lobby", StreamPosition(0, epoch)) == Replay(
        end, tuple(HistoryEntry(n, message(n)) for n in (1, 2, 3)))
    assert await h.since("lobby", end) == Replay(end, ())  # nothing missed


async def test_since_says_why_it_cannot_replay(world: World) -> None:
    h = world.make(HistoryLimits(size=5, max_replay=4))
    epoch = (await h.position("lobby")).epoch
    for n in range(1, 13):
        await h.append("lobby", message(n))
    end = StreamPosition(12, epoch)
    assert await h.since("lobby", StreamPosition(12, "other")) == Unrecoverable(
        end, "epoch_changed")
    for ahead in (13, 2**70):  # a client's offset may be any size
        assert await h.since("lobby", StreamPosition(ahead, epoch)) == Unrecoverable(
            end, "unknown_offset")
    # 5 missed: all kept (the window is exactly 5), but more than one replay may carry
    assert await h.since("lobby", StreamPosition(7, epoch)) == Unrecoverable(end, "too_many")
    assert await h.since("lobby", StreamPosition(6, epoch)) == Unrecoverable(end, "too_old")
    assert await h.since("lobby", StreamPosition(0, epoch)) == Unrecoverable(end, "too_old")
    assert await h.since("lobby", StreamPosition(8, epoch)) == Replay(
        end, tuple(HistoryEntry(n, message(n)) for n in range(9, 13)))


async def test_messages_expire_after_the_ttl_but_the_position_stays(world: World) -> None:
    h = world.make(HistoryLimits(ttl=SHORT))
    first, _ = await h.append("lobby", message(1))
    await h.append("lobby", message(2), key="alice:k")
    epoch = first.epoch

    async def expired() -> bool:
        return await h.since("lobby", StreamPosition(1, epoch)) == Unrecoverable(
            StreamPosition(2, epoch), "too_old")

    await world.pass_time(SHORT, expired)
    end = StreamPosition(2, epoch)
    assert await h.position("lobby") == end
    assert await h.since("lobby", end) == Replay(end, ())  # missed nothing: still recovered
    assert await h.append("lobby", message(3), key="alice:k") == (  # its key went with it
        StreamPosition(3, epoch), False)
    assert await h.since("lobby", end) == Replay(StreamPosition(3, epoch),
                                                 (HistoryEntry(3, message(3)),))


async def test_a_lost_stream_starts_again_in_a_new_epoch(world: World) -> None:
    h = world.make(HistoryLimits())
    before, _ = await h.append("lobby", message(1), key="alice:k")
    await h.append("lobby", message(2))
    await world.lose()
    now = await h.position("lobby")
    assert now.offset == 0
    assert now.epoch != before.epoch
    assert await h.since("lobby", StreamPosition(2, before.epoch)) == Unrecoverable(
        now, "epoch_changed")
    assert await h.append("lobby", message(3), key="alice:k") == (
        StreamPosition(1, now.epoch), False)


# -- idempotency keys ----------------------------------------------------------------


async def test_a_key_appends_once_per_room_while_its_message_is_kept(world: World) -> None:
    h = world.make(HistoryLimits(size=3))
    first, duplicate = await h.append("lobby", message(1), key="alice:k1")
    assert duplicate is False
    assert await h.append("lobby", message(99), key="alice:k1") == (first, True)
    assert (await h.append("lobby", message(2), key="alice:k2"))[0].offset == 2
    assert (await h.append("arena", message(1), key="alice:k1"))[1] is False  # other room
    assert await h.position("lobby") == StreamPosition(2, first.epoch)
    await h.append("lobby", message(3))
    assert await h.append("lobby", message(99), key="alice:k1") == (first, True)
    await h.append("lobby", message(4))  # k1's message leaves the window of 3
    assert await h.append("lobby", message(5), key="alice:k1") == (
        StreamPosition(5, first.epoch), False)


async def test_the_same_key_sent_at_once_appends_once(world: World) -> None:
    h = world.make(HistoryLimits())
    await h.append("lobby", message(0))
    results = await asyncio.gather(*(h.append("lobby", message(1), key="alice:k")
                                     for _ in range(20)))
    assert sorted(duplicate for _, duplicate in results) == [False] + [True] * 19
    assert {position.offset for position, _ in results} == {2}
    assert (await h.position("lobby")).offset == 2


# -- limits ------------------------------------------------------------------------------


@pytest.mark.parametrize(("limits", "words"), [
    ({"size": 0}, "history size must be 1 or more messages, got 0"),
    ({"max_replay": -1}, "history max_replay must be 1 or more messages, got -1"),
    ({"ttl": 0}, "history ttl must be above 0 and at most 86400s, got 0s"),
    ({"ttl": DEFAULT_POSITION_TTL + 1}, "at most 86400s, got 86401s"),
])
def test_limits_that_cannot_work_are_refused(limits: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        HistoryLimits(**limits)


def test_nats_without_redis_is_refused_saying_why() -> None:
    with pytest.raises(ConfigError, match="--nats needs --redis: NATS shares only traffic"):
        connect_backends(nats_url="nats://127.0.0.1:4222")


# -- replies of keyed requests -------------------------------------------------------------


async def test_a_reply_is_recalled_until_its_ttl(stores: Backends) -> None:
    r = stores.replies
    assert await r.recall("alice:k1") is None
    await r.remember("alice:k1", '{"result": 1}', ttl=30)
    await r.remember("alice:k2", '{"result": "é"}', ttl=SHORT)
    assert await r.recall("alice:k1") == '{"result": 1}'
    assert await r.recall("alice:k2") == '{"result": "é"}'

    async def forgotten() -> bool:
        return await r.recall("alice:k2") is None

    await eventually(forgotten)
    assert await r.recall("alice:k1") == '{"result": 1}'


# -- memory: nothing piles up --------------------------------------------------------------


async def test_memory_keeps_a_window_of_size_per_room() -> None:
    h = MemoryHistoryStore(HistoryLimits(size=10), clock=FakeClock())
    held = []
    for n in range(1, 501):
        await h.append("lobby", message(n), key=f"alice:{n}")
        held.append(len(h))
    assert max(held) == 1 + 10 + 10  # the end, then each kept message and its key


async def test_memory_forgets_idle_rooms_and_replies() -> None:
    clock = FakeClock()
    step = DEFAULT_POSITION_TTL / 50  # a room's end lives 50 steps, its messages one
    h = MemoryHistoryStore(HistoryLimits(size=5, ttl=step / 2), clock=clock)
    replies = MemoryReplyCache(clock=clock)
    held = []
    for index in range(2000):  # each room is published to once and never read again
        await h.append(f"room:{index}", message(index), key="alice:k")
        await replies.remember(f"alice:{index}", "{}", ttl=50 * step)
        held.append((len(h), len(replies)))
        clock.now += step
    # A table is swept when it reaches twice its live entries (or 64): at most 51 ends
    # live, and at most one window (a message and its key), so 64 windows held at most.
    assert max(stored for stored, _ in held) <= 2 * 51 + 2 * 64
    assert max(kept for _, kept in held) <= 2 * 51
    assert (await h.position("room:0")).offset == 0  # forgotten: a new stream
    assert (await h.position("room:1999")).offset == 1


# -- Redis: keys lost, a server gone ---------------------------------------------------------


async def test_redis_stream_left_without_its_position_is_dropped(redis_stores: Backends) -> None:
    h = redis_stores.history
    old, _ = await h.append("lobby", message(1), key="alice:k")
    await h.append("lobby", message(2))
    assert await lose_keys(redis_stores, "history-meta:*") == 1  # e.g. evicted under pressure
    new, duplicate = await h.append("lobby", message(3), key="alice:k")
    assert (new.offset, duplicate) == (1, False)
    assert new.epoch != old.epoch
    assert await h.since("lobby", StreamPosition(0, new.epoch)) == Replay(
        new, (HistoryEntry(1, message(3)),))


async def test_a_burst_larger_than_the_redis_pool_waits_for_sockets(
    redis_stores: Backends,
) -> None:
    redis = redis_of(redis_stores)
    burst = 3 * DEFAULT_CONNECTIONS
    results = await asyncio.gather(*(redis_stores.history.append("lobby", message(n))
                                     for n in range(burst)))
    assert sorted(position.offset for position, _ in results) == list(range(1, burst + 1))
    assert redis.failure() is None


async def test_history_and_replies_fail_fast_when_redis_is_gone(lost_redis: Backends) -> None:
    h, r = lost_redis.history, lost_redis.replies
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: h.append("lobby", message(1)), lambda: h.position("lobby"),
        lambda: h.since("lobby", StreamPosition(0, "e")), lambda: r.recall("k"),
        lambda: r.remember("k", "{}", ttl=30)]
    for call in calls:
        started = time.monotonic()
        with pytest.raises(BackendUnavailable):
            await call()
        assert time.monotonic() - started < 3 * TIMING  # bounded, never hangs
