"""The generator-bottleneck verdict, from given numbers (no timing)."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from rich.console import Console

from rtctl.bench.bottleneck import BUSY, LAG, GeneratorLoad, LoadMeter, judge
from rtctl.bench.histogram import Histogram
from rtctl.bench.report import summary
from rtctl.bench.results import BenchResult, WorkerResult


def _load(busy: float, lag_ms: float = 0.5) -> GeneratorLoad:
    return GeneratorLoad(cpu_s=busy * 10, wall_s=10.0, lag_s=lag_ms / 1e3)


def test_a_saturated_worker_is_the_bottleneck_and_more_workers_are_suggested() -> None:
    verdict = judge([_load(0.97)])
    assert verdict.generator
    assert verdict.busy == pytest.approx(0.97)
    assert verdict.workers == 2
    assert verdict.text() == ("the load generator, not the server, was the bottleneck "
                              "(busiest worker 97% of a core, loop lag 0.5 ms): try --workers 2")


def test_a_worker_with_headroom_is_not() -> None:
    verdict = judge([_load(0.45), _load(0.52)])
    assert not verdict.generator
    assert verdict.workers == 2
    assert verdict.text() == ("load generator: busiest worker 52% of a core, loop lag 0.5 ms; "
                              "not the bottleneck")


@pytest.mark.parametrize(("busy", "generator"), [(BUSY - 0.01, False), (BUSY, True)])
def test_the_busy_limit(busy: float, generator: bool) -> None:
    assert judge([_load(busy)]).generator is generator


def test_the_suggestion_gives_each_worker_headroom() -> None:
    # Two workers, the busiest at 95 %: 2 x 0.95 / 0.6 -> 4 workers.
    assert judge([_load(0.95), _load(0.80)]).workers == 4
    assert judge([_load(0.91)]).workers == 2  # at least one more than ran


def test_a_late_loop_without_cpu_is_the_generator_waiting_for_a_core() -> None:
    verdict = judge([_load(0.40, lag_ms=LAG * 1e3)])
    assert verdict.generator
    assert verdict.workers == 1
    assert verdict.text().endswith("its loop waited for the CPU: give it a core of its own")


def test_nothing_measured_is_no_verdict() -> None:
    assert GeneratorLoad().busy == 0.0
    assert not judge([]).generator


async def test_a_meter_stopped_before_its_window_measured_nothing() -> None:
    now = time.monotonic()
    assert LoadMeter(now + 100, now + 200).load() == GeneratorLoad()


def _result(*loads: GeneratorLoad) -> BenchResult:
    histogram = Histogram()
    histogram.record_all([1_000_000] * 10)
    parts = [WorkerResult(timeline={0: histogram}, errors=Counter(), expected=10, load=load)
             for load in loads]
    return BenchResult.merge(parts, scenario="echo", clients=2, rate=None, duration_s=1.0)


def test_the_json_and_the_summary_say_it() -> None:
    result = _result(_load(0.98, lag_ms=2.0), _load(0.70))
    generator = result.to_json()["generator"]
    assert generator["bottleneck"] is True
    assert generator["busy"] == pytest.approx(0.98)
    assert generator["lag_ms"] == pytest.approx(2.0)
    assert generator["suggested_workers"] == 4
    assert [w["busy"] for w in generator["workers"]] == pytest.approx([0.98, 0.70])
    console = Console(record=True, width=200)
    console.print(summary(result))
    assert "the load generator, not the server, was the bottleneck" in console.export_text()


def test_a_result_made_by_hand_has_no_verdict_against_it() -> None:
    result = _result()
    assert result.messages == 0
    assert result.to_json()["generator"]["bottleneck"] is False
