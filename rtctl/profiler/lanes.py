"""The outboxes' lanes as ``/metrics`` shows them, read back and shown one row per lane.

A gateway sums every connection's outbox lanes in one
:class:`~rtctl.protocol.lanes.LaneStats` and exposes it as the families named
here; :mod:`rtctl.gateway.metrics` builds them from this table, so the names
the gateway writes and the ones read back cannot drift apart.

``rtctl profile`` and the TUI's profiler read ``GET /metrics`` (no token
needed) at both ends of a window and parse each reading
(:func:`parse_lanes`) into a ``LaneStats``; :func:`lanes_between` turns two
readings into the window's (what waits now, and what happened in between: a
counter that went down means the gateway restarted, and counts from zero, as
Prometheus' ``increase()`` reads it); :func:`lane_rows` and :func:`lane_table`
show it. No I/O here.
"""

from __future__ import annotations

from typing import NamedTuple

from prometheus_client.parser import text_string_to_metric_families
from rich.table import Table

from rtctl.histograms import BucketCounts
from rtctl.protocol.lanes import Lane, LaneCounters, LaneStats

__all__ = [
    "LANE_COLUMNS",
    "LANE_COUNTERS",
    "LANE_GAUGES",
    "WAIT_FAMILY",
    "LaneFamily",
    "buckets_between",
    "from_cumulative",
    "increase",
    "lane_rows",
    "lane_table",
    "lane_title",
    "lanes_between",
    "parse_lanes",
    "quantile_text",
]


class LaneFamily(NamedTuple):
    """One per-lane metric family: its name, the :class:`LaneCounters` field it shows, its help."""

    name: str
    field: str
    help: str


LANE_GAUGES = (
    LaneFamily("rtctl_outbox_queued_messages", "depth",
               "Messages waiting in the outboxes, by lane"),
    LaneFamily("rtctl_outbox_queued_bytes", "depth_bytes",
               "Bytes waiting in the outboxes, by lane"),
)
LANE_COUNTERS = (  # prometheus_client adds _total to each sample's name
    LaneFamily("rtctl_outbox_sent", "sent", "Queued messages taken out to be written, by lane"),
    LaneFamily("rtctl_outbox_sent_bytes", "sent_bytes",
               "Bytes of queued messages taken out to be written, by lane"),
    LaneFamily("rtctl_outbox_coalesced", "coalesced",
               "Waiting messages replaced by a newer one with the same key, by lane"),
    LaneFamily("rtctl_outbox_dropped", "dropped",
               "Messages dropped unsent (droppable ones shed under pressure), by lane"),
)
WAIT_FAMILY = LaneFamily("rtctl_outbox_wait_seconds", "wait",
                         "Time from a message's put into its outbox to its write, by lane")

# What waits now (messages, bytes), then the window: waits, bytes/s written, coalesced, dropped.
LANE_COLUMNS = ("lane", "queued", "bytes", "p50 wait", "p99 wait", "B/s out", "coalesced",
                "dropped")

_SCALARS = {  # by sample name
    **{family.name: family.field for family in LANE_GAUGES},
    **{f"{family.name}_total": family.field for family in LANE_COUNTERS},
}
_LANES = {lane.label: lane for lane in Lane}


