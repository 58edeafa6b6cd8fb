"""The failover drill's plan and its figures (the drill itself runs in tests/deploy)."""

from __future__ import annotations

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
