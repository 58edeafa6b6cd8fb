"""The outbox lanes read back from ``/metrics``: parsed, windowed, shown; and over HTTP."""

from __future__ import annotations

import asyncio

from rich.console import Console

from rtctl.gateway.metrics import GatewayMetrics
from rtctl.gateway.server import Gateway
from rtctl.histograms import BucketCounts
from rtctl.profiler.lanes import (
    LANE_COLUMNS,
    lane_rows,
    lane_table,
    lanes_between,
    parse_lanes,
    quantile_text,
)
from rtctl.profiler.report import fetch_lanes
from rtctl.protocol.lanes import WAIT_BUCKETS, Lane, LaneStats


def _metrics() -> GatewayMetrics:
    return GatewayMetrics(set(), lambda: 0)


def _fields(stats: LaneStats) -> dict[Lane, tuple[object, ...]]:
    return {lane: (c.depth, c.depth_bytes, c.sent, c.sent_bytes, c.coalesced, c.dropped,
                   c.wait.bounds, c.wait.counts, c.wait.total) for lane, c in stats.items()}


def test_a_scrape_parses_back_into_the_lanes_it_was_made_of() -> None:
    metrics = _metrics()
    for value, lane in enumerate(Lane, start=1):
        counters = metrics.lanes[lane]
        counters.depth, counters.depth_bytes = value, 100 * value
        counters.sent, counters.sent_bytes = 10 * value, 1000 * value
        counters.coalesced, counters.dropped = value + 1, value + 2
        for seconds in (0.0002 * value, 0.3 * value, 20.0):  # 20 s is past the last bound
            counters.wait.observe(seconds)
    parsed = parse_lanes(metrics.render().decode())
    assert _fields(parsed) == _fields(metrics.lanes)
    assert parsed[Lane.EVENTS].wait.bounds == WAIT_BUCKETS


def test_other_families_and_unknown_lanes_are_left_out() -> None:
    text = ('# TYPE rtctl_outbox_dropped counter\n'
            'rtctl_outbox_dropped_total{lane="events"} 4\n'
            'rtctl_outbox_dropped_total{lane="bulk"} 9\n'
            '# TYPE rtctl_messages_sent counter\n'
            'rtctl_messages_sent_total 7\n')
    parsed = parse_lanes(text)
    assert {lane: c.dropped for lane, c in parsed.items()} == {
        Lane.CONTROL: 0, Lane.STATE: 0, Lane.EVENTS: 4, Lane.CHAT: 0, Lane.TELEMETRY: 0}
    assert parsed[Lane.EVENTS].sent == 0


def test_a_window_keeps_the_depth_now_and_counts_what_happened_in_it() -> None:
    metrics = _metrics()
    events = metrics.lanes[Lane.EVENTS]
    events.depth, events.sent, events.sent_bytes, events.coalesced = 50, 100, 8000, 3
    for _ in range(100):
        events.wait.observe(2.0)  # before the window: slow
    before = parse_lanes(metrics.render().decode())
    events.depth, events.sent, events.sent_bytes, events.coalesced = 2, 110, 8800, 5
    for _ in range(10):
        events.wait.observe(0.0008)  # in the window: fast
    window = lanes_between(before, parse_lanes(metrics.render().decode()))
    counters = window[Lane.EVENTS]
    assert (counters.depth, counters.sent, counters.sent_bytes, counters.coalesced) == (
        2, 10, 800, 2)
    assert counters.wait.count == 10
    assert counters.wait.quantile(0.99) == 0.001  # the slow waits before it are not in it
    assert events.wait.quantile(0.99) == 2.5
    assert window[Lane.CHAT].wait.count == 0


def test_a_counter_that_went_down_is_a_restart_counted_from_zero() -> None:
    before, after = LaneStats(), LaneStats()
    before[Lane.CHAT].dropped, after[Lane.CHAT].dropped = 40, 6
    before[Lane.CHAT].wait.observe(0.01)
    before[Lane.CHAT].wait.observe(0.01)
    after[Lane.CHAT].wait.observe(0.3)
    window = lanes_between(before, after)
    assert window[Lane.CHAT].dropped == 6
    assert window[Lane.CHAT].wait.counts == after[Lane.CHAT].wait.counts


def test_quantiles_read_as_their_bucket_bound() -> None:
    histogram = BucketCounts((0.001, 0.01))
    assert quantile_text(histogram, 0.5) == "–"
    histogram.observe(0.0004)
    histogram.observe(0.5)
    assert quantile_text(histogram, 0.5) == "≤ 1 ms"
    assert quantile_text(histogram, 0.99) == "> 10 ms"
    slow = BucketCounts((0.5, 2.5))  # a second and more reads in seconds
    slow.observe(1.0)
    slow.observe(4.0)
    assert (quantile_text(slow, 0.5), quantile_text(slow, 0.99)) == ("≤ 2.5 s", "> 2.5 s")


def test_rows_per_lane_in_priority_order_with_bytes_per_second() -> None:
    window = LaneStats()
    telemetry = window[Lane.TELEMETRY]
    telemetry.depth, telemetry.depth_bytes = 1200, 65_536
    telemetry.sent, telemetry.sent_bytes, telemetry.dropped = 40, 12_000, 300
    telemetry.wait.observe(0.004)
    rows = lane_rows(window, 4.0)
    assert [row[0] for row in rows] == ["control", "state", "events", "chat", "telemetry"]
    assert dict(zip(LANE_COLUMNS, rows[-1], strict=True)) == {
        "lane": "telemetry", "queued": "1,200", "bytes": "65,536", "p50 wait": "≤ 5 ms",
        "p99 wait": "≤ 5 ms", "B/s out": "3,000", "coalesced": "0", "dropped": "300"}
    assert rows[0][1:] == ("0", "0", "–", "–", "0", "0", "0")
    console = Console(record=True, width=120)
    console.print(lane_table(window, 4.0))
    assert "over the last 4.0s" in console.export_text()


async def test_fetch_lanes_reads_a_live_gateway(gateway: Gateway) -> None:
    chat = gateway.metrics.lanes[Lane.CHAT]
    chat.depth, chat.coalesced = 3, 17
    chat.wait.observe(0.02)
    lanes = await asyncio.to_thread(fetch_lanes, gateway.url)
    assert _fields(lanes) == _fields(gateway.metrics.lanes)
    assert lanes[Lane.CHAT].coalesced == 17
