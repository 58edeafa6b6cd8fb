"""The backend connections as Prometheus families, built at scrape time from their stats.

The gateway registers :func:`backend_families` over ``backends.connections``:
a memory-only node has no connection and so no ``rtctl_backend_*`` family; a
configured backend has every family, with every declared operation, from the
start (Prometheus naming: base units, ``_total`` added to counters by
prometheus_client). :func:`labelled` builds the one-label families the
services expose too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from rtctl.backends.base import Health

__all__ = ["backend_families", "labelled"]


def labelled(kind: type[CounterMetricFamily] | type[GaugeMetricFamily], name: str,
             documentation: str, label: str, values: Mapping[str, float] | Mapping[int, float]
             ) -> Metric:
    """A family with one sample per ``values`` item, labelled ``label=str(key)``, in order."""
    family = kind(name, documentation, labels=[label])
    for key, value in sorted((str(key), value) for key, value in values.items()):
        family.add_metric([key], value)
    return family


def backend_families(connections: Sequence[Health]) -> Iterator[Metric]:
    """``rtctl_backend_{up,operation_duration_seconds,errors_total,reconnects_total}``."""
    if not connections:
        return
    yield labelled(GaugeMetricFamily, "rtctl_backend_up",
                   "1 while the backend connection is healthy (what /readyz checks), else 0",
                   "backend", {c.name: float(c.failure() is None) for c in connections})
    durations = HistogramMetricFamily(
        "rtctl_backend_operation_duration_seconds",
        "Time of each backend call, failed ones included, by backend and operation",
        labels=["backend", "operation"])
    errors = CounterMetricFamily(
        "rtctl_backend_errors",
        "Backend calls that failed because the backend could not be reached in time "
        "(-32050), by backend and operation", labels=["backend", "operation"])
    for connection in connections:
        stats = connection.stats
        for operation, histogram in stats.durations.items():
            durations.add_metric([connection.name, operation], histogram.cumulative(),
                                 histogram.total)
            errors.add_metric([connection.name, operation], stats.errors[operation])
    yield durations
    yield errors
    yield labelled(CounterMetricFamily, "rtctl_backend_reconnects",
                   "Times the backend connection came back after being unreachable",
                   "backend", {c.name: c.stats.reconnects for c in connections})
