"""The server's netcode helpers: per-player input queues and lag compensation, exactly."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from rtctl.services.netcode import InputQueue, LagCompensation, Rewound


def _inputs(*seqs: int) -> list[tuple[int, str]]:
    return [(seq, f"i{seq}") for seq in seqs]


def _counters(queue: InputQueue[Any]) -> dict[str, int]:
    return {"last": queue.last, "pending": queue.pending, "lost": queue.lost,
            "duplicates": queue.duplicates, "late": queue.late, "dropped": queue.dropped}


# Each step receives seqs (a list) or takes and expects seqs (a tuple); then the counters.
QUEUE_CASES = {
    "in order, at most per_tick": (
        {}, [[1, 2, 3, 4, 5], (1, 2, 3), (4, 5), ()],
        {"last": 5, "pending": 0, "lost": 0, "duplicates": 0, "late": 0, "dropped": 0}),
    "order kept whatever the arrival order": (
        {}, [[3, 1, 2], (1, 2, 3)],
        {"last": 3, "pending": 0, "lost": 0, "duplicates": 0, "late": 0, "dropped": 0}),
    "re-sent copies ignored, taken or held": (
        {}, [[1, 2, 3], (1, 2, 3), [2, 3, 4], [3, 4, 5, 5], (4, 5)],
        {"last": 5, "pending": 0, "lost": 0, "duplicates": 5, "late": 0, "dropped": 0}),
    "per_tick of one": (
        {"per_tick": 1}, [[1, 2], (1,), [2, 3], (2,), (3,)],
        {"last": 3, "pending": 0, "lost": 0, "duplicates": 1, "late": 0, "dropped": 0}),
    "a gap before the lowest held is skipped at once": (
        {}, [[1], (1,), [4, 5], (4, 5)],
        {"last": 5, "pending": 0, "lost": 2, "duplicates": 0, "late": 0, "dropped": 0}),
    "a gap between held ones too": (
        {}, [[1, 3, 7], (1, 3, 7)],
        {"last": 7, "pending": 0, "lost": 4, "duplicates": 0, "late": 0, "dropped": 0}),
    "a copy of a skipped seq is late, of a taken one a duplicate": (
        {}, [[1, 4, 5, 8], (1, 4, 5), (8,), [2, 3, 4, 6, 8, 9], (9,)],
        {"last": 9, "pending": 0, "lost": 4, "duplicates": 2, "late": 3, "dropped": 0}),
    "no gap counted on an empty take": (
        {}, [(), [1], (1,), ()],
        {"last": 1, "pending": 0, "lost": 0, "duplicates": 0, "late": 0, "dropped": 0}),
    "the newest beyond limit are refused": (
        {"limit": 3}, [[1, 2, 3, 4, 5], (1, 2, 3), [4, 5], (4, 5)],
        {"last": 5, "pending": 0, "lost": 0, "duplicates": 0, "late": 0, "dropped": 2}),
    "an older seq evicts the newest held when full": (
        {"limit": 3}, [[1], (1,), [3, 4, 5], [2], (2, 3, 4), [5], (5,)],
        {"last": 5, "pending": 0, "lost": 0, "duplicates": 0, "late": 0, "dropped": 1}),
    "the queue starts at the first input it receives": (
        {}, [[7, 8], [6], (7, 8)],
        {"last": 8, "pending": 0, "lost": 0, "duplicates": 1, "late": 0, "dropped": 0}),
    "only the newest limit gaps are remembered": (
        {"limit": 1, "per_tick": 1}, [[1], (1,), [3], (3,), [5], (5,), [2, 4]],
        {"last": 5, "pending": 0, "lost": 2, "duplicates": 1, "late": 1, "dropped": 0}),
    "pending counts what is held": (
        {"per_tick": 2}, [[1, 2, 3, 4, 5], (1, 2)],
        {"last": 2, "pending": 3, "lost": 0, "duplicates": 0, "late": 0, "dropped": 0}),
}


@pytest.mark.parametrize(("config", "steps", "counters"), QUEUE_CASES.values(),
                         ids=QUEUE_CASES.keys())
def test_input_queue(config: dict[str, int], steps: list[list[int] | tuple[int, ...]],
                     counters: dict[str, int]) -> None:
    queue: InputQueue[str] = InputQueue(**config)
    for step in steps:
        if isinstance(step, list):
            queue.receive(_inputs(*step))
        else:
            assert queue.take() == _inputs(*step)
    assert _counters(queue) == counters


def test_a_fast_sender_moves_per_tick_steps_and_memory_stays_bounded() -> None:
    queue: InputQueue[str] = InputQueue(limit=32, per_tick=3)
    sent = 0
    taken = []
    for _tick in range(50):  # 10 inputs per tick: ten times the tick rate
        queue.receive(_inputs(*range(sent + 1, sent + 11)))
        sent += 10
        step = queue.take()
        assert len(step) == queue.per_tick
        assert queue.pending <= queue.limit
        taken += step
    assert [seq for seq, _ in taken] == sorted({seq for seq, _ in taken})
    assert len(taken) + queue.pending + queue.dropped == sent


BAD_BATCHES = {
    "zero": ((0, "x"), "input 4: seq must be an integer from 1, got 0"),
    "negative": ((-3, "x"), "input 4: seq must be an integer from 1, got -3"),
    "bool": ((True, "x"), "input 4: seq must be an integer from 1, got True"),
    "float": ((4.0, "x"), "input 4: seq must be an integer from 1, got 4.0"),
    "string": (("4", "x"), "input 4: seq must be an integer from 1, got '4'"),
    "not a pair": ((4,), r"input 4 must be a \(seq, input\) pair, got \(4,\)"),
    "a string pair": ("4x", r"input 4 must be a \(seq, input\) pair, got '4x'"),
}


@pytest.mark.parametrize(("bad", "message"), BAD_BATCHES.values(), ids=BAD_BATCHES.keys())
def test_bad_input_is_rejected_and_changes_nothing(bad: Any, message: str) -> None:
    queue: InputQueue[str] = InputQueue(limit=3)
    queue.receive(_inputs(1, 3))
    queue.take()
    queue.receive(_inputs(4, 6))
    before = _counters(queue)
    # a duplicate, a late copy, a new one and an overflow come before the bad one
    with pytest.raises(ValueError, match=message):
        queue.receive([(4, "again"), (2, "late"), *_inputs(5, 7), bad])
    assert _counters(queue) == before
    assert queue.take() == _inputs(4, 6)


def test_json_pairs_are_accepted() -> None:
    queue: InputQueue[str] = InputQueue()
    queue.receive([[1, "a"], [2, "b"]])  # type: ignore[list-item]
    assert queue.take() == [(1, "a"), (2, "b")]


@pytest.mark.parametrize("config", [{"limit": 0}, {"per_tick": 0}])
def test_input_queue_config_is_checked(config: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="limit and per_tick must be at least 1"):
        InputQueue(**config)


def _history() -> LagCompensation[str]:
    history: LagCompensation[str] = LagCompensation(max_rewind=1.0, tick_rate=20)
    history.record(10, {"a": (0.0, 0.0), "b": (10.0, 0.0)})
    history.record(11, {"a": (2.0, 4.0), "b": (10.0, 0.0), "c": (5.0, 5.0)})
    history.record(12, {"a": (4.0, 8.0)})
    return history


REWIND_CASES = {
    "between two ticks": (10.5, 12, {"a": (1.0, 2.0), "b": (10.0, 0.0), "c": (5.0, 5.0)},
                          10.5, False),
    "a quarter on": (11.25, 12, {"a": (2.5, 5.0), "b": (10.0, 0.0), "c": (5.0, 5.0)},
                     11.25, False),
    "on a recorded tick": (11, 12, {"a": (2.0, 4.0), "b": (10.0, 0.0), "c": (5.0, 5.0)},
                           11, False),
    "now": (12, 12, {"a": (4.0, 8.0)}, 12, False),
    "the future clamps to now": (13.5, 12, {"a": (4.0, 8.0)}, 12, True),
    "past the newest recorded": (12.5, 13, {"a": (4.0, 8.0)}, 12, True),
    "before the oldest recorded": (5, 12, {"a": (0.0, 0.0), "b": (10.0, 0.0)}, 10, True),
    "before the window": (-30, 12, {"a": (0.0, 0.0), "b": (10.0, 0.0)}, 10, True),
}


@pytest.mark.parametrize(("tick", "now", "positions", "used", "clamped"),
                         REWIND_CASES.values(), ids=REWIND_CASES.keys())
def test_rewind(tick: float, now: int, positions: dict[str, tuple[float, float]],
                used: float, clamped: bool) -> None:
    assert _history().at(tick, now) == Rewound(positions, used, clamped)


def _walker(max_rewind: float, ticks: int) -> LagCompensation[str]:
    """Entity "a" at x = tick, recorded for ``ticks`` ticks at 20 Hz."""
    history: LagCompensation[str] = LagCompensation(max_rewind=max_rewind, tick_rate=20)
    for tick in range(ticks):
        history.record(tick, {"a": (float(tick), 0.0)})
    return history


WINDOW_CASES = {
    "inside": (1.0, 90.5, 90.5, False),
    "the window's first tick": (1.0, 80, 80, False),
    "clamped to the window": (1.0, 50, 80, True),
    "a fractional window": (0.125, 90, 97.5, True),
    "a fractional window's start": (0.125, 97.5, 97.5, False),
    "no rewind at all": (0.0, 99.5, 100, True),
}


@pytest.mark.parametrize(("max_rewind", "tick", "used", "clamped"), WINDOW_CASES.values(),
                         ids=WINDOW_CASES.keys())
def test_rewind_is_bounded_by_max_rewind(max_rewind: float, tick: float, used: float,
                                         clamped: bool) -> None:
    history = _walker(max_rewind, 101)
    assert history.at(tick, 100) == Rewound({"a": (float(used), 0.0)}, used, clamped)


@pytest.mark.parametrize(("max_rewind", "kept"), [(1.0, 21), (0.125, 4), (0.0, 1)])
def test_the_ring_keeps_the_window_and_one_more(max_rewind: float, kept: int) -> None:
    history: LagCompensation[str] = LagCompensation(max_rewind=max_rewind, tick_rate=20)
    sizes = []
    for tick in range(1000):
        history.record(tick, {"a": (float(tick), 0.0)})
        sizes.append(len(history))
    assert max(sizes) == sizes[-1] == kept
    oldest = 999 - max_rewind * 20
    assert history.at(oldest, 999) == Rewound({"a": (oldest, 0.0)}, oldest, False)


def test_nothing_recorded_gives_no_positions() -> None:
    history: LagCompensation[str] = LagCompensation(tick_rate=20)
    assert history.at(5, 10) == Rewound({}, 5, False)
    assert history.at(11, 10) == Rewound({}, 10, True)


def test_ticks_must_rise_and_a_bad_one_changes_nothing() -> None:
    history = _history()
    with pytest.raises(ValueError, match="tick 12 is not after the last recorded tick 12"):
        history.record(12, {"a": (9.0, 9.0)})
    with pytest.raises(ValueError, match="tick 3 is not after the last recorded tick 12"):
        history.record(3, {"a": (9.0, 9.0)})
    assert len(history) == 3
    assert history.at(12, 12) == Rewound({"a": (4.0, 8.0)}, 12, False)


def test_recorded_positions_are_a_copy() -> None:
    history: LagCompensation[str] = LagCompensation(tick_rate=20)
    positions = {"a": (1.0, 1.0)}
    history.record(1, positions)
    positions["a"] = (2.0, 2.0)
    history.at(1, 1).positions["b"] = (3.0, 3.0)
    assert history.at(1, 1).positions == {"a": (1.0, 1.0)}


def test_a_rewound_result_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        _history().at(11, 12).clamped = True  # type: ignore[misc]


@pytest.mark.parametrize("config", [{"tick_rate": 0.0}, {"tick_rate": 20, "max_rewind": -1}])
def test_lag_compensation_config_is_checked(config: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="tick_rate must be positive"):
        LagCompensation(**config)
