"""``rtctl top``'s model: two ``/metrics`` scrapes in, the gateway's key figures out.

:func:`parse_scrape` reads one Prometheus text exposition (prometheus_client's
parser) into a :class:`Scrape`; :func:`top_view` turns two scrapes and the
seconds between them into a :class:`TopView`: gauges as at the second scrape,
counters as per-second rates, histograms as quantiles of what they counted in
between. Rates follow Prometheus' ``rate()``: each series on its own, and a
series that went down was reset (the gateway restarted) and counts from zero,
so no rate is ever negative. Quantiles interpolate linearly inside the bucket,
as ``histogram_quantile()`` does (:meth:`~rtctl.histograms.BucketCounts.interpolated`).
A family the scrape does not have (an older gateway, a memory-only node's backends,
the simulator's ``/metrics``) is ``None``, shown as "—", while a family with nothing in
it is an empty list or dict, so a script tells "not configured here" from "quiet".
:func:`view_json` gives a view to scripts,
:func:`rtctl.observability.top_render.top_table` to the terminal. No I/O here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from prometheus_client.parser import text_string_to_metric_families

from rtctl.client.endpoint import http_url
from rtctl.exceptions import ConfigError, RtctlError
from rtctl.histograms import BucketCounts
from rtctl.profiler.lanes import (
    buckets_between,
    from_cumulative,
    increase,
    lanes_between,
    parse_lanes,
)
from rtctl.protocol.lanes import LaneStats

__all__ = ["METRICS_PATH", "TOP_METHODS", "BackendRow", "LaneRow", "MethodRow", "NotMetrics",
           "Scrape", "TopView", "metrics_url", "parse_scrape", "top_view", "view_json"]

METRICS_PATH = "/metrics"
TOP_METHODS = 10  # methods shown, the busiest first

Labels = frozenset[tuple[str, str]]


class NotMetrics(RtctlError):
    """What the URL answered is not a Prometheus text exposition."""


def metrics_url(url: str) -> str:
    """The ``/metrics`` URL of what a developer pasted: the gateway's base
    (``http://127.0.0.1:8765``), its ``/metrics`` URL, or its WebSocket endpoint
    (``ws://127.0.0.1:8765/ws``, whose HTTP routes share its port)."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme in ("ws", "wss"):
        return http_url(url, METRICS_PATH)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"URL {url!r} is not a gateway's (try http://127.0.0.1:8765 "
                          "or ws://127.0.0.1:8765)")
    path = parts.path if parts.path not in ("", "/") else METRICS_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


@dataclass(frozen=True, slots=True)
class Scrape:
    """One read of ``/metrics``: the families it names, its samples by sample name."""

    families: frozenset[str]  # as exposed: counters with their _total
    samples: Mapping[str, Mapping[Labels, float]]
    lanes: LaneStats

    def has(self, name: str) -> bool:
        return name in self.families

    def series(self, name: str) -> Mapping[Labels, float]:
        return self.samples.get(name, {})


def parse_scrape(text: str) -> Scrape:
    """A :class:`Scrape` of ``text``; :class:`NotMetrics` if it is not an exposition."""
    families: set[str] = set()
    samples: dict[str, dict[Labels, float]] = defaultdict(dict)
    try:
        for family in text_string_to_metric_families(text):
            families.add(f"{family.name}_total" if family.type == "counter" else family.name)
            for sample in family.samples:
                samples[sample.name][frozenset(sample.labels.items())] = sample.value
    except ValueError as exc:
        raise NotMetrics(f"not a Prometheus text exposition ({exc})") from None
    if not families:
        raise NotMetrics("no metric families in it")
    return Scrape(frozenset(families), dict(samples), parse_lanes(text))


@dataclass(frozen=True, slots=True)
class MethodRow:
    method: str
    calls_per_s: float
    p50_s: float | None
    p99_s: float | None


@dataclass(frozen=True, slots=True)
class LaneRow:
    lane: str
    depth: int
    drops_per_s: float


@dataclass(frozen=True, slots=True)
class BackendRow:
    backend: str
    up: bool | None
    ops_per_s: float | None
    errors_per_s: float | None
    p99_s: float | None


@dataclass(frozen=True, slots=True)
class TopView:
    """What ``rtctl top`` shows; ``None`` where the scrape lacks the family."""

    seconds: float
    build: dict[str, str] | None
    ready: bool | None
    draining: bool | None
    connections: float | None
    opened_per_s: float | None
    closes_per_s: dict[str, float] | None  # by close code
    upgrades_per_s: dict[str, float] | None  # by outcome
    messages_in_per_s: float | None
    messages_out_per_s: float | None
    bytes_in_per_s: float | None
    bytes_out_per_s: float | None
    rpc_calls_per_s: float | None
    rpc_error_ratio: float | None  # calls answered with an error, of all calls (None: no calls)
    methods: list[MethodRow] | None
    event_loop_lag_p99_s: float | None
    lanes: list[LaneRow] | None
    backends: list[BackendRow] | None
    sessions: dict[str, float] | None  # by state
    online_users: float | None
    rooms: float | None
    room_members: float | None
    heartbeat_age_s: float | None
    node_ttl_s: float | None
    cpu_percent: float | None
    rss_bytes: float | None


class _Window:
    """Two scrapes ``seconds`` apart, read family by family."""

    def __init__(self, before: Scrape, after: Scrape, seconds: float) -> None:
        self.before, self.after, self.seconds = before, after, seconds

    def gauge(self, name: str) -> float | None:
        return sum(self.after.series(name).values()) if self.after.has(name) else None

    def gauges_by(self, name: str, label: str) -> dict[str, float] | None:
        if not self.after.has(name):
            return None
        return {dict(labels).get(label, ""): value
                for labels, value in sorted(self.after.series(name).items(),
                                              key=lambda item: sorted(item[0]))}

    def increases(self, name: str) -> Iterator[tuple[Labels, float]]:
        """Each series' increase (a new series counts from zero, as if it were reset)."""
        start = self.before.series(name)
        for labels, value in self.after.series(name).items():
            yield labels, increase(start.get(labels, 0.0), value)

    def rate(self, name: str) -> float | None:
        if not self.after.has(name):
            return None
        return sum(value for _, value in self.increases(name)) / self.seconds

    def rates_by(self, name: str, label: str) -> dict[str, float] | None:
        if not self.after.has(name):
            return None
        rates: dict[str, float] = defaultdict(float)
        for labels, value in self.increases(name):
            rates[dict(labels).get(label, "")] += value / self.seconds
        return dict(sorted(rates.items()))

    def histograms(self, name: str, label: str | None = None) -> dict[str, BucketCounts]:
        """What histogram ``name`` counted in the window, its series merged by ``label``
        (all of them under "" without one): each series' increase first, as ``rate()``."""
        start, merged = _histograms(self.before, name), dict[str, BucketCounts]()
        for labels, end in _histograms(self.after, name).items():
            window = buckets_between(start.get(labels, BucketCounts(end.bounds)), end)
            key = dict(labels).get(label, "") if label else ""
            if (into := merged.setdefault(key, window)) is not window:
                into.add(window)
        return merged


def _histograms(scrape: Scrape, name: str) -> dict[Labels, BucketCounts]:
    """Each series of histogram ``name`` (its labels but ``le``) as bucket counts."""
    cumulative: dict[Labels, list[tuple[float, int]]] = defaultdict(list)
    for labels, value in scrape.series(f"{name}_bucket").items():
        bound = dict(labels)["le"]
        cumulative[frozenset(item for item in labels if item[0] != "le")].append(
            (float(bound), int(value)))
    sums = scrape.series(f"{name}_sum")
    return {labels: from_cumulative(buckets, sums.get(labels, 0.0))
            for labels, buckets in cumulative.items()}


def _flag(value: float | None) -> bool | None:
    return None if value is None else value >= 1


def _methods(window: _Window) -> list[MethodRow] | None:
    if not window.after.has("rtctl_rpc_duration_seconds"):
        return None
    rows = [MethodRow(method, histogram.count / window.seconds,
                      histogram.interpolated(0.5), histogram.interpolated(0.99))
            for method, histogram in window.histograms("rtctl_rpc_duration_seconds",
                                                        "method").items()]
    rows.sort(key=lambda row: (-row.calls_per_s, row.method))
    return rows[:TOP_METHODS]


def _backends(window: _Window) -> list[BackendRow] | None:
    if not window.after.has("rtctl_backend_up"):  # exposed for each configured backend
        return None
    up = {dict(labels)["backend"]: value
          for labels, value in window.after.series("rtctl_backend_up").items()}
    operations = window.histograms("rtctl_backend_operation_duration_seconds", "backend")
    errors = window.rates_by("rtctl_backend_errors_total", "backend") or {}
    rows = []
    for backend in sorted(up.keys() | operations.keys()):
        merged = operations.get(backend)
        rows.append(BackendRow(
            backend, _flag(up.get(backend)),
            None if merged is None else merged.count / window.seconds,
            errors.get(backend), None if merged is None else merged.interpolated(0.99)))
    return rows


def _error_ratio(calls: dict[str, float] | None) -> float | None:
    """The share of calls answered with an error; None without the family or any call (0/0)."""
    if calls is None or not (total := sum(calls.values())):
        return None
    return 1 - calls.get("ok", 0.0) / total


def _restarted(before: Scrape, after: Scrape) -> bool:
    return any(before.series(name) != after.series(name)
               for name in ("process_start_time_seconds", "rtctl_build_info"))


def top_view(before: Scrape, after: Scrape, seconds: float) -> TopView:
    """The view of the ``seconds`` between two scrapes of one gateway (``seconds`` > 0).

    A gateway that restarted in between counts from zero: each counter's drop would tell
    only for a counter the new process has not yet pushed past the old one's value, so the
    process' start time (and its node id) decide."""
    if _restarted(before, after):
        before = Scrape(before.families, {}, LaneStats())
    w = _Window(before, after, seconds)
    build = next(iter(after.series("rtctl_build_info")), None)
    lag = w.histograms("rtctl_event_loop_lag_seconds").get("")
    cpu = w.rate("process_cpu_seconds_total")
    lanes = lanes_between(before.lanes, after.lanes)
    return TopView(
        seconds=seconds,
        build=None if build is None else dict(sorted(build)),
        ready=_flag(w.gauge("rtctl_ready")),
        draining=_flag(w.gauge("rtctl_draining")),
        connections=w.gauge("rtctl_connections"),
        opened_per_s=w.rate("rtctl_connections_opened_total"),
        closes_per_s=w.rates_by("rtctl_connections_closed_total", "code"),
        upgrades_per_s=w.rates_by("rtctl_upgrades_total", "outcome"),
        messages_in_per_s=w.rate("rtctl_messages_received_total"),
        messages_out_per_s=w.rate("rtctl_messages_sent_total"),
        bytes_in_per_s=w.rate("rtctl_received_bytes_total"),
        bytes_out_per_s=w.rate("rtctl_sent_bytes_total"),
        rpc_calls_per_s=w.rate("rtctl_rpc_calls_total"),
        rpc_error_ratio=_error_ratio(w.rates_by("rtctl_rpc_calls_total", "code")),
        methods=_methods(w),
        event_loop_lag_p99_s=None if lag is None else lag.interpolated(0.99),
        lanes=[LaneRow(lane.label, counters.depth, counters.dropped / seconds)
               for lane, counters in sorted(lanes.items())] if after.has(
            "rtctl_outbox_queued_messages") else None,
        backends=_backends(w),
        sessions=w.gauges_by("rtctl_sessions", "state"),
        online_users=w.gauge("rtctl_presence_online_users"),
        rooms=w.gauge("rtctl_rooms"),
        room_members=w.gauge("rtctl_room_members"),
        heartbeat_age_s=w.gauge("rtctl_node_heartbeat_age_seconds"),
        node_ttl_s=w.gauge("rtctl_node_ttl_seconds"),
        cpu_percent=None if cpu is None else 100 * cpu,
        rss_bytes=w.gauge("process_resident_memory_bytes"),
    )


def view_json(view: TopView) -> dict[str, Any]:
    """The view as plain JSON values (``null`` where a family is missing)."""
    return asdict(view)

