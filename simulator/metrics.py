"""Prometheus metrics of the proxy: what it delayed, dropped, duplicated, and how much.

Counters are plain integers on the hot path and become Prometheus families only
when scraped (the control API's ``GET /metrics``), as the gateway's own metrics
do (see ``rtctl/gateway/metrics.py`` for why).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from itertools import product

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from simulator.link import Outcome

__all__ = ["DIRECTIONS", "DROP_REASONS", "ProxyMetrics"]

DIRECTIONS = ("up", "down")
# Why a link drops a message (``Outcome.dropped``): the impairments that can return no
# packet (``loss``, a full ``bandwidth`` queue) and the link's own outage windows.
DROP_REASONS = ("bandwidth", "loss", "outage")


class ProxyMetrics:
    """Counters of one proxy, by direction (``up`` client → server, ``down`` back)."""

    def __init__(self) -> None:
        self.messages: Counter[str] = Counter()
        self.bytes: Counter[str] = Counter()
        self.delayed: Counter[str] = Counter()
        self.delay_seconds: dict[str, float] = dict.fromkeys(DIRECTIONS, 0.0)
        self.duplicated: Counter[str] = Counter()
        self.reordered: Counter[str] = Counter()
        self.retransmits: Counter[str] = Counter()
        self.dropped: Counter[tuple[str, str]] = Counter()  # (direction, reason)
        self.connections_opened = 0
        self.connections_open = 0
        self.resets = 0
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(self)

    def passed(self, direction: str, size: int, messages: int = 1) -> None:
        """``messages`` of ``size`` bytes in all that went straight through."""
        self.messages[direction] += messages
        self.bytes[direction] += size

    def record(self, direction: str, size: int, outcome: Outcome) -> None:
        """A message the link decided about."""
        self.messages[direction] += 1
        self.bytes[direction] += size
        if outcome.dropped:
            self.dropped[direction, outcome.dropped] += 1
            return
        if outcome.delay > 0:
            self.delayed[direction] += 1
            self.delay_seconds[direction] += outcome.delay
        self.duplicated[direction] += outcome.duplicated
        self.reordered[direction] += outcome.reordered
        self.retransmits[direction] += outcome.retransmits

    def as_json(self) -> dict[str, object]:
        return {
            "messages": dict(self.messages), "bytes": dict(self.bytes),
            "delayed": dict(self.delayed), "duplicated": dict(self.duplicated),
            "reordered": dict(self.reordered), "retransmits": dict(self.retransmits),
            "dropped": {f"{d}:{r}": n for (d, r), n in self.dropped.items()},
            "connections_open": self.connections_open,
            "connections_opened": self.connections_opened, "resets": self.resets,
        }

    def collect(self) -> Iterator[Metric]:
        """Build the families (prometheus_client's collector protocol)."""
        per_direction = (
            ("rtctl_sim_messages", "Messages (tcp mode: reads) entering the proxy",
             self.messages),
            ("rtctl_sim_bytes", "Payload bytes entering the proxy", self.bytes),
            ("rtctl_sim_delayed", "Messages delivered later than they arrived", self.delayed),
            ("rtctl_sim_delay_seconds", "Total delay added", self.delay_seconds),
            ("rtctl_sim_duplicated", "Messages delivered twice", self.duplicated),
            ("rtctl_sim_reordered", "Messages held back so later ones overtook them",
             self.reordered),
            ("rtctl_sim_retransmits", "Simulated TCP retransmissions (tcp mode)",
             self.retransmits),
        )
        for name, doc, counts in per_direction:
            family = CounterMetricFamily(name, doc, labels=["direction"])
            for direction in DIRECTIONS:
                family.add_metric([direction], counts[direction])
            yield family
        dropped = CounterMetricFamily("rtctl_sim_dropped", "Messages dropped, by cause",
                                      labels=["direction", "reason"])
        # Zero from the start, so rate() sees the first drop and the dashboard's panel is
        # not "No data" until then.
        known = set(product(DIRECTIONS, DROP_REASONS))
        for direction, reason in sorted(self.dropped.keys() | known):
            dropped.add_metric([direction, reason], self.dropped[direction, reason])
        yield dropped
        yield CounterMetricFamily("rtctl_sim_connections_opened", "Connections proxied",
                                  value=self.connections_opened)
        yield GaugeMetricFamily("rtctl_sim_connections", "Connections open now",
                                value=self.connections_open)
        yield CounterMetricFamily("rtctl_sim_resets", "Connections cut by reset outages",
                                  value=self.resets)

    def render(self) -> bytes:
        return generate_latest(self._registry)
