"""The send queue: bounds, both overflow policies, counters."""

from __future__ import annotations

import pytest

from rtctl.client.errors import QueueFull
from rtctl.client.queue import Overflow, QueueCounters, Queued, QueueLimits, SendQueue
from rtctl.exceptions import ConfigError


def q(max_messages: int = 3, max_bytes: int = 100,
      overflow: Overflow = Overflow.REJECT) -> SendQueue:
    return SendQueue(QueueLimits(max_messages=max_messages, max_bytes=max_bytes,
                                 overflow=overflow))


def item(text: str, *ids: int) -> Queued:
    return Queued(text.encode(), ids)


def test_fifo_and_counters() -> None:
    queue = q()
    a, b = item("a", 1), item("bb")
    assert queue.put(a) == []
    assert queue.put(b) == []
    assert (len(queue), queue.queued_bytes) == (2, 3)
    assert queue.popleft() is a
    assert queue.popleft() is b
    assert queue.counters == QueueCounters(accepted=2, sent=2, high_water=2)


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
    assert [queue.popleft() for _ in kept] == kept
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


def test_a_message_bigger_than_the_bound_is_refused_under_either_policy() -> None:
    for policy in Overflow:
        queue = q(max_bytes=4, overflow=policy)
        queue.put(item("ab"))
        with pytest.raises(QueueFull, match="exceeds"):
            queue.put(item("abcde"))
        assert len(queue) == 1
        assert queue.counters.rejected == 1


def test_putback_returns_to_the_front_even_over_the_bound() -> None:
    queue = q(max_messages=1)
    a, b = item("a"), item("b")
    queue.put(a)
    taken = queue.popleft()
    queue.put(b)
    queue.putback(taken)
    assert [queue.popleft(), queue.popleft()] == [a, b]
    assert queue.counters.sent == 2


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


def test_limits_need_room_for_one_message() -> None:
    with pytest.raises(ConfigError):
        QueueLimits(max_messages=0)
