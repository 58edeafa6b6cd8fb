"""Prometheus metrics of one gateway, served as text at ``/metrics``.

The hot path only adds to plain integers and bucket lists; the Prometheus
families are built when ``/metrics`` is scraped. ``prometheus_client``'s own
``Counter.inc`` takes a lock and checks its state on every call, which cost a
measurable share of the echo throughput (see ``docs/performance.md``), while
a gateway's counters are only ever touched from its event loop thread.

Each gateway owns its registry, so several gateways in one process (tests,
the TUI) do not mix their numbers. Every family is there from start-up, before
its first sample, and a labelled counter whose values are known in advance is
at 0 from the start, so a ``rate()`` over any window has both ends. Label
values stay bounded whatever clients send (Prometheus naming: "do not use
labels to store dimensions with high cardinality"): a method the router does
not know is ``<unknown>``, a close code outside :class:`CloseCode` is ``other``,
and no label ever holds a user, connection, room or session id.

Services add their own families through :meth:`GatewayMetrics.add_collector`
(:meth:`rtctl.host.Host.add_metrics`); they are built at every scrape too.
The registry also holds ``prometheus_client``'s ``ProcessCollector``
(``process_cpu_seconds_total``, ``process_resident_memory_bytes``, ...).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Container, Iterator
from importlib.metadata import version
from typing import Any, get_args

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from rtctl.backends.metrics import labelled
from rtctl.exceptions import RefusalReason, TokenReason
from rtctl.gateway.loop_lag import LagMeter
from rtctl.gateway.recovery import ResumeError
from rtctl.histograms import BucketCounts
from rtctl.host import MetricsCollector
from rtctl.profiler.lanes import LANE_COUNTERS, LANE_GAUGES, WAIT_FAMILY
from rtctl.protocol.codes import CloseCode, ErrorCode
from rtctl.protocol.lanes import LaneStats
from rtctl.router import Reply

__all__ = [
    "CONTENT_TYPE",
    "INBOUND_KINDS",
    "OTHER_CLOSE_CODE",
    "REFUSAL_REASONS",
    "RESUME_RESULTS",
    "RPC_BUCKETS",
    "UPGRADE_OUTCOMES",
    "GatewayMetrics",
]

CONTENT_TYPE = CONTENT_TYPE_LATEST

# RPC latency buckets (seconds): 50 µs to 2.5 s, denser where game calls live.
RPC_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)
_UNKNOWN_METHOD = "<unknown>"  # keeps label cardinality bounded by the router
INBOUND_KINDS = ("call", "notification")  # a request answered -32029, a notification dropped
UPGRADE_OUTCOMES = ("401", "429", "503")  # at 0 from the start; other statuses as seen
OTHER_CLOSE_CODE = "other"  # a close code a client chose (3000-4999, RFC 6455 §7.4.2)
_CLOSE_CODES = frozenset(CloseCode)
_CLOSE_LABELS = (*(str(code.value) for code in CloseCode), OTHER_CLOSE_CODE)
logger = logging.getLogger("rtctl.gateway.metrics")

RESUME_RESULTS = ("resumed", *get_args(ResumeError))
# Why an upgrade (or /tap, /profile) is refused: every word reads 0 from the start.
REFUSAL_REASONS = (*get_args(TokenReason), *get_args(RefusalReason))
_RATE_LIMITED = str(ErrorCode.RATE_LIMITED.value)
# Codes that read 0 from the start, so rate() sees their first one (a new series' first
# sample is no rise): for every method called, the server's own failures (the error-budget
# alerts) and bad params; for <unknown>, method not found.
_ZERO_CODES = tuple(str(code.value) for code in (
    ErrorCode.INTERNAL_ERROR, ErrorCode.BACKEND_UNAVAILABLE, ErrorCode.INVALID_PARAMS))
_UNKNOWN_CODE = str(ErrorCode.METHOD_NOT_FOUND.value)
_VERSION = version("rtctl")  # the installed distribution's (rtctl.__version__ would be a cycle)


class GatewayMetrics:
    """The gateway's numbers; attributes are bumped directly by the driver.

    ``known_methods`` is read only for a method name not seen before (a
    :class:`~rtctl.router.Router` will do: methods a game adds later count
    under their own name); ``ready`` and ``draining`` are read at scrape time.
    """

    def __init__(self, known_methods: Container[str], connections: Callable[[], int], *,
                 ready: Callable[[], bool] = lambda: False,
                 draining: Callable[[], bool] = lambda: False,
                 transport: str = "", node: str = "") -> None:
        self._known = known_methods
        self._connections = connections
        self._ready = ready
        self._draining = draining
        self._build = (_VERSION, transport, node)
        self.messages_in = 0
        self.messages_out = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.connections_opened = 0
        self.connections_closed: Counter[int] = Counter()
        # Refused upgrades by HTTP status; "ok" is connections_opened: a WebSocket that opened,
        # not a request the gateway let through and the library or a limit then refused.
        self.upgrades: Counter[str] = Counter(dict.fromkeys(UPGRADE_OUTCOMES, 0))
        self.refused: Counter[str] = Counter(dict.fromkeys(REFUSAL_REASONS, 0))
        # "resumed", or why a recovery token was not; every result reads 0 from the start
        self.resumes: Counter[str] = Counter(dict.fromkeys(RESUME_RESULTS, 0))
        self.rpc_errors: Counter[int] = Counter(dict.fromkeys(ErrorCode, 0))  # rtctl's own codes
        self.calls: dict[str, BucketCounts] = {}  # by method label
        # rtctl_rpc_calls_total without a count per call: "ok" is the histogram's count less
        # these (by method label and code), and calls refused over the inbound rate.
        self.call_errors: Counter[tuple[str, int]] = Counter()
        self.calls_limited: Counter[str] = Counter()
        self.loop_lag = LagMeter()
        self.lanes = LaneStats()  # every connection's outbox, summed per lane
        # Over the inbound rate, by kind; both kinds read 0 from the start, as every lane does.
        self.inbound_limited: Counter[str] = Counter(dict.fromkeys(INBOUND_KINDS, 0))
        self._collectors: list[MetricsCollector] = []
        self.collector_errors = 0
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)  # a Collector: anything with collect()
        ProcessCollector(registry=self.registry)

    def add_collector(self, collector: MetricsCollector) -> None:
        """Yield ``collector()``'s families at every scrape (``Host.add_metrics``)."""
        self._collectors.append(collector)

    def _label(self, method: str) -> str:
        return method if method in self._known else _UNKNOWN_METHOD

    def observe_call(self, method: str, seconds: float, reply: Reply) -> None:
        """A call (or notification: no ``reply``) of ``method`` that took ``seconds``."""
        histogram = self.calls.get(method)  # a known method after its first call: one lookup
        if histogram is None:
            method = self._label(method)
            histogram = self.calls.get(method)
            if histogram is None:
                histogram = self.calls[method] = BucketCounts(RPC_BUCKETS)
        histogram.observe(seconds)
        if reply is not None and "error" in reply:
            self.call_errors[method, reply["error"]["code"]] += 1

    def count_unencodable(self, method: str, error: dict[str, Any] | None) -> None:
        """A reply (a result, or an ``error`` whose data) that was not JSON: the call was
        answered -32603 instead, and counts as that rather than as what it was."""
        label = self._label(method)
        if error is not None:
            key = label, error["code"]
            self.call_errors[key] -= 1  # observe_call counted it
            if not self.call_errors[key]:
                del self.call_errors[key]
        self.call_errors[label, ErrorCode.INTERNAL_ERROR] += 1

    def count_limited(self, method: str) -> None:
        """A call refused over the inbound rate: it ran no handler, so has no duration."""
        self.calls_limited[self._label(method)] += 1

    def collect(self) -> Iterator[Metric]:
        """Build the families at scrape time (the Collector protocol)."""
        yield GaugeMetricFamily("rtctl_connections", "Open WebSocket connections",
                                value=self._connections())
        yield CounterMetricFamily("rtctl_connections_opened", "Connections accepted",
                                  value=self.connections_opened)
        yield labelled(CounterMetricFamily, "rtctl_connections_closed",
                       "Connections closed, by close code (a code rtctl does not define: other)",
                       "code", self._closed_by_code())
        yield labelled(CounterMetricFamily, "rtctl_upgrades",
                       "Upgrade requests to the game endpoint, by outcome (ok, or the HTTP "
                       "status answered)", "outcome",
                       {**self.upgrades, "ok": self.connections_opened})
        yield labelled(CounterMetricFamily, "rtctl_upgrades_refused",
                       "Upgrades refused before a WebSocket opened, by reason",
                       "reason", self.refused)
        yield labelled(CounterMetricFamily, "rtctl_session_resumes",
                       "Recovery tokens offered at the upgrade, by result (resumed, expired, "
                       "invalid, wrong_user)", "result", self.resumes)
        yield CounterMetricFamily("rtctl_messages_received", "WebSocket messages received",
                                  value=self.messages_in)
        yield CounterMetricFamily("rtctl_messages_sent", "WebSocket messages sent",
                                  value=self.messages_out)
        yield CounterMetricFamily("rtctl_received_bytes", "Payload bytes received",
                                  value=self.bytes_in)
        yield CounterMetricFamily("rtctl_sent_bytes", "Payload bytes sent", value=self.bytes_out)
        yield labelled(CounterMetricFamily, "rtctl_rpc_errors", "JSON-RPC error replies, by code",
                       "code", self.rpc_errors)
        family = HistogramMetricFamily(
            "rtctl_rpc_duration_seconds",
            "Time from decoded request to reply ready, by method", labels=["method"])
        for method, histogram in sorted(self.calls.items()):
            family.add_metric([method], histogram.cumulative(), histogram.total)
        yield family
        yield self._calls_family()
        lag = HistogramMetricFamily(
            "rtctl_event_loop_lag_seconds",
            f"How late a probe sleeping {self.loop_lag.interval:g} s woke up: loop time spent "
            "on other work")
        lag.add_metric([], self.loop_lag.histogram.cumulative(), self.loop_lag.histogram.total)
        yield lag
        yield from _lane_families(self.lanes)
        yield labelled(CounterMetricFamily, "rtctl_inbound_limited",
                       "Inbound calls over the connection's rate, by kind (a call is answered "
                       "-32029, a notification dropped)", "kind", self.inbound_limited)
        yield GaugeMetricFamily("rtctl_ready", "1 while /readyz answers 200",
                                value=int(self._ready()))
        yield GaugeMetricFamily("rtctl_draining", "1 while the node drains for shutdown",
                                value=int(self._draining()))
        info = GaugeMetricFamily("rtctl_build_info", "Always 1: the version, transport and "
                                 "node id of this gateway", labels=["version", "transport", "node"])
        info.add_metric(list(self._build), 1)
        yield info
        for collector in self._collectors:
            try:
                families = list(collector())
            except Exception:
                # One service's bug must not fail the scrape: Prometheus would read the whole
                # node as down (up == 0) and every dashboard would lose it.
                self.collector_errors += 1
                logger.exception("metrics collector %r failed; its families are left out",
                                 collector)
                continue
            yield from families
        yield CounterMetricFamily("rtctl_metrics_collector_errors",
                                  "Scrapes at which a service's metrics collector failed (its "
                                  "families were left out; the log has the traceback)",
                                  value=self.collector_errors)

    def _calls_family(self) -> CounterMetricFamily:
        by_code: Counter[tuple[str, str]] = Counter()
        for label, histogram in self.calls.items():
            by_code[label, "ok"] += histogram.count
            for zero in _ZERO_CODES if label != _UNKNOWN_METHOD else ():  # never its answers
                by_code[label, zero] += 0
        # <unknown> from the start: a client calling a wrong name (an older game build, say)
        # shows at its first call
        by_code[_UNKNOWN_METHOD, "ok"] += 0
        by_code[_UNKNOWN_METHOD, _UNKNOWN_CODE] += 0
        for (label, code), count in self.call_errors.items():
            by_code[label, "ok"] -= count
            by_code[label, str(code)] += count
        for label, count in self.calls_limited.items():
            by_code[label, _RATE_LIMITED] += count
        family = CounterMetricFamily(
            "rtctl_rpc_calls", "Requests and notifications dispatched, by method and code (ok, "
            "or the JSON-RPC error code)", labels=["method", "code"])
        for labels, value in sorted(by_code.items()):
            family.add_metric(labels, value)
        return family

    def _closed_by_code(self) -> Counter[str]:
        closed: Counter[str] = Counter(dict.fromkeys(_CLOSE_LABELS, 0))  # every code from the start
        for code, count in self.connections_closed.items():
            closed[str(code) if code in _CLOSE_CODES else OTHER_CLOSE_CODE] += count
        return closed

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

