"""What a benchmark measured: per-worker recorders, merged into one result.

Every attempt in the measured window (a request, a delivery, a session, a
reconnect) is *expected*; it then either completes, with its latency in the
histogram, or fails with an error class (``closed``, ``connect``, ``http 503``,
``rpc -32603`` ...). Whatever is neither by the end of the drain is ``lost``
(timed out, or a fan-out delivery that never came). Latency counts from the
moment the attempt was *meant* to start, so a stalled sender cannot hide its
own stall (no coordinated omission).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rtctl.bench.histogram import Histogram

__all__ = ["LOST", "BenchResult", "Recorder", "WorkerResult"]

LOST = "lost"
_NS = 1_000_000_000


class Recorder:
    """One worker's counts; times are ``time.monotonic()`` seconds."""

    def __init__(self) -> None:
        self.histogram = Histogram()
        self.timeline: dict[int, Histogram] = {}  # second of the window → latencies
        self.errors: Counter[str] = Counter()
        self.expected = 0
        self.start = float("inf")  # the measured window, set by open_window
        self.end = float("inf")

    def open_window(self, start: float, end: float) -> None:
        self.start, self.end = start, end

    def measured(self, intended: float) -> bool:
        """Does an attempt meant to start at ``intended`` count?"""
        return self.start <= intended < self.end

    def expect(self, intended: float, count: int = 1) -> bool:
        if self.start <= intended < self.end:
            self.expected += count
            return True
        return False

    def completed(self, intended: float, now: float) -> None:
        """An attempt meant to start at ``intended`` completed at ``now`` (both in the window)."""
        latency = int((now - intended) * _NS)
        self.histogram.record(latency)
        second = int(intended - self.start)
        bucket = self.timeline.get(second)
        if bucket is None:
            bucket = self.timeline[second] = Histogram()
        bucket.record(latency)

    def failed(self, kind: str, count: int = 1) -> None:
        self.errors[kind] += count

    def result(self) -> WorkerResult:
        return WorkerResult(histogram=self.histogram, timeline=self.timeline,
                            errors=Counter(self.errors), expected=self.expected)


@dataclass(frozen=True)
class WorkerResult:
    """What one worker sends back to the parent (it pickles)."""

    histogram: Histogram
    timeline: dict[int, Histogram]
    errors: Counter[str]
    expected: int


@dataclass(frozen=True)
class BenchResult:
    """The merged result of a run."""

    scenario: str
    clients: int
    workers: int
    mode: str  # "open" at a rate, or "closed"
    rate: float | None
    duration_s: float
    histogram: Histogram
    timeline: list[Histogram]  # one per second of the window
    errors: Counter[str] = field(default_factory=Counter)
    expected: int = 0

    @classmethod
    def merge(cls, parts: list[WorkerResult], *, scenario: str, clients: int,
              rate: float | None, duration_s: float) -> BenchResult:
        histogram = Histogram.merged(part.histogram for part in parts)
        seconds = max(1, int(duration_s + 0.999))
        timeline = [Histogram.merged(part.timeline.get(s, Histogram()) for part in parts)
                    for s in range(seconds)]
        errors: Counter[str] = Counter()
        for part in parts:
            errors.update(part.errors)
        expected = sum(part.expected for part in parts)
        lost = expected - histogram.count - sum(errors.values())
        if lost > 0:
            errors[LOST] += lost
        return cls(scenario=scenario, clients=clients, workers=len(parts),
                   mode="closed" if rate is None else "open", rate=rate,
                   duration_s=duration_s, histogram=histogram, timeline=timeline,
                   errors=errors, expected=max(expected, histogram.count))

    @property
    def messages(self) -> int:
        return self.histogram.count

    @property
    def throughput(self) -> float:
        return self.messages / self.duration_s if self.duration_s else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def error_ratio(self) -> float:
        attempts = self.messages + self.error_count
        return self.error_count / attempts if attempts else 0.0

    def latency_ms(self) -> dict[str, float]:
        h = self.histogram
        return {"p50": h.percentile(50) / 1e6, "p90": h.percentile(90) / 1e6,
                "p99": h.percentile(99) / 1e6, "p999": h.percentile(99.9) / 1e6,
                "p9999": h.percentile(99.99) / 1e6, "max": h.max / 1e6, "mean": h.mean / 1e6}

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document (its fields are listed in ``docs/bench.md``)."""
        return {
            "scenario": self.scenario, "clients": self.clients, "workers": self.workers,
            "mode": self.mode, "rate": self.rate, "duration_s": self.duration_s,
            "messages": self.messages, "throughput_per_s": self.throughput,
            "latency_ms": self.latency_ms(), "errors": dict(sorted(self.errors.items())),
            "error_ratio": self.error_ratio,
            "timeline": [{"second": s, "messages": h.count,
                          "p50_ms": h.percentile(50) / 1e6, "p99_ms": h.percentile(99) / 1e6}
                         for s, h in enumerate(self.timeline)],
        }

    def csv_rows(self) -> list[list[str]]:
        """The per-second timeline as CSV rows, header first."""
        rows = [["second", "messages", "p50_ms", "p90_ms", "p99_ms", "max_ms"]]
        for second, h in enumerate(self.timeline):
            rows.append([str(second), str(h.count),
                         *(f"{h.percentile(p) / 1e6:.3f}" for p in (50, 90, 99)),
                         f"{h.max / 1e6:.3f}"])
        return rows
