"""Was the load generator the bottleneck? Each worker measures itself over the window.

A worker that used (nearly) a whole core, or whose event loop ran late, sent
what it could, not what the server could take: the throughput measured is then
the generator's, and more workers would show more. :class:`LoadMeter` takes a
worker's CPU time (``time.process_time()``: user + system, all threads) and
the median lateness of a timer that should wake every :data:`PROBE` s, both
over the measured window; :func:`judge` turns the workers' figures into a
verdict and a ``--workers`` suggestion.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from rtctl.bench.histogram import Histogram

__all__ = ["BUSY", "LAG", "PROBE", "Bottleneck", "GeneratorLoad", "LoadMeter", "judge"]

BUSY = 0.9  # share of one core from which a worker counts as saturated
LAG = 0.010  # s of median timer lateness from which a worker's loop counts as behind
PROBE = 0.05  # s between two wake-ups of the lag probe
_HEADROOM = 0.6  # share of a core the suggested workers would each use


@dataclass(frozen=True)
class GeneratorLoad:
    """One worker's own load over the measured window (it pickles)."""

    cpu_s: float = 0.0
    wall_s: float = 0.0
    lag_s: float = 0.0  # median lateness of the probe timer

    @property
    def busy(self) -> float:
        """The share of one core the worker used."""
        return self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0


@dataclass(frozen=True)
class Bottleneck:
    """The verdict over every worker: ``generator`` when the generator limited the run."""

    generator: bool
    busy: float  # the busiest worker's share of one core
    lag_s: float  # the worst worker's median loop lag
    workers: int  # the --workers to try (the run's own unless a worker was saturated)

    def text(self) -> str:
        measured = f"busiest worker {self.busy:.0%} of a core, loop lag {self.lag_s * 1e3:.1f} ms"
        if not self.generator:
            return f"load generator: {measured}; not the bottleneck"
        if self.busy >= BUSY:
            advice = f"try --workers {self.workers}"
        else:  # late without being busy: other processes had the CPU
            advice = "its loop waited for the CPU: give it a core of its own"
        return f"the load generator, not the server, was the bottleneck ({measured}): {advice}"


def judge(loads: Sequence[GeneratorLoad]) -> Bottleneck:
    """The verdict: a worker at :data:`BUSY` of a core or :data:`LAG` behind means the generator."""
    workers = len(loads)
    busy = max((load.busy for load in loads), default=0.0)
    lag = max((load.lag_s for load in loads), default=0.0)
    saturated = busy >= BUSY
    wanted = max(workers + 1, math.ceil(workers * busy / _HEADROOM)) if saturated else workers
    return Bottleneck(generator=saturated or lag >= LAG, busy=busy, lag_s=lag, workers=wanted)


class LoadMeter:
    """Measures this process from ``start`` to ``end`` (``time.monotonic()``), in its loop."""

    def __init__(self, start: float, end: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._end = end
        self._lag = Histogram()  # ns
        self._first: tuple[float, float] | None = None  # (monotonic, process_time) at start
        self._last: tuple[float, float] | None = None  # the same at the end
        delay = max(0.0, start - time.monotonic())
        self._timer = self._loop.call_later(delay, self._wake, start)

    def _wake(self, due: float) -> None:
        now = time.monotonic()
        if self._first is None:
            self._first = (now, time.process_time())
        else:
            self._lag.record(int((now - due) * 1e9))
        if now >= self._end:
            self._last = (now, time.process_time())
            return
        due = min(now + PROBE, self._end)
        self._timer = self._loop.call_later(due - now, self._wake, due)

    def load(self) -> GeneratorLoad:
        """What was measured; stops the meter (a run that ended early is measured until now)."""
        self._timer.cancel()
        if self._first is None:
            return GeneratorLoad()
        last = self._last or (time.monotonic(), time.process_time())
        return GeneratorLoad(cpu_s=last[1] - self._first[1], wall_s=last[0] - self._first[0],
                             lag_s=self._lag.percentile(50) / 1e9)
