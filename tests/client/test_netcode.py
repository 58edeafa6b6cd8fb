"""The netcode numbers a game shows: fed by hand, read exactly."""

from __future__ import annotations

import pytest

from rtctl.client.interpolation import Frame
from rtctl.client.netcode import CORRECTION_EPSILON, RECENT_FRAMES, NetcodeMetrics
from rtctl.client.netstats import NetStats
from rtctl.client.prediction import Reconciliation


def frame(mode: str, depth: int = 2, delay: float = 0.1) -> Frame[str]:
    return Frame(time=1.0, entities={}, mode=mode, depth=depth, delay=delay)  # type: ignore[arg-type]


def test_before_anything_every_number_is_empty() -> None:
    numbers = NetcodeMetrics().read(NetStats().snapshot(0.0), jitter=0.0)
    assert (numbers.rtt, numbers.snapshot_age, numbers.snapshots) == (None, None, 0)
    assert (numbers.snapshot_loss, numbers.input_loss, numbers.extrapolated_ratio) == (0, 0, 0)
    assert (numbers.buffer_depth, numbers.delay, numbers.corrections) == (0, 0.0, 0)


def test_snapshot_loss_counts_the_ticks_that_never_came() -> None:
    metrics = NetcodeMetrics()
    for tick, age in ((1, 0.05), (2, 0.06), (5, 0.04), (6, None)):
        metrics.snapshot(tick, age)
    numbers = metrics.read(NetStats().snapshot(0.0), jitter=0.002)
    assert numbers.snapshots == 4
    assert numbers.snapshot_loss == pytest.approx(2 / 6)
    assert numbers.snapshot_age == 0.04  # the last one known
    assert numbers.jitter == 0.002


def test_input_loss_and_unacknowledged_inputs() -> None:
    metrics = NetcodeMetrics()
    metrics.inputs(sent=120, acked=100, missed=2)
    numbers = metrics.read(NetStats().snapshot(0.0), jitter=0.0)
    assert (numbers.inputs_sent, numbers.inputs_unacked) == (120, 20)
    assert numbers.input_loss == pytest.approx(0.02)


def test_only_a_correction_that_moved_the_present_counts() -> None:
    metrics = NetcodeMetrics()
    metrics.reconciled(Reconciliation(ack=3, error=0.0, replayed=4, correction=0.0))
    metrics.reconciled(Reconciliation(ack=4, error=1.0, replayed=4,
                                      correction=CORRECTION_EPSILON / 2))
    metrics.reconciled(Reconciliation(ack=5, error=7.5, replayed=3, correction=7.5))
    numbers = metrics.read(NetStats().snapshot(0.0), jitter=0.0)
    assert (numbers.corrections, numbers.last_correction) == (1, 7.5)


def test_frames_beyond_the_buffer_and_its_depth() -> None:
    metrics = NetcodeMetrics()
    for mode in ("interpolated", "interpolated", "extrapolated", "frozen"):
        metrics.rendered(frame(mode, depth=0 if mode != "interpolated" else 2))
    metrics.rendered(frame("interpolated", depth=3, delay=0.12))
    numbers = metrics.read(NetStats().snapshot(0.0), jitter=0.0)
    assert numbers.extrapolated_ratio == pytest.approx(2 / 5)
    assert (numbers.buffer_depth, numbers.delay) == (3, 0.12)


def test_the_connections_own_numbers_come_along() -> None:
    stats = NetStats()
    stats.observe_ping(0.0, 0.1, 0.05)
    stats.record_in(500, 1.0)
    stats.record_out(200, 1.0)
    numbers = NetcodeMetrics().read(stats.snapshot(1.0), jitter=0.0)
    assert numbers.rtt == pytest.approx(0.1)
    assert (numbers.bytes_in_per_s, numbers.bytes_out_per_s) == (250.0, 100.0)


def test_the_extrapolated_share_is_of_the_recent_frames() -> None:
    metrics = NetcodeMetrics()
    for _ in range(RECENT_FRAMES):
        metrics.rendered(frame("frozen", depth=0))
    for _ in range(RECENT_FRAMES // 3):
        metrics.rendered(frame("interpolated"))
    numbers = metrics.read(NetStats().snapshot(0.0), jitter=0.0)
    assert numbers.extrapolated_ratio == pytest.approx(2 / 3)
