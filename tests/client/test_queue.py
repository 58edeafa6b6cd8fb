"""The send queue as pure functions: bounds, lane order, each lane's overflow policy,
batch frames, put-back, counters and lane stats (no sockets)."""

from __future__ import annotations

import json
from collections.abc import Hashable

import pytest

from rtctl.client.errors import QueueFull
from rtctl.client.queue import (
    BATCH_MAX_MESSAGES,
    GATEWAY_MAX_MESSAGE,
    Overflow,
    QueueCounters,
    Queued,
    QueueLimits,
    SendQueue,
    frame,
)
from rtctl.exceptions import ConfigError
from rtctl.protocol.lanes import Entry, Lane


def q(max_messages: int = 3, max_bytes: int = 1000, overflow: Overflow = Overflow.REJECT,
      **lanes: Overflow) -> SendQueue:
    limits = QueueLimits(max_messages=max_messages, max_bytes=max_bytes, overflow=overflow,
                         **({"lanes": {Lane[name.upper()]: o for name, o in lanes.items()}}
                            if lanes else {}))
    return SendQueue(limits)


def item(text: str, *ids: int) -> Queued:
    """A call (lane control) carrying ``ids``."""
    return Queued(text.encode(), ids)


def note(text: str, lane: Lane = Lane.EVENTS, key: Hashable | None = None) -> Queued:
    """A notification, as ``Client.notify`` queues it."""
    data = json.dumps({"jsonrpc": "2.0", "method": "m", "params": [text]}).encode()
    return Queued(data, lane=lane, key=key, notification=True)


def frames(queue: SendQueue, *, batch: bool) -> list[list[Entry[Queued]]]:
    taken = []
    while entries := queue.take(batch=batch):
        taken.append(entries)
    return taken


def drain(queue: SendQueue, *, batch: bool = False) -> list[list[Queued]]:
    return [[entry.value for entry in entries] for entries in frames(queue, batch=batch)]


def test_fifo_and_counters() -> None:
    queue = q()
    a, b = item("a", 1), item("bb")
    assert queue.put(a) == []
    assert queue.put(b) == []
    assert (len(queue), queue.queued_bytes) == (2, 3)
    assert drain(queue) == [[a], [b]]
    assert queue.counters == QueueCounters(accepted=2, sent=2, high_water=2)
    assert (queue.lanes[Lane.CONTROL].sent, queue.lanes[Lane.CONTROL].depth) == (2, 0)


def test_lanes_go_highest_first_each_in_order() -> None:
    queue = SendQueue()
    t1, e1, s1, c1, e2, s2 = (note("t1", Lane.TELEMETRY), note("e1"), note("s1", Lane.STATE),
                              item("c1", 1), note("e2"), note("s2", Lane.STATE))
    for message in (t1, e1, s1, c1, e2, s2):
        queue.put(message)
    assert queue.blocks(Lane.TELEMETRY)
    assert queue.blocks(Lane.CONTROL)
    assert drain(queue) == [[c1], [s1], [s2], [e1], [e2], [t1]]
    assert not queue.blocks(Lane.TELEMETRY)


def test_blocks_only_at_or_above_the_lane() -> None:
    queue = SendQueue()
    queue.put(note("e"))
    assert (queue.blocks(Lane.CONTROL), queue.blocks(Lane.STATE)) == (False, False)
    assert (queue.blocks(Lane.EVENTS), queue.blocks(Lane.CHAT)) == (True, True)


@pytest.mark.parametrize(("max_messages", "max_bytes", "sizes"), [
    (2, 100, [1, 1]),      # bound in messages
    (10, 10, [5, 5]),      # bound in bytes
])
def test_reject_refuses_the_new_message_and_keeps_the_old(
    max_messages: int, max_bytes: int, sizes: list[int]
) -> None:
    queue = q(max_messages, max_bytes)
    kept = [item("x" * n) for n in sizes]
    for message in kept:
        queue.put(message)
    with pytest.raises(QueueFull, match="full"):
        queue.put(item("y"))
    assert drain(queue) == [[message] for message in kept]
    assert (queue.counters.rejected, queue.counters.dropped) == (1, 0)


def test_drop_oldest_pushes_out_as_many_as_needed() -> None:
    queue = q(max_messages=3, max_bytes=10, overflow=Overflow.DROP_OLDEST)
    first, second, third = item("aaa", 1), item("bbb", 2), item("cc", 3)
    for message in (first, second, third):
        queue.put(message)
    big = item("dddddd", 4)  # 6 bytes: 8 queued + 6 > 10, so two must go
    assert queue.put(big) == [first, second]
    assert (len(queue), queue.queued_bytes) == (2, 8)
    assert queue.counters == QueueCounters(accepted=4, dropped=2, high_water=3)
    assert queue.lanes[Lane.CONTROL].dropped == 2


