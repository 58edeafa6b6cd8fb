"""Priority lanes as pure functions: order, coalescing, shedding, drop-oldest, one FIFO, stats."""

from __future__ import annotations

import weakref

import pytest

from rtctl.protocol.lanes import (
    DEFAULT_POLICIES,
    Lane,
    LaneQueue,
    LaneStats,
    Policy,
    parse_lane,
    parse_policy,
)

CONTROL, STATE, EVENTS, CHAT, TELEMETRY = Lane
RELIABLE, COALESCIBLE, DROPPABLE = Policy


class Clock:
    """A clock the test steps by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def queue(lanes: bool = True, stats: LaneStats | None = None) -> LaneQueue[str]:
    return LaneQueue(stats or LaneStats(), Clock(), lanes=lanes)


def drain(q: LaneQueue[str]) -> list[str]:
    out = []
    while (entry := q.pop()) is not None:
        out.append(entry.value)
    return out


def test_lanes_go_highest_first_and_each_keeps_its_order() -> None:
    q = queue()
    for value, lane in [("t1", TELEMETRY), ("e1", EVENTS), ("c1", CHAT), ("e2", EVENTS),
                        ("s1", STATE), ("k1", CONTROL), ("e3", EVENTS), ("s2", STATE)]:
        q.put(value, 1, lane)
    assert drain(q) == ["k1", "s1", "s2", "e1", "e2", "e3", "c1", "t1"]


def test_a_reliable_flood_keeps_every_message_in_order() -> None:
    q = queue()
    for i in range(1000):
        q.put(f"m{i}", 10, EVENTS, RELIABLE)
    assert drain(q) == [f"m{i}" for i in range(1000)]


def test_coalescing_replaces_in_place_and_counts() -> None:
    stats = LaneStats()
    q = queue(stats=stats)
    assert q.put("alice-online", 12, CHAT, COALESCIBLE, "alice") is None
    q.put("chat-1", 6, CHAT)
    q.put("bob-online", 10, CHAT, COALESCIBLE, "bob")
    assert q.put("alice-away", 10, CHAT, COALESCIBLE, "alice") == "alice-online"
    assert (len(q), q.bytes, q.lane_bytes(CHAT)) == (3, 26, 26)  # 12 became 10
    assert drain(q) == ["alice-away", "chat-1", "bob-online"]  # alice's place kept
    counters = stats[CHAT]
    assert (counters.queued, counters.coalesced, counters.sent, counters.sent_bytes) == (
        4, 1, 3, 26)


def test_a_key_coalesces_only_within_its_lane_and_while_it_waits() -> None:
    q = queue()
    q.put("chat", 1, CHAT, COALESCIBLE, "k")
    q.put("events", 1, EVENTS, COALESCIBLE, "k")  # another lane: not the same message
    assert drain(q) == ["events", "chat"]
    q.put("again", 1, CHAT, COALESCIBLE, "k")  # the first one left: nothing to replace
    assert drain(q) == ["again"]


def test_a_coalescible_message_needs_a_key() -> None:
    with pytest.raises(ValueError, match="needs a key"):
        queue().put("x", 1, CHAT, COALESCIBLE)


def test_shedding_takes_droppable_lowest_lane_and_oldest_first() -> None:
    stats = LaneStats()
    q = queue(stats=stats)
    q.put("e-drop-1", 10, EVENTS, DROPPABLE)
    q.put("t1", 10, TELEMETRY)  # telemetry is droppable by default
    q.put("e-keep", 10, EVENTS)
    q.put("t2", 10, TELEMETRY)
    q.put("t3", 10, TELEMETRY)
    q.put("e-drop-2", 10, EVENTS, DROPPABLE)
    assert q.bytes == 60
    assert q.shed(down_to=25) == 4  # t1, t2, t3, then the oldest droppable event
    assert q.bytes == 20
    assert drain(q) == ["e-keep", "e-drop-2"]
    assert (stats[TELEMETRY].dropped, stats[EVENTS].dropped) == (3, 1)
    assert (stats[TELEMETRY].depth, stats[TELEMETRY].depth_bytes) == (0, 0)


def test_shedding_never_takes_a_reliable_or_coalescible_message() -> None:
    q = queue()
    q.put("r", 50, EVENTS)
    q.put("c", 50, CHAT, COALESCIBLE, "k")
    assert q.shed(down_to=0) == 0
    assert q.bytes == 100
    assert drain(q) == ["r", "c"]


def test_shedding_stops_at_the_mark() -> None:
    q = queue()
    for i in range(5):
        q.put(f"t{i}", 10, TELEMETRY)
    assert q.shed(down_to=30) == 2
    assert drain(q) == ["t2", "t3", "t4"]


class Payload:
    """A message whose lifetime a weak reference can watch."""


def test_shedding_behind_an_unwritten_head_holds_no_more_than_it_keeps() -> None:
    """A reliable head nobody takes (the socket is paused) and a flood of droppable
    messages shed at a mark: the lane holds what waits and at most as many gone ones, and
    what was shed is let go at once, payload and all."""
    q: LaneQueue[Payload] = LaneQueue(LaneStats(), Clock())
    q.put(Payload(), 100, EVENTS)  # reliable
    watched = []
    for _ in range(10_000):
        payload = Payload()
        watched.append(weakref.ref(payload))
        q.put(payload, 1000, EVENTS, DROPPABLE)
        q.shed(down_to=50_000)
        assert len(q._queues[EVENTS]) <= 2 * len(q) + 1  # the deque itself, not its count
        assert len(q._drops[EVENTS]) <= 2 * len(q)
    del payload
    assert len(q) == 50  # the head and 49 droppable ones
    assert sum(ref() is not None for ref in watched) == 49  # only the newest ones live


def test_a_message_removed_from_the_middle_is_skipped_and_its_place_reclaimed() -> None:
    q = queue()
    entries = []
    for i in range(6):
        q.put(f"d{i}", 1, EVENTS, DROPPABLE)
        entries.append(q.newest(EVENTS))
    for entry in entries[1:5]:
        assert entry is not None
        assert q.remove(entry)
    assert len(q._queues[EVENTS]) == 2  # compacted once gone ones outnumbered the rest
    assert q.shed(down_to=1) == 1  # the oldest droppable still there
    assert drain(q) == ["d5"]


def test_drop_oldest_takes_the_lanes_oldest_whatever_its_policy() -> None:
    stats = LaneStats()
    q = queue(stats=stats)
    q.put("e1", 5, EVENTS)
    q.put("c1", 5, CHAT)
    q.put("e2", 5, EVENTS)
    dropped = q.drop_oldest(EVENTS)
    assert dropped is not None
    assert dropped.value == "e1"
    assert q.drop_oldest(TELEMETRY) is None
    assert drain(q) == ["e2", "c1"]
    assert stats[EVENTS].dropped == 1


def test_without_lanes_it_is_one_fifo_that_neither_coalesces_nor_sheds() -> None:
    stats = LaneStats()
    q = queue(lanes=False, stats=stats)
    q.put("t1", 10, TELEMETRY)
    q.put("p1", 10, CHAT, COALESCIBLE, "alice")
    q.put("reply", 10, CONTROL)
    assert q.put("p2", 10, CHAT, COALESCIBLE, "alice") is None
    assert q.shed(down_to=0) == 0
    assert (q.lane_bytes(CHAT), q.lane_bytes(CONTROL)) == (20, 10)  # counted in its lane
    assert drain(q) == ["t1", "p1", "reply", "p2"]
    assert (stats[CHAT].sent, stats[CHAT].coalesced, stats[TELEMETRY].dropped) == (2, 0, 0)


def test_wait_is_observed_from_the_put_and_a_shared_stats_sums_queues() -> None:
    stats = LaneStats()
    clock = Clock()
    first, second = LaneQueue[str](stats, clock), LaneQueue[str](stats, clock)
    first.put("a", 3, STATE)
    second.put("b", 4, STATE)
    assert (stats[STATE].depth, stats[STATE].depth_bytes) == (2, 7)
    clock.now += 0.003  # 3 ms: the (0.0025, 0.005] bucket
    first.pop()
    second.pop()
    wait = stats[STATE].wait
    assert wait.count == 2
    assert wait.counts[wait.bounds.index(0.005)] == 2
    assert (stats[STATE].depth, stats[STATE].sent, stats[STATE].sent_bytes) == (0, 2, 7)


def test_remove_and_clear() -> None:
    q = queue()
    q.put("a", 1, EVENTS)
    q.put("b", 1, CONTROL)
    q.put("c", 1, EVENTS)
    entry = q.peek()
    assert entry is not None
    assert entry.value == "b"
    assert q.remove(entry)
    assert not q.remove(entry)  # gone already
    assert [e.value for e in q.clear()] == ["a", "c"]
    assert (len(q), q.bytes, q.pop()) == (0, 0, None)


def test_default_policies_shed_only_telemetry() -> None:
    assert [lane for lane, policy in DEFAULT_POLICIES.items() if policy is DROPPABLE] == [
        TELEMETRY]


@pytest.mark.parametrize(("text", "lane"), [(lane.label, lane) for lane in Lane])
def test_parse_lane(text: str, lane: Lane) -> None:
    assert parse_lane(text) is lane


@pytest.mark.parametrize("bad", ["EVENTS", "event", "", 3, None])
def test_parse_lane_names_the_choices(bad: object) -> None:
    with pytest.raises(ValueError, match="control, state, events, chat, telemetry"):
        parse_lane(bad)


def test_parse_policy() -> None:
    assert parse_policy("droppable") is DROPPABLE
    with pytest.raises(ValueError, match="reliable, coalescible, droppable"):
        parse_policy("lossy")


def test_shedding_after_removals_from_the_middle_counts_each_message_once() -> None:
    stats = LaneStats()
    queue: LaneQueue[str] = LaneQueue(stats, Clock())
    for i in range(4):
        queue.put(f"t{i}", 10, Lane.TELEMETRY, Policy.DROPPABLE)
    for _ in range(2):  # the newest two: the droppable index is compacted under shed's feet
        newest = queue.newest(Lane.TELEMETRY)
        assert newest is not None
        assert queue.remove(newest)
    queue.put("r", 10, Lane.CHAT)
    assert queue.shed(0) == 2
    telemetry = stats[Lane.TELEMETRY]
    assert (queue.bytes, len(queue), telemetry.depth, telemetry.dropped) == (10, 1, 0, 2)
    entry = queue.pop()
    assert entry is not None
    assert entry.value == "r"
