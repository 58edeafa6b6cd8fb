"""The proxy's ``/metrics``: every drop counter exposed, at zero, before the first drop."""

from __future__ import annotations

import random

from prometheus_client.parser import text_string_to_metric_families

from simulator.link import Link, Outcome
from simulator.metrics import DIRECTIONS, DROP_REASONS, ProxyMetrics
from simulator.spec import DirectionSpec


def _dropped(metrics: ProxyMetrics) -> dict[tuple[str, str], float]:
    [family] = [family for family in text_string_to_metric_families(metrics.render().decode())
                if family.name == "rtctl_sim_dropped"]
    return {(sample.labels["direction"], sample.labels["reason"]): sample.value
            for sample in family.samples if sample.name == "rtctl_sim_dropped_total"}


def test_every_direction_and_reason_is_exposed_at_zero_before_the_first_drop() -> None:
    assert _dropped(ProxyMetrics()) == {
        (direction, reason): 0.0 for direction in DIRECTIONS for reason in DROP_REASONS}


def test_a_drop_counts_on_top_of_the_zeros() -> None:
    metrics = ProxyMetrics()
    metrics.record("down", 10, Outcome(sent_at=0.0, deliveries=(), dropped="outage"))
    dropped = _dropped(metrics)
    assert dropped.pop(("down", "outage")) == 1.0
    assert set(dropped.values()) == {0.0}


def test_the_reasons_are_those_a_link_drops_for() -> None:
    def reasons(spec: DirectionSpec, blackholes: list[tuple[float, float]]) -> set[str]:
        link = Link(rng=random.Random(1))
        link.configure(spec, blackholes)
        return {reason for at in range(10) if (reason := link.send(1000, at / 1000).dropped)}

    seen = [
        reasons(DirectionSpec(loss=1.0), []),
        # 8 kbit/s with room for one message waiting: back-to-back messages overflow it.
        reasons(DirectionSpec(bandwidth=8000, queue=1000), []),
        reasons(DirectionSpec(), [(0.0, 1.0)]),
    ]
    assert all(len(drops) == 1 for drops in seen)  # each setting drops for its one reason
    assert set().union(*seen) == set(DROP_REASONS)
