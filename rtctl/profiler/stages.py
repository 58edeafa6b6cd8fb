"""Where a gateway's time goes, recorded inside the gateway: per-stage timings by method.

Recording every message would cost the throughput the echo benchmark guards
(``docs/performance.md``), so the gateway *samples*: each connection's read
loop counts down (one integer decrement per message; the first count starts
at random in 1..:attr:`StageProfiler.every`) and sends the message that
reaches zero down a timed copy of the path. That message's stages are recorded in nanoseconds:

``decode``   the JSON text to a JSON-RPC 2.0 request (:func:`rtctl.protocol.jsonrpc.decode`);
``handler``  routing, parameter binding and the method itself, until the reply
             is ready (for an ``async`` method, until it finished);
``encode``   the reply to JSON bytes;
``write``    handing the bytes to the WebSocket (``ws.send``: framing and the
             socket write, including waiting for it to drain).

Beside the stages: the event loop's lag (how late the gateway's probe,
:mod:`rtctl.gateway.loop_lag`, woke: time the loop spent on other work; it
hands each measurement to :meth:`StageProfiler.record_lag`) and, at snapshot
time, the outbound queue depths. An admin reads all of it at ``GET /profile``
(:mod:`rtctl.gateway.server`), usually with ``rtctl profile``.
"""

from __future__ import annotations

import random
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from rtctl.bench.histogram import Histogram
from rtctl.profiler.cpu import StackSampler

__all__ = [
    "DEFAULT_EVERY",
    "MAX_SAMPLES",
    "PROFILE_PATH",
    "STAGES",
    "UNKNOWN_METHOD",
    "QueueDepths",
    "StageProfiler",
]

PROFILE_PATH = "/profile"
STAGES = ("decode", "handler", "encode", "write")
DEFAULT_EVERY = 64  # one message in 64 per connection is timed
UNKNOWN_METHOD = "<unknown>"
MAX_SAMPLES = 200_000  # about 4 MB; at 1 in 64 of 40k msg/s, the last five minutes


@dataclass(frozen=True, slots=True)
class QueueDepths:
    """The outboxes at one instant: how many exist and what waits in them."""

    connections: int
    outboxes: int
    queued_messages: int
    queued_bytes: int
    max_queued_messages: int


def _summary_us(histogram: Histogram) -> dict[str, float]:
    return {"count": histogram.count, "mean_us": histogram.mean / 1e3,
            "p50_us": histogram.percentile(50) / 1e3, "p99_us": histogram.percentile(99) / 1e3,
            "max_us": histogram.max / 1e3, "total_us": histogram.total / 1e3}


class StageProfiler:
    """Sampled stage timings by method, and the event loop's lag."""

    def __init__(self, every: int = DEFAULT_EVERY, *, known_methods: set[str] | None = None,
                 seed: int | None = None) -> None:
        if every < 1:
            raise ValueError("a profiler samples one message in `every`, at least 1")
        self.every = every  # read by every read loop: a plain attribute
        self._known = known_methods
        self._rng = random.Random(seed)
        # Raw samples, aggregated only when read: the hot path appends one tuple.
        self._samples: deque[tuple[str, int, int, int, int]] = deque(maxlen=MAX_SAMPLES)
        self._lag = Histogram()
        self._since = time.monotonic()
        self._sampler: StackSampler | None = None  # while a `rtctl profile --cpu` runs

    def first_countdown(self) -> int:
        """Where a new connection's countdown starts: anywhere in 1..every.

        A random start samples connections that send only a few messages (a
        join, an occasional publish) at the same 1-in-``every`` rate as busy ones.
        """
        return self._rng.randint(1, self.every)

    def record(self, method: str, decode: int, handler: int, encode: int, write: int) -> None:
        """One sampled message's stage durations, in ns (the last :data:`MAX_SAMPLES` are kept)."""
        self._samples.append((method, decode, handler, encode, write))

    def _table(self) -> dict[str, list[Histogram]]:
        """The samples by method and stage; a method outside ``known_methods`` is
        ``<unknown>``, so made-up names cannot grow the table without bound."""
        known = self._known
        table: dict[str, list[Histogram]] = {}
        for method, *stages in self._samples:
            label = method if known is None or method in known else UNKNOWN_METHOD
            histograms = table.get(label)
            if histograms is None:
                histograms = table[label] = [Histogram() for _ in STAGES]
            for histogram, duration in zip(histograms, stages, strict=True):
                histogram.record(duration)
        return table

    def record_lag(self, seconds: float) -> None:
        """One measurement of the event loop's lag."""
        self._lag.record(int(seconds * 1e9))

    def stop(self) -> None:
        """End a CPU sampler still running (the gateway is shutting down)."""
        if self._sampler is not None:
            self._sampler.stop()
            self._sampler = None

    def snapshot(self, queues: QueueDepths, *, reset: bool = False,
                 cpu: bool = False) -> dict[str, Any]:
        """Everything so far as JSON; ``reset`` starts a new interval afterwards.

        A CPU sampler started by the previous read ends here and its stacks go
        under ``cpu``; ``cpu`` starts one (:mod:`rtctl.profiler.cpu`), which
        samples the main thread: the gateway's event loop must run there.
        """
        now = time.monotonic()
        lag = self._lag
        document = {
            "every": self.every,
            "seconds": now - self._since,
            "sampled": len(self._samples),
            "methods": {method: dict(zip(STAGES, map(_summary_us, histograms), strict=True))
                        for method, histograms in sorted(self._table().items())},
            "loop_lag_ms": {"samples": lag.count, "p50": lag.percentile(50) / 1e6,
                            "p99": lag.percentile(99) / 1e6, "max": lag.max / 1e6},
            "queues": {"connections": queues.connections, "outboxes": queues.outboxes,
                       "queued_messages": queues.queued_messages,
                       "queued_bytes": queues.queued_bytes,
                       "max_queued_messages": queues.max_queued_messages},
        }
        if self._sampler is not None:
            stacks = self._sampler.stop()
            document["cpu"] = {"interval_ms": self._sampler.interval * 1000,
                               "samples": sum(stacks.values()), "stacks": dict(stacks)}
            self._sampler = None
        if cpu:
            sampler = StackSampler()
            sampler.start()  # raises SamplerUnavailable, before the interval is reset
            self._sampler = sampler
        if reset:
            self._samples.clear()
            self._lag = Histogram()
            self._since = now
        return document
