"""The failover drill's plan and its figures, and how benchmarks/failover.py sums them up
(the drill itself runs in tests/deploy)."""

from __future__ import annotations

import runpy
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from rtctl.bench.failover import Drill, DrillResult, Fault
from rtctl.exceptions import ConfigError


@pytest.mark.parametrize("wrong", [{"room_size": 1}, {"clients": 5, "room_size": 10},
                                   {"rate": 0}, {"timeout": -1}])
def test_a_drill_that_cannot_run_is_refused(wrong: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        Drill(fault=Fault.KILL, **wrong)


def test_the_summary_gives_the_recovery_times_in_ms() -> None:
    result = DrillResult(Drill(fault=Fault.DRAIN, clients=20))
    result.recovery.record_all([400_000_000, 500_000_000, 2_000_000_000])  # ns
    summary = result.summary()
    assert summary["fault"] == "drain"
    assert summary["recovery_ms"]["max"] == 2000.0
    assert summary["recovery_ms"]["p50"] == pytest.approx(500.0, rel=1e-3)  # HDR buckets
    assert DrillResult(Drill(fault=Fault.NATS)).summary()["recovery_ms"]["p50"] is None


def _benchmark() -> dict[str, Any]:
    """benchmarks/ is not a package: run benchmarks/failover.py's definitions (not main)."""
    return runpy.run_path(str(Path(__file__).resolve().parents[2] / "benchmarks" /
                              "failover.py"), run_name="failover_benchmark")


def _run(fault: Fault, **figures: Any) -> dict[str, Any]:
    result = DrillResult(Drill(fault=fault, clients=20))
    for name, value in figures.items():
        setattr(result, name, value)
    return result.summary()


def test_the_benchmark_names_medians_and_totals() -> None:
    benchmark = _benchmark()
    runs = [_run(Fault.REDIS, resets=Counter(epoch_changed=18), refused=n) for n in (1, 2, 6)]
    for run, expected in zip(runs, (100, 110, 120), strict=True):
        run["expected"] = expected
    summary = benchmark["summarise"](20, Fault.REDIS, runs)
    assert (summary["resets_median"], summary["expected_total"], summary["refused_total"]) == (
        18, 330, 9)
    assert summary["timed_out_runs"] == 0
    assert not any(key in summary for key in ("resets", "expected", "dropped", "timed_out"))


@pytest.mark.parametrize(("run", "said"), [
    (_run(Fault.KILL, dropped=3, resumed=3), []),
    (_run(Fault.REDIS, resets=Counter(epoch_changed=18)), []),  # a Redis restart resets
    (_run(Fault.KILL, dropped=3, resumed=2), ["2 of 3 dropped players resumed"]),
    (_run(Fault.DRAIN, dropped=3, resumed=3, resets=Counter(too_old=1)),
     ["resets {'too_old': 1}"]),
    (_run(Fault.NATS, resent=2), ["2 resent"]),
    (_run(Fault.NATS, timed_out="every member caught up"),
     ["timed out waiting for every member caught up"]),
])
def test_the_benchmark_fails_a_run_that_went_wrong(run: dict[str, Any], said: list[str]
                                                    ) -> None:
    assert _benchmark()["wrong"](run) == said
