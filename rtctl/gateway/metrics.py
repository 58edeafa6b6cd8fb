"""Prometheus metrics of one gateway, served as text at ``/metrics``.

The hot path only adds to plain integers and bucket lists; the Prometheus
families are built when ``/metrics`` is scraped. ``prometheus_client``'s own
``Counter.inc`` takes a lock and checks its state on every call, which cost a
measurable share of the echo throughput (see ``docs/performance.md``), while
a gateway's counters are only ever touched from its event loop thread.

Each gateway owns its registry, so several gateways in one process (tests,
the TUI) do not mix their numbers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from rtctl.histograms import BucketCounts
from rtctl.profiler.lanes import LANE_COUNTERS, LANE_GAUGES, WAIT_FAMILY
from rtctl.protocol.lanes import LaneStats

__all__ = ["CONTENT_TYPE", "INBOUND_KINDS", "RPC_BUCKETS", "GatewayMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

# RPC latency buckets (seconds): 50 µs to 2.5 s, denser where game calls live.
RPC_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)
_UNKNOWN_METHOD = "<unknown>"  # keeps label cardinality bounded by the router
INBOUND_KINDS = ("call", "notification")  # a request answered -32029, a notification dropped


class GatewayMetrics:
    """The gateway's numbers; attributes are bumped directly by the driver."""

    def __init__(self, known_methods: set[str], connections: Callable[[], int]) -> None:
        self._known = known_methods
        self._connections = connections
        self.messages_in = 0
        self.messages_out = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.connections_opened = 0
        self.connections_closed: Counter[int] = Counter()
        self.refused: Counter[str] = Counter()
        self.resumes: Counter[str] = Counter()  # "resumed", or why a recovery token was not
        self.rpc_errors: Counter[int] = Counter()
        self.calls: dict[str, BucketCounts] = {}
        self.lanes = LaneStats()  # every connection's outbox, summed per lane
        # Over the inbound rate, by kind; both kinds read 0 from the start, as every lane does.
        self.inbound_limited: Counter[str] = Counter(dict.fromkeys(INBOUND_KINDS, 0))
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)  # a Collector: anything with collect()

    def observe_call(self, method: str, seconds: float) -> None:
        histogram = self.calls.get(method)
        if histogram is None:
            label = method if method in self._known else _UNKNOWN_METHOD
            histogram = self.calls.get(label)
            if histogram is None:
                histogram = self.calls[label] = BucketCounts(RPC_BUCKETS)
        histogram.observe(seconds)

    def collect(self) -> Iterator[Metric]:
        """Build the families at scrape time (the Collector protocol)."""
        yield GaugeMetricFamily("rtctl_connections", "Open WebSocket connections",
                                value=self._connections())
        yield CounterMetricFamily("rtctl_connections_opened", "Connections accepted",
                                  value=self.connections_opened)
        yield _labelled("rtctl_connections_closed", "Connections closed, by close code",
                        "code", self.connections_closed)
        yield _labelled("rtctl_upgrades_refused",
                        "Upgrades refused before a WebSocket opened, by reason",
                        "reason", self.refused)
        yield _labelled("rtctl_session_resumes",
                        "Recovery tokens offered at the upgrade, by result (resumed, expired, "
                        "invalid, wrong_user)", "result", self.resumes)
        yield CounterMetricFamily("rtctl_messages_received", "WebSocket messages received",
                                  value=self.messages_in)
        yield CounterMetricFamily("rtctl_messages_sent", "WebSocket messages sent",
                                  value=self.messages_out)
        yield CounterMetricFamily("rtctl_received_bytes", "Payload bytes received",
                                  value=self.bytes_in)
        yield CounterMetricFamily("rtctl_sent_bytes", "Payload bytes sent", value=self.bytes_out)
        yield _labelled("rtctl_rpc_errors", "JSON-RPC error replies, by code", "code",
                        self.rpc_errors)
        family = HistogramMetricFamily(
            "rtctl_rpc_duration_seconds",
            "Time from decoded request to reply ready, by method", labels=["method"])
        for method, histogram in sorted(self.calls.items()):
            family.add_metric([method], histogram.cumulative(), histogram.total)
        yield family
        yield from _lane_families(self.lanes)
        yield _labelled("rtctl_inbound_limited",
                        "Inbound calls over the connection's rate, by kind (a call is answered "
                        "-32029, a notification dropped)", "kind", self.inbound_limited)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _lane_families(lanes: LaneStats) -> Iterator[Metric]:
    """The outboxes' lanes (names in :mod:`rtctl.profiler.lanes`, which reads them back);
    every lane from the start, at zero, so a rate over any window has both ends."""
    for families, kind in ((LANE_GAUGES, GaugeMetricFamily), (LANE_COUNTERS, CounterMetricFamily)):
        for name, field, documentation in families:
            family = kind(name, documentation, labels=["lane"])
            for lane, counters in lanes.items():
                family.add_metric([lane.label], getattr(counters, field))
            yield family
    wait = HistogramMetricFamily(WAIT_FAMILY.name, WAIT_FAMILY.help, labels=["lane"])
    for lane, counters in lanes.items():
        wait.add_metric([lane.label], counters.wait.cumulative(), counters.wait.total)
    yield wait


def _labelled(name: str, documentation: str, label: str,
              values: Counter[int] | Counter[str]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=[label])
    for key, value in sorted(values.items(), key=lambda item: str(item[0])):
        family.add_metric([str(key)], value)
    return family