def test_drop_oldest_takes_the_lowest_lane_first() -> None:
    queue = q(max_messages=3, overflow=Overflow.DROP_OLDEST)
    call, event, chat = item("c", 1), note("e"), note("h", Lane.CHAT)
    for message in (call, event, chat):
        queue.put(message)
    assert queue.put(item("d", 2)) == [chat]
    assert queue.put(item("f", 3)) == [event]
    assert queue.put(item("g", 4)) == [call]


def test_by_default_telemetry_makes_room_and_calls_are_never_pushed_out() -> None:
    queue = q(max_messages=2)
    t1, t2 = note("t1", Lane.TELEMETRY), note("t2", Lane.TELEMETRY)
    queue.put(t1)
    queue.put(t2)
    call = item("c", 1)
    assert queue.put(call) == [t1]
    assert queue.put(item("d", 2)) == [t2]
    with pytest.raises(QueueFull, match="full"):  # nothing droppable is left
        queue.put(note("t3", Lane.TELEMETRY))
    with pytest.raises(QueueFull, match="full"):
        queue.put(note("e"))
    assert queue.counters == QueueCounters(accepted=4, rejected=2, dropped=2, high_water=2)
    assert queue.lanes[Lane.TELEMETRY].dropped == 2


def test_a_refused_message_pushes_nothing_out() -> None:
    queue = q(max_messages=3, events=Overflow.REJECT, telemetry=Overflow.DROP_OLDEST)
    telemetry = note("t", Lane.TELEMETRY)
    for message in (item("a", 1), item("b", 2), telemetry):
        queue.put(message)
    queue.put(item("c", 3))  # takes the telemetry's place
    with pytest.raises(QueueFull):
        queue.put(item("d", 4))
    assert (len(queue), queue.counters.dropped) == (3, 1)


def test_coalesce_replaces_in_place_and_counts() -> None:
    queue = q(max_messages=2, state=Overflow.COALESCE)
    p1, p2, p1_new = (note("p1", Lane.STATE, "p1"), note("p2", Lane.STATE, "p2"),
                      note("p1 new", Lane.STATE, "p1"))
    queue.put(p1)
    queue.put(p2)
    assert queue.put(p1_new) == []  # the queue is full, but this one takes p1's place
    assert len(queue) == 2
    assert drain(queue) == [[p1_new], [p2]]
    assert (queue.counters.coalesced, queue.lanes[Lane.STATE].coalesced) == (1, 1)
    assert queue.counters.accepted == 3


def test_a_key_goes_with_coalesce_and_only_with_it() -> None:
    queue = q(state=Overflow.COALESCE)
    with pytest.raises(ValueError, match="needs a key"):
        queue.policy(Lane.STATE, None)
    with pytest.raises(ValueError, match="only for a COALESCE lane"):
        queue.policy(Lane.EVENTS, "k")
    with pytest.raises(ValueError, match=r"lane must be one of Lane\.CONTROL"):
        queue.policy("state", None)  # type: ignore[arg-type]


def test_limits_refuse_what_cannot_work() -> None:
    with pytest.raises(ConfigError, match="at least one"):
        QueueLimits(max_messages=0)
    with pytest.raises(ConfigError, match="name its lanes"):
        QueueLimits(overflow=Overflow.COALESCE)
    with pytest.raises(ConfigError, match="calls cannot be coalesced"):
        QueueLimits(lanes={Lane.CONTROL: Overflow.COALESCE})


def test_old_style_limits_apply_to_every_lane_not_named() -> None:
    limits = QueueLimits(max_messages=8, overflow=Overflow.DROP_OLDEST)
    assert [limits.overflow_of(lane) for lane in Lane] == [Overflow.DROP_OLDEST] * 5
    default = QueueLimits()
    assert [default.overflow_of(lane) for lane in Lane] == [Overflow.REJECT] * 4 + [
        Overflow.DROP_OLDEST]


def test_a_message_bigger_than_the_bound_is_refused_under_every_policy() -> None:
    for policy in (Overflow.REJECT, Overflow.DROP_OLDEST):
        queue = q(max_bytes=4, overflow=policy)
        queue.put(item("ab"))
        with pytest.raises(QueueFull, match="exceeds"):
            queue.put(item("abcde"))
        assert len(queue) == 1
        assert queue.counters.rejected == 1


