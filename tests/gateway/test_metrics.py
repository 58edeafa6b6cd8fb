"""The RPC histogram's quantiles, and the per-lane outbox families of ``/metrics``."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rtctl.gateway.metrics import GatewayMetrics
from rtctl.histograms import BucketCounts
from rtctl.protocol.lanes import Lane


def test_empty_histogram_has_no_quantile() -> None:
    histogram = BucketCounts((0.001, 0.01))
    assert histogram.count == 0
    assert histogram.quantile(0.5) is None


@pytest.mark.parametrize(
    ("q", "bound"),
    [(0.0, 0.001), (0.25, 0.001), (0.5, 0.001), (0.51, 0.01), (0.75, 0.01), (0.76, float("inf")),
     (1.0, float("inf"))],
)
def test_quantile_is_the_bucket_bound(q: float, bound: float) -> None:
    histogram = BucketCounts((0.001, 0.01))
    for seconds in (0.0005, 0.001, 0.005, 3.0):  # 0.001 sits in its own bucket (le=)
        histogram.observe(seconds)
    assert histogram.count == 4
    assert histogram.quantile(q) == bound


def _samples(metrics: GatewayMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and labels, as a Prometheus server would read it."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(metrics.render().decode())
            for sample in family.samples}


LANE_SAMPLES = ("rtctl_outbox_queued_messages", "rtctl_outbox_queued_bytes",
                "rtctl_outbox_sent_total", "rtctl_outbox_sent_bytes_total",
                "rtctl_outbox_coalesced_total", "rtctl_outbox_dropped_total",
                "rtctl_outbox_wait_seconds_count")


def test_every_lane_and_kind_reads_zero_from_the_start() -> None:
    samples = _samples(GatewayMetrics(set(), lambda: 0))
    for name in LANE_SAMPLES:
        assert {labels: value for (n, labels), value in samples.items() if n == name} == {
            (("lane", lane),): 0.0 for lane in ("control", "state", "events", "chat",
                                                "telemetry")}, name
    assert {labels: value for (n, labels), value in samples.items()
            if n == "rtctl_inbound_limited_total"} == {
        (("kind", "call"),): 0.0, (("kind", "notification"),): 0.0}


def test_lane_counters_are_read_at_scrape_time() -> None:
    metrics = GatewayMetrics(set(), lambda: 0)
    before = _samples(metrics)
    chat, telemetry = metrics.lanes[Lane.CHAT], metrics.lanes[Lane.TELEMETRY]
    chat.depth, chat.depth_bytes, chat.coalesced = 2, 300, 4
    chat.wait.observe(0.003)
    chat.wait.observe(0.2)
    telemetry.sent, telemetry.sent_bytes, telemetry.dropped = 5, 640, 9
    metrics.inbound_limited["notification"] += 3
    changed = {key: value for key, value in _samples(metrics).items() if before[key] != value}
    assert changed == {
        ("rtctl_outbox_queued_messages", (("lane", "chat"),)): 2.0,
        ("rtctl_outbox_queued_bytes", (("lane", "chat"),)): 300.0,
        ("rtctl_outbox_coalesced_total", (("lane", "chat"),)): 4.0,
        ("rtctl_outbox_sent_total", (("lane", "telemetry"),)): 5.0,
        ("rtctl_outbox_sent_bytes_total", (("lane", "telemetry"),)): 640.0,
        ("rtctl_outbox_dropped_total", (("lane", "telemetry"),)): 9.0,
        ("rtctl_inbound_limited_total", (("kind", "notification"),)): 3.0,
        # 0.003 s is counted from le=0.005 up, 0.2 s from le=0.25 up
        **{("rtctl_outbox_wait_seconds_bucket", (("lane", "chat"), ("le", le))): 1.0
           for le in ("0.005", "0.01", "0.025", "0.05", "0.1")},
        **{("rtctl_outbox_wait_seconds_bucket", (("lane", "chat"), ("le", le))): 2.0
           for le in ("0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "+Inf")},
        ("rtctl_outbox_wait_seconds_count", (("lane", "chat"),)): 2.0,
        ("rtctl_outbox_wait_seconds_sum", (("lane", "chat"),)): pytest.approx(0.203),
    }