def parse_lanes(text: str) -> LaneStats:
    """The lane samples of one ``/metrics`` text; other samples, and lanes this version
    does not know, are left out. Samples are read by their own names, whatever family
    the parser grouped them in."""
    stats = LaneStats()
    buckets: dict[Lane, list[tuple[float, int]]] = {}
    sums: dict[Lane, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            lane = _LANES.get(sample.labels.get("lane", ""))
            if lane is None:
                continue
            if (field := _SCALARS.get(sample.name)) is not None:
                setattr(stats[lane], field, int(sample.value))
            elif sample.name == f"{WAIT_FAMILY.name}_bucket":
                buckets.setdefault(lane, []).append((float(sample.labels["le"]),
                                                     int(sample.value)))
            elif sample.name == f"{WAIT_FAMILY.name}_sum":
                sums[lane] = sample.value
    for lane, cumulative in buckets.items():
        stats[lane].wait = from_cumulative(cumulative, sums.get(lane, 0.0))
    return stats


def from_cumulative(cumulative: list[tuple[float, int]], total: float) -> BucketCounts:
    """Bucket counts back from Prometheus' cumulative ``le`` buckets (+Inf sorts last)."""
    cumulative.sort()
    histogram = BucketCounts(tuple(bound for bound, _ in cumulative[:-1]))
    below = 0
    for index, (_, running) in enumerate(cumulative):
        histogram.counts[index] = running - below
        below = running
    histogram.total = total
    return histogram


def increase(before: float, after: float) -> float:
    """A counter's increase; one that went down was reset (restarted), and counts from zero."""
    return after - before if after >= before else after


def lanes_between(before: LaneStats, after: LaneStats) -> LaneStats:
    """The window from ``before`` to ``after``: depths as at its end, counters as increases."""
    window = LaneStats()
    for lane, end in after.items():
        start, counters = before[lane], window[lane]
        counters.depth, counters.depth_bytes = end.depth, end.depth_bytes
        for family in LANE_COUNTERS:
            setattr(counters, family.field,
                    int(increase(getattr(start, family.field), getattr(end, family.field))))
        counters.wait = buckets_between(start.wait, end.wait)
    return window


def buckets_between(start: BucketCounts, end: BucketCounts) -> BucketCounts:
    """What a histogram counted from ``start`` to ``end`` (two reads of one series)."""
    if start.bounds != end.bounds or any(
            a > b for a, b in zip(start.counts, end.counts, strict=True)):
        return end  # another gateway, or a restarted one: everything since its start
    histogram = BucketCounts(end.bounds)
    histogram.counts = [b - a for a, b in zip(start.counts, end.counts, strict=True)]
    histogram.total = end.total - start.total
    return histogram


def quantile_text(histogram: BucketCounts, q: float) -> str:
    """Quantile ``q`` as the bucket bound it falls under (``≤ 5 ms``), as Prometheus'
    ``histogram_quantile`` would at best say; past the last bound, ``> `` it; a dash when empty."""
    bound = histogram.quantile(q)
    if bound is None:
        return "–"
    if bound == float("inf"):
        return f"> {_seconds(histogram.bounds[-1])}"
    return f"≤ {_seconds(bound)}"


def _seconds(value: float) -> str:
    return f"{value * 1000:g} ms" if value < 1 else f"{value:g} s"


def lane_rows(window: LaneStats, seconds: float) -> list[tuple[str, ...]]:
    """One row per lane, highest priority first, in :data:`LANE_COLUMNS`' order: what waits
    now, then the window of ``seconds`` (the waits of the messages written in it, their
    bytes per second, the counts)."""
    return [_row(lane, counters, seconds) for lane, counters in sorted(window.items())]


def _row(lane: Lane, counters: LaneCounters, seconds: float) -> tuple[str, ...]:
    rate = counters.sent_bytes / seconds if seconds > 0 else 0.0
    return (lane.label, f"{counters.depth:,}", f"{counters.depth_bytes:,}",
            quantile_text(counters.wait, 0.5), quantile_text(counters.wait, 0.99),
            f"{rate:,.0f}", f"{counters.coalesced:,}",
            f"{counters.dropped:,}")


def lane_title(seconds: float) -> str:
    """What a lane table shows, over a window of ``seconds``."""
    return f"outbox lanes (all connections): queued now, the rest over the last {seconds:.1f}s"


def lane_table(window: LaneStats, seconds: float) -> Table:
    """:func:`lane_rows` as a rich table, for the terminal."""
    # No rules: eight columns of figures, even large ones, fit an 80-column terminal.
    table = Table(title=lane_title(seconds), title_justify="left", box=None, pad_edge=False)
    for name in LANE_COLUMNS:
        table.add_column(name, justify="left" if name == "lane" else "right", no_wrap=True)
    for row in lane_rows(window, seconds):
        table.add_row(*row)
    return table