def test_batch_frames_join_runs_of_notifications_in_lane_order() -> None:
    queue = SendQueue()
    s1, e1, call, e2, t1 = (note("s1", Lane.STATE), note("e1"), item("c", 1), note("e2"),
                            note("t1", Lane.TELEMETRY))
    for message in (s1, e1, call, e2, t1):
        queue.put(message)
    alone, batch = frames(queue, batch=True)
    assert [entry.value for entry in alone] == [call]
    assert frame(alone) is call  # one message goes as itself, not as [x]
    assert [n["params"] for n in json.loads(frame(batch).data)] == [["s1"], ["e1"], ["e2"],
                                                                    ["t1"]]


def test_batch_frames_stay_within_the_gateways_limits() -> None:
    queue = SendQueue(QueueLimits(max_messages=1000, max_bytes=10 * GATEWAY_MAX_MESSAGE))
    for n in range(BATCH_MAX_MESSAGES + 5):
        queue.put(note(str(n)))
    assert [len(f) for f in drain(queue, batch=True)] == [BATCH_MAX_MESSAGES, 5]
    big = "x" * (GATEWAY_MAX_MESSAGE // 3)
    for _ in range(4):
        queue.put(note(big))
    taken = frames(queue, batch=True)
    assert [len(entries) for entries in taken] == [2, 2]
    assert all(len(frame(entries).data) <= GATEWAY_MAX_MESSAGE for entries in taken)


def test_a_notification_fits_while_the_frame_held_and_the_queue_have_room() -> None:
    queue = SendQueue()
    for n in range(BATCH_MAX_MESSAGES - 1):
        queue.put(note(str(n)))
    one = len(note("x").data)
    assert queue.fits(one)
    queue.put(note("x"))
    assert not queue.fits(one)  # a full frame by count
    queue = SendQueue()
    big = note("x" * (GATEWAY_MAX_MESSAGE // 2))
    queue.put(big)
    room = GATEWAY_MAX_MESSAGE - len(big.data) - 3  # the frame's brackets and a comma
    assert queue.fits(room)
    assert not queue.fits(room + 1)
    small = q(max_messages=3, max_bytes=200)  # the queue's own bound comes first
    small.put(note("a"))
    small.put(note("b"))
    assert small.fits(200 - small.queued_bytes)
    assert not small.fits(200 - small.queued_bytes + 1)
    small.put(note("c"))
    assert not small.fits(1)


def test_putback_returns_to_the_front_even_over_the_bound() -> None:
    queue = q(max_messages=1)
    a, b = note("a"), note("b")
    queue.put(a)
    taken = queue.take(batch=False)
    queue.put(b)
    queue.putback(taken)
    assert len(queue) == 2
    assert drain(queue) == [[a], [b]]
    assert queue.counters.sent == 2
    assert queue.lanes[Lane.EVENTS].sent == 2


def test_putback_of_a_batch_keeps_each_lane_in_order() -> None:
    queue = SendQueue()
    s1, e1, e2 = note("s1", Lane.STATE), note("e1"), note("e2")
    for message in (s1, e1, e2):
        queue.put(message)
    taken = queue.take(batch=True)
    e3 = note("e3")
    queue.put(e3)
    queue.putback(taken)
    assert drain(queue) == [[s1], [e1], [e2], [e3]]


def test_putback_yields_to_a_newer_message_with_the_same_key() -> None:
    queue = q(state=Overflow.COALESCE)
    old, new = note("old", Lane.STATE, "p"), note("new", Lane.STATE, "p")
    queue.put(old)
    taken = queue.take(batch=False)
    queue.put(new)
    queue.putback(taken)
    assert drain(queue) == [[new]]
    assert queue.counters.coalesced == 1


def test_discard_and_clear() -> None:
    queue = q()
    a, b = item("a"), item("bb")
    queue.put(a)
    queue.put(b)
    assert queue.discard(a) is True
    assert queue.discard(a) is False
    assert queue.queued_bytes == 2
    assert queue.clear() == [b]
    assert (len(queue), queue.queued_bytes) == (0, 0)


def test_discard_finds_a_coalesced_message() -> None:
    queue = q(state=Overflow.COALESCE)
    queue.put(note("old", Lane.STATE, "p"))
    new = note("new", Lane.STATE, "p")
    queue.put(new)
    assert queue.discard(new) is True
    assert len(queue) == 0


def test_lane_stats_measure_the_wait() -> None:
    now = [0.0]
    queue = SendQueue(clock=lambda: now[0])
    queue.put(note("e"))
    queue.put(note("t", Lane.TELEMETRY))
    now[0] = 0.2
    drain(queue)
    assert queue.lanes[Lane.EVENTS].wait.quantile(0.99) == 0.25  # the bucket holding 0.2 s
    assert queue.lanes[Lane.TELEMETRY].wait.count == 1
    assert queue.lanes[Lane.STATE].wait.quantile(0.5) is None  # nothing waited there
