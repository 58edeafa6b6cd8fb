"""Big rooms on one node, without a gateway: what a join storm costs, the join reply's
threshold, coalesced diffs and fan-outs that give the loop back (issue 17 §1)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from rtctl.backends import Backends
from rtctl.services.room_delivery import RoomLimits
from rtctl.services.room_diff import PendingDiff
from rtctl.services.rooms import RoomService
from rtctl.services.sessions import SessionService
from tests.conftest import TIMING
from tests.services.fakes import FakeClock, FakeHost, FakePeer, ManualTimer


def rooms_on(host: FakeHost, limits: RoomLimits = RoomLimits(),
             timer: ManualTimer | None = None) -> RoomService:
    return RoomService(host, SessionService(host), limits=limits, timer=timer or ManualTimer())


async def bus_settled(backends: Backends, room: str) -> None:
    """Every room message published so far has been handled: the memory bus delivers in
    order, so a marker published now arrives after all of them."""
    seen = asyncio.Event()
    subject = f"{backends.subject_prefix}.room.{room}"
    sub = await backends.bus.subscribe(
        subject, lambda message: seen.set() if message.get("event") == "marker" else None)
    await backends.bus.publish(subject, {"event": "marker"})
    await asyncio.wait_for(seen.wait(), 5 * TIMING)
    await sub.unsubscribe()


async def storm(members: int) -> tuple[list[FakePeer], ManualTimer]:
    """``members`` users join one room, each join's news handled before the next join."""
    host, timer = FakeHost(), ManualTimer()
    rooms = rooms_on(host, timer=timer)
    peers = [FakePeer(f"c{i}", f"u{i:05d}") for i in range(members)]
    for peer in peers:
        await rooms.join(peer.context(), "big")
        await bus_settled(host.backends, "big")
    timer.fire()
    return peers, timer


async def test_a_join_storm_costs_deliveries_linear_in_its_size() -> None:
    cost = {}
    for members in (200, 400):
        peers, _ = await storm(members)
        cost[members] = sum(len(peer.received) for peer in peers)
        last = peers[0].received[-1]
        assert last["method"] == "room.diff"
        assert last["params"]["total"] == members
        assert last["params"]["truncated"] is (members > 200)  # over 100 joined since the last
        assert last["params"]["joined"] == [f"u{i:05d}" for i in range(100, 200)]
        assert peers[0].methods().count("room.joined") == 99  # the small room's joins
    # Each member past the small-room threshold adds one delivery (a place in the diff
    # everybody gets once); all-to-all would add 200 × 300 here.
    assert cost[400] - cost[200] == 200, cost


async def test_diffs_are_paced_by_the_members_they_reach() -> None:
    limits = RoomLimits(diff_interval=1.0, diff_rate=5000.0)
    assert [limits.diff_spacing(n) for n in (0, 101, 5000, 10_000)] == [1.0, 1.0, 1.0, 2.0]
    _, timer = await storm(120)
    assert timer.pending == []  # the one diff was sent


async def test_the_join_reply_lists_members_only_in_a_small_room() -> None:
    host = FakeHost()
    rooms = rooms_on(host, RoomLimits(small_room=3))
    peers = [FakePeer(f"c{i}", user) for i, user in enumerate(["dan", "bea", "cat", "al"])]
    replies = [await rooms.join(peer.context(), "r") for peer in peers]
    start = (await host.backends.history.position("r")).to_json()  # nothing published
    assert replies == [{"members": ["dan"], "total": 1, **start},
                       {"members": ["bea", "dan"], "total": 2, **start},
                       {"members": ["bea", "cat", "dan"], "total": 3, **start},
                       {"total": 4, **start}]
    await rooms.leave(peers[0].context(), "r")
    assert await rooms.join(FakePeer("c9", "bea").context(), "r") == {  # a second device
        "members": ["al", "bea", "cat"], "total": 3, **start}


@pytest.mark.parametrize(("changes", "expected"), [
    ([("a", True), ("b", True)], {"joined": ["a", "b"], "left": [], "truncated": False}),
    ([("a", True), ("a", False)], {"joined": [], "left": [], "truncated": False}),
    ([("a", False), ("a", True), ("b", False)],
     {"joined": [], "left": ["b"], "truncated": False}),
    ([("c", True), ("b", True), ("a", True), ("z", False)],
     {"joined": ["a", "b"], "left": ["z"], "truncated": True}),
], ids=["joins", "join-then-leave", "leave-then-join", "truncated"])
def test_a_pending_diff_nets_out_changes(changes: list[tuple[str, bool]],
                                         expected: dict[str, Any]) -> None:
    diff = PendingDiff()
    for total, (user, joined) in enumerate(changes, 500):
        diff.add(user, joined, total)
    assert diff.params("r", 2) == {"room": "r", "total": 499 + len(changes), **expected}


class _Ticks:
    """Counts loop iterations while a fan-out runs."""

    def __init__(self) -> None:
        self.count = 0

    async def run(self) -> None:
        while True:
            self.count += 1
            await asyncio.sleep(0)  # one loop iteration is the unit measured here


async def test_a_big_fan_out_yields_between_chunks_and_keeps_order() -> None:
    host = FakeHost()
    rooms = rooms_on(host, RoomLimits(chunk=10))
    ticks, done = _Ticks(), asyncio.Event()
    seen: dict[str, list[tuple[int, Any]]] = {}

    class Member(FakePeer):
        def push(self, data: bytes, **tags: Any) -> None:
            super().push(data, **tags)
            if self.received[-1]["method"] == "room.message":
                seen.setdefault(self.id, []).append((ticks.count, self.received[-1]["params"]))
                if len(seen) == 34 and all(len(got) == 2 for got in seen.values()):
                    done.set()

    peers = [Member(f"c{i}", f"u{i:02d}") for i in range(35)]
    for peer in peers:
        await rooms.join(peer.context(), "arena")
    await bus_settled(host.backends, "arena")
    ticker = asyncio.get_running_loop().create_task(ticks.run())
    await rooms.publish(peers[0].context(), "arena", 1)
    await rooms.publish(peers[0].context(), "arena", 2)
    await asyncio.wait_for(done.wait(), 5 * TIMING)
    ticker.cancel()
    assert "c0" not in seen  # the sender hears nothing
    assert all([params["data"] for _, params in got] == [1, 2] for got in seen.values())
    first_message_ticks = {got[0][0] for got in seen.values()}
    assert len(first_message_ticks) == 4  # 34 pushes in chunks of 10: four iterations


async def test_a_lapsed_heartbeat_on_a_memory_node_says_the_loop_was_blocked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    host = FakeHost(clock=clock)
    sessions = SessionService(host)
    for hook in host.startup:
        await hook()
    try:
        caplog.set_level(logging.WARNING, "rtctl.sessions")
        clock.now += 16.25  # the loop held for longer than the 5 s heartbeat TTL
        await sessions.housekeeping()
        clock.now += 1
        await host.backends.sessions.forget_node("n1")  # as a flushed store would
        await sessions.housekeeping()
    finally:
        for hook in host.shutdown:
            await hook()
    assert [r.getMessage() for r in caplog.records] == [
        "node n1: heartbeat renewed 16.2s after the last (TTL 5s): this node's event loop "
        "was blocked that long; resynchronising 0 sessions",
        "node n1: heartbeat renewed 1.0s after the last (TTL 5s): the store had lost it "
        "(restarted or flushed); resynchronising 0 sessions"]
