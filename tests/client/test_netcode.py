"""The netcode numbers a game shows: fed by hand at chosen instants, read exactly."""

from __future__ import annotations

import pytest

from rtctl.client.interpolation import Frame
from rtctl.client.netcode import CORRECTION_EPSILON, RECENT, RECENT_FRAMES, NetcodeMetrics
from rtctl.client.netstats import NetStats
from rtctl.client.prediction import Reconciliation

NET = NetStats().snapshot(0.0)  # a connection that has measured nothing


def frame(mode: str, depth: int = 2, delay: float = 0.1) -> Frame[str]:
    return Frame(time=1.0, entities={}, mode=mode, depth=depth, delay=delay)  # type: ignore[arg-type]


def test_before_anything_every_number_is_empty() -> None:
    numbers = NetcodeMetrics().read(NET, jitter=0.0, now=5.0)
    assert (numbers.rtt, numbers.snapshot_age, numbers.snapshots) == (None, None, 0)
    assert (numbers.snapshot_loss, numbers.input_loss, numbers.extrapolated_ratio) == (0, 0, 0)
    assert (numbers.buffer_depth, numbers.delay, numbers.corrections) == (0, 0.0, 0)


def test_snapshot_loss_counts_the_ticks_that_never_came() -> None:
    metrics = NetcodeMetrics()
    for tick, now in ((1, 0.0), (2, 0.25), (5, 0.5), (6, 0.75)):
        metrics.snapshot(tick, 0.0625, now=now)
    numbers = metrics.read(NET, jitter=0.002, now=1.0)
    assert numbers.snapshots == 4
    assert numbers.snapshot_loss == 2 / 6
    assert numbers.jitter == 0.002


def test_snapshot_loss_is_of_the_recent_seconds() -> None:
    """A burst of loss at the join is forgotten RECENT seconds later."""
    metrics = NetcodeMetrics()
    metrics.snapshot(1, None, now=0.0)
    metrics.snapshot(4, None, now=0.5)  # two missing
    metrics.snapshot(5, None, now=1.0)
    assert metrics.read(NET, jitter=0.0, now=0.5 + RECENT).snapshot_loss == 0.0
    metrics.snapshot(7, None, now=0.5 + RECENT)  # tick 6 missing: 1 of 3 recent ticks
    numbers = metrics.read(NET, jitter=0.0, now=0.5 + RECENT)
    assert (numbers.snapshot_loss, numbers.snapshots) == (1 / 3, 4)


def test_snapshot_age_grows_while_nothing_arrives() -> None:
    metrics = NetcodeMetrics()
    metrics.snapshot(1, 0.0625, now=10.0)
    assert metrics.read(NET, jitter=0.0, now=10.0).snapshot_age == 0.0625
    assert metrics.read(NET, jitter=0.0, now=10.5).snapshot_age == 0.5625
    metrics.snapshot(2, 0.125, now=10.75)
    assert metrics.read(NET, jitter=0.0, now=11.0).snapshot_age == 0.375


def test_a_snapshot_of_unknown_age_is_taken_as_slow_as_the_last_known() -> None:
    metrics = NetcodeMetrics()
    metrics.snapshot(1, 0.0625, now=10.0)
    metrics.snapshot(2, None, now=10.5)  # it came: the age restarts from its arrival
    assert metrics.read(NET, jitter=0.0, now=10.75).snapshot_age == 0.3125


def test_input_loss_and_unacknowledged_inputs() -> None:
    metrics = NetcodeMetrics()
    metrics.inputs(sent=10, acked=0, missed=0, now=0.0)
    metrics.inputs(sent=120, acked=100, missed=2, now=1.0)
    numbers = metrics.read(NET, jitter=0.0, now=1.0)
    assert (numbers.inputs_sent, numbers.inputs_unacked) == (120, 20)
    assert numbers.input_loss == 2 / 100


def test_input_loss_is_of_the_recent_seconds() -> None:
    """The counts as they were RECENT seconds ago are the baseline: a loss before then
    is forgotten."""
    metrics = NetcodeMetrics()
    metrics.inputs(sent=30, acked=30, missed=0, now=0.0)
    metrics.inputs(sent=60, acked=60, missed=10, now=1.0)  # a bad second
    metrics.inputs(sent=90, acked=90, missed=10, now=2.0)
    assert metrics.read(NET, jitter=0.0, now=2.0).input_loss == 10 / 60
    metrics.inputs(sent=180, acked=180, missed=13, now=4.5)
    assert metrics.read(NET, jitter=0.0, now=4.5).input_loss == 3 / 120  # since 1.0
    assert metrics.read(NET, jitter=0.0, now=5.0).input_loss == 3 / 90  # since 2.0


def test_counts_that_fall_start_the_input_window_over() -> None:
    """The server made the player afresh: its acknowledgements and misses restart."""
    metrics = NetcodeMetrics()
    metrics.inputs(sent=500, acked=500, missed=40, now=0.0)
    metrics.inputs(sent=510, acked=4, missed=0, now=0.5)
    metrics.inputs(sent=520, acked=14, missed=1, now=1.0)
    assert metrics.read(NET, jitter=0.0, now=1.0).input_loss == 1 / 10


def test_only_a_correction_that_moved_the_present_counts() -> None:
    metrics = NetcodeMetrics()
    metrics.reconciled(Reconciliation(ack=3, error=0.0, replayed=4, correction=0.0))
    metrics.reconciled(Reconciliation(ack=4, error=1.0, replayed=4,
                                      correction=CORRECTION_EPSILON / 2))
    metrics.reconciled(Reconciliation(ack=5, error=7.5, replayed=3, correction=7.5))
    numbers = metrics.read(NET, jitter=0.0, now=0.0)
    assert (numbers.corrections, numbers.last_correction) == (1, 7.5)


def test_frames_beyond_the_buffer_and_its_depth() -> None:
    metrics = NetcodeMetrics()
    for mode in ("interpolated", "interpolated", "extrapolated", "frozen"):
        metrics.rendered(frame(mode, depth=0 if mode != "interpolated" else 2))
    metrics.rendered(frame("interpolated", depth=3, delay=0.12))
    numbers = metrics.read(NET, jitter=0.0, now=0.0)
    assert numbers.extrapolated_ratio == 2 / 5
    assert (numbers.buffer_depth, numbers.delay) == (3, 0.12)


def test_the_connections_own_numbers_come_along() -> None:
    stats = NetStats()
    stats.observe_ping(0.0, 0.1, 0.05)
    stats.record_in(500, 1.0)
    stats.record_out(200, 1.0)
    numbers = NetcodeMetrics().read(stats.snapshot(1.0), jitter=0.0, now=1.0)
    assert numbers.rtt == pytest.approx(0.1)
    assert (numbers.bytes_in_per_s, numbers.bytes_out_per_s) == (250.0, 100.0)


def test_the_extrapolated_share_is_of_the_recent_frames() -> None:
    metrics = NetcodeMetrics()
    for _ in range(RECENT_FRAMES):
        metrics.rendered(frame("frozen", depth=0))
    for _ in range(RECENT_FRAMES // 3):
        metrics.rendered(frame("interpolated"))
    numbers = metrics.read(NET, jitter=0.0, now=0.0)
    assert numbers.extrapolated_ratio == 2 / 3
