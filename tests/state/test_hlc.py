"""Hybrid logical clock stamps (Kulkarni et al. 2014): last-writer-wins that keeps causality."""

from __future__ import annotations

import pytest

from rtctl.state.hlc import HybridClock, Stamp


class Wall:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def test_stamps_follow_the_wall_clock_and_count_within_a_millisecond() -> None:
    wall = Wall(1000)
    clock = HybridClock("a", wall)
    assert [clock.now(), clock.now()] == [Stamp(1000, 0, "a"), Stamp(1000, 1, "a")]
    wall.ms = 1005
    assert clock.now() == Stamp(1005, 0, "a")
    wall.ms = 900  # the wall clock stepped back: stamps still go forward
    assert clock.now() == Stamp(1005, 1, "a")


def test_a_write_after_seeing_another_orders_after_it_whatever_the_wall_clocks() -> None:
    fast, slow = HybridClock("fast", Wall(5000)), HybridClock("slow", Wall(1000))
    seen = fast.now()
    slow.observe(seen)
    reply = slow.now()
    assert reply > seen  # causality kept though slow's wall clock is 4 s behind
    assert reply.ms == seen.ms


def test_observe_takes_the_latest_of_the_three_clocks() -> None:
    clock = HybridClock("b", Wall(2000))
    assert clock.observe(Stamp(1000, 7, "x")) == Stamp(2000, 0, "b")  # wall wins
    assert clock.observe(Stamp(3000, 7, "x")) == Stamp(3000, 8, "b")  # remote wins
    assert clock.observe(Stamp(3000, 2, "y")) == Stamp(3000, 9, "b")  # ours was later


@pytest.mark.parametrize("value", [[1, 2], [1, -2, "a"], ["1", 2, "a"], [1, 2, 3], "1:2:a",
                                   [True, 0, "a"], None])
def test_a_stamp_from_json_names_what_is_wrong(value: object) -> None:
    with pytest.raises(ValueError, match=r"\[ms, counter, node\]"):
        Stamp.from_json(value)


def test_a_stamp_round_trips_through_json() -> None:
    stamp = Stamp(1_700_000_000_000, 3, "node-a")
    assert Stamp.from_json(stamp.to_json()) == stamp
