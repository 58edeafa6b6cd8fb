"""What a benchmark measured: per-worker recorders, merged into one result.

Every attempt in the measured window (a request, a delivery, a session, a
reconnect) is *expected*; it then either completes, with its latency in the
histogram, or fails with an error class (``closed``, ``connect``, ``http 503``,
``rpc -32603`` ...). Whatever is neither by the end of the drain is ``lost``
(timed out, or a fan-out delivery that never came). Latency counts from the
moment the attempt was *meant* to start, so a stalled sender cannot hide its
own stall (no coordinated omission). Connections opened are counted too, so a
report can say how many of them were refused. A percentile of no samples is
None (``null`` in JSON, an empty CSV cell), never 0. The ``state`` scenario
adds its own counts (:mod:`rtctl.bench.state_counts`), the ``arena`` scenario
its netcode numbers (:mod:`rtctl.bench.netcode_counts`), the ``reconnect-storm``
scenario its recoveries and messages (:mod:`rtctl.bench.recovery_counts`),
merged the same way.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rtctl.bench.bottleneck import Bottleneck, GeneratorLoad, judge
from rtctl.bench.histogram import Histogram
from rtctl.bench.netcode_counts import NetcodeTotals
from rtctl.bench.recovery_counts import RecoveryTotals
from rtctl.bench.state_counts import StateTotals

__all__ = ["LATENCY_METRICS", "LOST", "BenchResult", "Recorder", "WorkerResult",
           "percentile_ms"]

LOST = "lost"
_NS = 1_000_000_000
# Completions between two folds of the raw latencies into the histograms: a fold of
# 1,024 takes well under a millisecond; much larger ones stall the loop long enough to
# show in the latencies of an open loop.
_FOLD = 1024
LATENCY_METRICS = ("p50", "p90", "p99", "p999", "p9999", "max", "mean")  # keys of latency_ms()


class Recorder:
    """One worker's counts; times are ``time.monotonic()`` seconds.

    A completion appends its latency to a list of its second of the window,
    the cheapest thing to do per message; every 1,024 completions (and at the
    end) the lists go into one histogram per second. The whole window's
    histogram is their merge, made once at the end.
    """

    def __init__(self) -> None:
        self._raw: dict[int, list[int]] = {}  # second of the window → latencies (ns)
        self._timeline: dict[int, Histogram] = {}  # the same, folded
        self.count = 0  # completions so far
        self.errors: Counter[str] = Counter()
        self.expected = 0
        self.connects = 0  # connections tried, in or out of the window
        self.start = float("inf")  # the measured window, set by open_window
        self.end = float("inf")
        self.state: StateTotals | None = None  # the state scenario's counts
        self.netcode: NetcodeTotals | None = None  # the arena scenario's
        self.recovery: RecoveryTotals | None = None  # the reconnect-storm scenario's

    def open_window(self, start: float, end: float) -> None:
        self.start, self.end = start, end

    def expect(self, intended: float, count: int = 1) -> bool:
        """Count ``count`` attempts meant to start at ``intended``, if that is in the window."""
        if self.start <= intended < self.end:
            self.expected += count
            return True
        return False

    def completed(self, intended: float, now: float) -> None:
        """An attempt meant to start at ``intended`` completed at ``now`` (both in the window)."""
        second = int(intended - self.start)
        latencies = self._raw.get(second)
        if latencies is None:
            latencies = self._raw[second] = []
        latencies.append(int((now - intended) * _NS))
        self.count += 1
        if not self.count % _FOLD:
            self._fold()

    def _fold(self) -> None:
        for second, latencies in self._raw.items():
            histogram = self._timeline.get(second)
            if histogram is None:
                histogram = self._timeline[second] = Histogram()
            histogram.record_all(latencies)
        self._raw.clear()

    def failed(self, kind: str, count: int = 1) -> None:
        self.errors[kind] += count

    def result(self, load: GeneratorLoad) -> WorkerResult:
        """The counts, with ``load``: what generating them cost this worker."""
        self._fold()
        return WorkerResult(timeline=self._timeline, errors=Counter(self.errors),
                            expected=self.expected, load=load, connects=self.connects,
                            state=self.state, netcode=self.netcode, recovery=self.recovery)


@dataclass(frozen=True)
class WorkerResult:
    """What one worker sends back to the parent (it pickles)."""

    timeline: dict[int, Histogram]  # second of the window → latencies
    errors: Counter[str]
    expected: int
    load: GeneratorLoad
    connects: int = 0
    state: StateTotals | None = None
    netcode: NetcodeTotals | None = None
    recovery: RecoveryTotals | None = None


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
    generator: tuple[GeneratorLoad, ...] = ()  # one per worker
    connects: int = 0  # connections tried
    state: StateTotals | None = None  # the state scenario's bytes, sync counts, room cost
    netcode: NetcodeTotals | None = None  # the arena scenario's netcode numbers
    recovery: RecoveryTotals | None = None  # the reconnect-storm scenario's outcomes, messages

    @classmethod
    def merge(cls, parts: list[WorkerResult], *, scenario: str, clients: int,
              rate: float | None, duration_s: float) -> BenchResult:
        seconds = max(1, int(duration_s + 0.999))
        timeline = [Histogram.merged(part.timeline.get(s, Histogram()) for part in parts)
                    for s in range(seconds)]
        histogram = Histogram.merged(timeline)
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
                   errors=errors, expected=max(expected, histogram.count),
                   generator=tuple(part.load for part in parts),
                   connects=sum(part.connects for part in parts),
                   state=StateTotals.merged([p.state for p in parts if p.state is not None]),
                   netcode=NetcodeTotals.merged([p.netcode for p in parts
                                                 if p.netcode is not None]),
                   recovery=RecoveryTotals.merged([p.recovery for p in parts
                                                   if p.recovery is not None]))

    @property
    def bottleneck(self) -> Bottleneck:
        """Whether the load generator, rather than the server, limited the run."""
        return judge(self.generator)

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

    def latency_ms(self) -> dict[str, float | None]:
        """Percentiles, max and mean in ms; all None when nothing completed."""
        h = self.histogram
        if not h.count:
            return dict.fromkeys(LATENCY_METRICS)
        return {"p50": h.percentile(50) / 1e6, "p90": h.percentile(90) / 1e6,
                "p99": h.percentile(99) / 1e6, "p999": h.percentile(99.9) / 1e6,
                "p9999": h.percentile(99.99) / 1e6, "max": h.max / 1e6, "mean": h.mean / 1e6}

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document (its fields are listed in ``docs/bench.md``)."""
        verdict = self.bottleneck
        document = {
            "scenario": self.scenario, "clients": self.clients, "workers": self.workers,
            "mode": self.mode, "rate": self.rate, "duration_s": self.duration_s,
            "messages": self.messages, "throughput_per_s": self.throughput,
            "latency_ms": self.latency_ms(), "errors": dict(sorted(self.errors.items())),
            "error_ratio": self.error_ratio,
            "connections": self.connects,
            "timeline": [{"second": s, "messages": h.count, "p50_ms": percentile_ms(h, 50),
                          "p99_ms": percentile_ms(h, 99)}
                         for s, h in enumerate(self.timeline)],
            "generator": {
                "bottleneck": verdict.generator, "busy": verdict.busy,
                "lag_ms": verdict.lag_s * 1e3, "suggested_workers": verdict.workers,
                "verdict": verdict.text(),
                "workers": [{"cpu_s": g.cpu_s, "wall_s": g.wall_s, "busy": g.busy,
                             "lag_ms": g.lag_s * 1e3} for g in self.generator],
            },
        }
        if self.state is not None:
            document["state"] = self.state.to_json()
        if self.netcode is not None:
            h = self.histogram
            document["netcode"] = self.netcode.to_json(
                {"p50": percentile_ms(h, 50), "p99": percentile_ms(h, 99)})
        if self.recovery is not None:
            document["recovery"] = self.recovery.to_json()
        return document

    def csv_rows(self) -> list[list[str]]:
        """The per-second timeline as CSV rows, header first."""
        rows = [["second", "messages", "p50_ms", "p90_ms", "p99_ms", "max_ms"]]
        for second, h in enumerate(self.timeline):
            rows.append([str(second), str(h.count),
                         *(_cell(percentile_ms(h, p)) for p in (50, 90, 99)),
                         _cell(h.max / 1e6 if h.count else None)])
        return rows


def percentile_ms(histogram: Histogram, p: float) -> float | None:
    """The ``p``-th percentile in ms, or None for a histogram with no samples."""
    return histogram.percentile(p) / 1e6 if histogram.count else None


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"
