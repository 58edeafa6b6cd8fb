"""The event-loop lag probe: its core with a fake clock, its task, the profiler's share."""

from __future__ import annotations

import asyncio

import pytest

from rtctl.gateway.loop_lag import EVENT_LOOP_PROBE, LagMeter, LagProbe
from rtctl.profiler.stages import QueueDepths, StageProfiler


def test_lag_is_how_late_the_probe_woke() -> None:
    meter = LagMeter(0.25)
    assert meter.sleeping(10.0) == 0.25
    assert meter.woke(10.29) == pytest.approx(0.04)
    meter.sleeping(20.0)
    assert meter.woke(20.2499) == 0.0  # a timer a tick early is no negative lag
    histogram = meter.histogram
    assert histogram.count == 2
    assert dict(histogram.cumulative())["0.001"] == 1  # the early one
    assert dict(histogram.cumulative())["0.025"] == 1  # 0.04 is above it...
    assert dict(histogram.cumulative())["0.05"] == 2  # ...and in le=0.05


def test_waking_without_sleeping_is_an_error() -> None:
    with pytest.raises(RuntimeError):
        LagMeter().woke(1.0)


async def test_the_probe_measures_each_sleep_until_stopped() -> None:
    now = [100.0]
    slept: list[float] = []
    three = asyncio.Event()

    async def sleep(seconds: float) -> None:
        if len(slept) == 3:
            three.set()
            await asyncio.Event().wait()  # until cancelled
        slept.append(seconds)
        now[0] += seconds + 0.01 * len(slept)  # woken 10, 20, 30 ms late

    meter = LagMeter()
    told: list[float] = []
    probe = LagProbe(meter, also=told.append, clock=lambda: now[0], sleep=sleep)
    probe.start()
    await asyncio.wait_for(three.wait(), 5)
    assert probe.running
    await probe.stop()
    assert not probe.running
    assert slept == [EVENT_LOOP_PROBE] * 3
    assert meter.histogram.count == 3
    assert meter.histogram.total == pytest.approx(0.06)
    assert told == pytest.approx([0.01, 0.02, 0.03])  # the profiler's share


def test_the_profiler_shows_what_the_probe_tells_it() -> None:
    profiler = StageProfiler()
    for lag in (0.002, 0.004, 0.030):
        profiler.record_lag(lag)
    lag_ms = profiler.snapshot(QueueDepths(0, 0, 0, 0, 0))["loop_lag_ms"]
    assert lag_ms["samples"] == 3
    assert lag_ms["max"] == pytest.approx(30, rel=0.01)  # the HDR histogram's precision
