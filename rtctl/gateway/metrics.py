"""Prometheus metrics of one gateway, served as text at ``/metrics``.

Each gateway owns its registry, so several gateways in one process (tests,
the TUI) do not mix their numbers. Per-method children are cached: the hot
path pays one dictionary lookup, not a label resolution.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE", "GatewayMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

# RPC latency buckets (seconds): 50 µs to 2.5 s, denser where game calls live.
_RPC_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)
_UNKNOWN_METHOD = "<unknown>"  # keeps label cardinality bounded by the router


class GatewayMetrics:
    """The gateway's counters, gauges and histograms."""

    def __init__(self, known_methods: set[str] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.connections = Gauge("rtctl_connections", "Open WebSocket connections", registry=r)
        self.connections_opened = Counter(
            "rtctl_connections_opened", "Connections accepted", registry=r)
        self.connections_closed = Counter(
            "rtctl_connections_closed", "Connections closed, by close code", ["code"], registry=r)
        self.refused = Counter(
            "rtctl_upgrades_refused", "Upgrades refused before a WebSocket opened, by reason",
            ["reason"], registry=r)
        self.messages_in = Counter(
            "rtctl_messages_received", "WebSocket messages received", registry=r)
        self.messages_out = Counter("rtctl_messages_sent", "WebSocket messages sent", registry=r)
        self.bytes_in = Counter("rtctl_received_bytes", "Payload bytes received", registry=r)
        self.bytes_out = Counter("rtctl_sent_bytes", "Payload bytes sent", registry=r)
        self.rpc_duration = Histogram(
            "rtctl_rpc_duration_seconds", "Time from decoded request to encoded reply, by method",
            ["method"], buckets=_RPC_BUCKETS, registry=r)
        self.rpc_errors = Counter(
            "rtctl_rpc_errors", "JSON-RPC error replies, by code", ["code"], registry=r)
        self._known = known_methods if known_methods is not None else set()
        self._durations: dict[str, Histogram] = {}
        self._errors: dict[int, Counter] = {}

    def observe_call(self, method: str, seconds: float) -> None:
        child = self._durations.get(method)
        if child is None:
            label = method if method in self._known else _UNKNOWN_METHOD
            child = self.rpc_duration.labels(label)
            if label == method:
                self._durations[method] = child
        child.observe(seconds)

    def observe_error(self, code: int) -> None:
        child = self._errors.get(code)
        if child is None:
            child = self._errors[code] = self.rpc_errors.labels(str(code))
        child.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
