"""The server's netcode helpers: per-player input queues and lag compensation, exactly."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from rtctl.services.netcode import InputQueue, LagCompensation, Rewound


def _inputs(*seqs: int) -> list[tuple[int, str]]:
    return [(seq, f"i{seq}") for seq in seqs]


def _counters(queue: InputQueue[Any]) -> dict[str, int]:
    return {"last": queue.last, "pending": queue.pending, "lost": queue.lost,
            "duplicates": queue.duplicates, "late": queue.late, "dropped": queue.dropped,
            "throttled": queue.throttled}


def _zero(**counters: int) -> dict[str, int]:
    return dict.fromkeys(("last", "pending", "lost", "duplicates", "late", "dropped",
                          "throttled"), 0) | counters


# Each step receives seqs (a list) or takes and expects seqs (a tuple); then the counters.
# Every take earns one credit, so the empty takes () that some cases begin with save some.
QUEUE_CASES = {
    "one a tick with nothing saved": (
        {}, [[1, 2, 3], (1,), (2,), (3,), ()], _zero(last=3)),
    "saved credits drain a backlog, at most per_tick a tick": (
        {}, [(), (), (), [1, 2, 3, 4, 5], (1, 2, 3), (4, 5), ()], _zero(last=5)),
    "credits are kept up to burst": (
        {"burst": 2}, [(), (), (), (), [1, 2, 3], (1, 2), (3,)], _zero(last=3)),
    "order kept whatever the arrival order": (
        {}, [[3, 1, 2], (1,), (2,), (3,)], _zero(last=3)),
    "re-sent copies ignored, taken or held": (
        {}, [(), (), [1, 2, 3], (1, 2, 3), [2, 3, 4], [3, 4, 5, 5], (4,), (5,)],
        _zero(last=5, duplicates=5)),
    "per_tick of one": (
        {"per_tick": 1}, [(), [1, 2], (1,), [2, 3], (2,), (3,)], _zero(last=3, duplicates=1)),
    "a gap before the lowest held is skipped at once": (
        {}, [[1], (1,), [4, 5], (4,), (5,)], _zero(last=5, lost=2)),
    "a gap between held ones too, spending no credit": (
        {}, [(), (), [1, 3, 7], (1, 3, 7)], _zero(last=7, lost=4)),
    "a copy of a skipped seq is late, of a taken one a duplicate": (
        {}, [(), (), [1, 4, 5, 8], (1, 4, 5), (8,), [2, 3, 4, 6, 8, 9], (9,)],
        _zero(last=9, lost=4, duplicates=2, late=3)),
    "no gap counted on an empty take": (
        {}, [(), [1], (1,), ()], _zero(last=1)),
    "the newest beyond limit are refused": (
        {"limit": 3}, [(), (), [1, 2, 3, 4, 5], (1, 2, 3), [4, 5], (4,), (5,)],
        _zero(last=5, dropped=2)),
    "an older seq evicts the newest held when full": (
        {"limit": 3}, [[1], (1,), [3, 4, 5], [2], (2,), (3,), (4,), [5], (5,)],
        _zero(last=5, dropped=1)),
    "the queue starts at the first input it receives": (
        {}, [[7, 8], [6], (7,), (8,)], _zero(last=8, duplicates=1)),
    "only the newest limit gaps are remembered": (
        {"limit": 1, "per_tick": 1}, [[1], (1,), [3], (3,), [5], (5,), [2, 4]],
        _zero(last=5, lost=2, duplicates=1, late=1)),
    "pending counts what is held": (
        {"per_tick": 2}, [(), (), [1, 2, 3, 4, 5], (1, 2)], _zero(last=2, pending=3)),
    "a backlog left standing for burst ticks loses its oldest": (
        {"burst": 2}, [[1, 2, 3, 4], (1,), (2,), (4,), ()], _zero(last=4, throttled=1)),
    "a copy of a throttled seq is a duplicate": (
        {"burst": 2}, [[1, 2, 3, 4], (1,), (2,), [3], (4,)],
        _zero(last=4, throttled=1, duplicates=1)),
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


def _accounted(queue: InputQueue[Any], taken: list[tuple[int, str]]) -> None:
    """Every seq up to the ack was applied once, in order, or skipped and counted."""
    seqs = [seq for seq, _ in taken]
    assert seqs == sorted(set(seqs))
    assert len(taken) + queue.lost + queue.throttled == queue.last


@pytest.mark.parametrize("rate", [2, 3, 10])
def test_a_steady_over_sender_moves_one_input_a_tick(rate: int) -> None:
    """The speed hack: a client sending ``rate`` inputs a tick (3: 450 units/s where the
    arena's SPEED is 150) is held to one a tick, and the queue never grows past limit."""
    queue: InputQueue[str] = InputQueue(limit=32, per_tick=3)
    sent = 0
    taken = []
    ticks = 300
    for _tick in range(ticks):
        queue.receive(_inputs(*range(sent + 1, sent + rate + 1)))
        sent += rate
        taken += queue.take()
        assert queue.pending <= queue.limit
    assert len(taken) == ticks
    _accounted(queue, taken)


def test_saved_credits_buy_at_most_a_burst() -> None:
    """A client that idles to save credits, then floods, gets ahead by less than burst."""
    queue: InputQueue[str] = InputQueue(per_tick=3, burst=10)
    for _tick in range(100):
        assert queue.take() == []
    sent = 0
    taken = []
    window = 60
    for tick in range(window):
        queue.receive(_inputs(*range(sent + 1, sent + 4)))
        sent += 3
        step = queue.take()
        if tick == 0:
            assert len(step) == queue.per_tick  # the burst is there to spend
        taken += step
    assert window <= len(taken) <= window + queue.burst
    _accounted(queue, taken)


REDUNDANCY = 4  # as the arena's client: each message re-sends the newest unacked inputs


def _play(queue: InputQueue[str], ticks: int, stall: range) -> list[int]:
    """An honest client, one input a tick, whose messages during ``stall`` are held up
    and then delivered together (TCP); the lag (sent - acked) after each tick."""
    held: list[list[tuple[int, str]]] = []
    lags = []
    for tick in range(ticks):
        sent = tick + 1
        held.append(_inputs(*range(max(queue.last + 1, sent - REDUNDANCY + 1), sent + 1)))
        if tick not in stall:
            for message in held:
                queue.receive(message)
            held.clear()
        queue.take()
        assert queue.pending <= queue.limit
        lags.append(sent - queue.last)
    return lags


@pytest.mark.parametrize("length", [1, 10, 31])
def test_a_stall_within_the_burst_drains_fully(length: int) -> None:
    """After a stall of k ticks the backlog drains at per_tick - 1 extra a tick until
    the lag is back to none, and no input is skipped."""
    queue: InputQueue[str] = InputQueue(per_tick=3, burst=32)
    stall = range(50, 50 + length)
    lags = _play(queue, 200, stall)
    drained = stall.stop + math.ceil(length / (queue.per_tick - 1)) - 1
    assert lags[stall.stop - 1] == length  # nothing moved during the stall
    assert all(lag > 0 for lag in lags[stall.stop:drained])
    assert set(lags[drained:]) == {0}
    assert (queue.lost, queue.throttled) == (0, 0)


def test_a_stall_longer_than_the_burst_leaves_no_lasting_lag() -> None:
    """What the credits cannot pay for is skipped (refused beyond limit, then lost; or
    throttled from a standing backlog), so the lag comes back to none: the held limit
    drains first, then each re-sent input left over costs burst ticks at most."""
    queue: InputQueue[str] = InputQueue(per_tick=3, burst=32, limit=32)
    stall = range(50, 150)
    lags = _play(queue, 400, stall)
    bound = stall.stop + queue.limit // (queue.per_tick - 1) + REDUNDANCY * queue.burst
    assert set(lags[bound:]) == {0}
    assert 0 < queue.throttled < REDUNDANCY
    assert queue.lost > 0


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
    for _tick in range(3):  # credits saved, to take two at once below
        queue.take()
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
    queue.take()
    queue.receive([[1, "a"], [2, "b"]])  # type: ignore[list-item]
    assert queue.take() == [(1, "a"), (2, "b")]


@pytest.mark.parametrize("config", [{"limit": 0}, {"per_tick": 0}, {"burst": 0}])
def test_input_queue_config_is_checked(config: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="limit, per_tick and burst must be at least 1"):
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


@pytest.mark.parametrize(("config", "message"), [
    ({"tick_rate": 0.0}, "tick_rate must be positive"),
    ({"tick_rate": 20, "max_rewind": -1}, "tick_rate must be positive"),
    ({"tick_rate": 20, "snap": -1.0}, "snap must be a distance"),
    ({"tick_rate": 20, "snap": math.nan}, "snap must be a distance"),
])
def test_lag_compensation_config_is_checked(config: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LagCompensation(**config)


def test_a_nan_tick_is_refused() -> None:
    with pytest.raises(ValueError, match="tick must be a number, got nan"):
        _history().at(math.nan, 12)


def _respawn(snap: float | None) -> LagCompensation[str]:
    """"t" respawns from x=100 to x=500 between ticks 1 and 2; "w" walks 10 a tick; "d"
    jumps 300 along x and 400 along y (500 in all, each axis under 450)."""
    history: LagCompensation[str] = LagCompensation(tick_rate=20, snap=snap)
    history.record(1, {"t": (100.0, 0.0), "w": (0.0, 0.0), "d": (0.0, 0.0)})
    history.record(2, {"t": (500.0, 0.0), "w": (10.0, 0.0), "d": (300.0, 400.0)})
    return history


SNAP_CASES = {
    "no snap: a line through where nobody stood": (None, 1.5, (300.0, 0.0), (150.0, 200.0)),
    "where it was, early": (50.0, 1.25, (100.0, 0.0), (0.0, 0.0)),
    "where it was, until the later tick": (50.0, 1.75, (100.0, 0.0), (0.0, 0.0)),
    "the later tick itself": (50.0, 2.0, (500.0, 0.0), (300.0, 400.0)),
    "the distance, not each axis": (450.0, 1.25, (200.0, 0.0), (0.0, 0.0)),
    "a move of exactly snap is a move": (500.0, 1.5, (300.0, 0.0), (150.0, 200.0)),
}


@pytest.mark.parametrize(("snap", "tick", "teleported", "diagonal"), SNAP_CASES.values(),
                         ids=SNAP_CASES.keys())
def test_a_teleport_is_taken_where_it_was_until_the_later_tick(
        snap: float | None, tick: float, teleported: tuple[float, float],
        diagonal: tuple[float, float]) -> None:
    walked = (10.0 * (tick - 1), 0.0)  # under any snap: always between
    assert _respawn(snap).at(tick, 2) == Rewound(
        {"t": teleported, "w": walked, "d": diagonal}, tick, False)
