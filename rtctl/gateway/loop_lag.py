"""The event loop's lag, for ``rtctl_event_loop_lag_seconds``: how late a sleeping probe wakes.

A task sleeps :data:`EVENT_LOOP_PROBE` seconds at a time; whatever it wakes up
later than asked is time the loop spent on other work (a handler that blocked,
a long batch, a GC pause) while every connection's reads and timers waited
too. :class:`LagMeter` is the measuring core, sans-I/O (times in, bucket
counts out); :class:`LagProbe` is the task that drives it with the loop's
clock, started with the gateway and stopped at its shutdown; it also hands
each measurement to the stage profiler (``/profile``'s ``loop_lag_ms``), so one
probe serves both.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from rtctl.histograms import BucketCounts

__all__ = ["EVENT_LOOP_PROBE", "LAG_BUCKETS", "LagMeter", "LagProbe"]

EVENT_LOOP_PROBE = 0.25  # seconds the probe sleeps between measurements
# 1 ms (scheduling noise) to 5 s (a loop that stalled long enough to miss heartbeats).
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class LagMeter:
    """Turns "went to sleep at, woke at" into a lag observation."""

    __slots__ = ("_due", "histogram", "interval")

    def __init__(self, interval: float = EVENT_LOOP_PROBE) -> None:
        self.interval = interval
        self.histogram = BucketCounts(LAG_BUCKETS)
        self._due: float | None = None

    def sleeping(self, now: float) -> float:
        """The probe goes to sleep at ``now``: how long it should sleep."""
        self._due = now + self.interval
        return self.interval

    def woke(self, now: float) -> float:
        """The probe woke at ``now``: observe and return how late that was (never below 0,
        as a timer may fire a clock tick early)."""
        if self._due is None:
            raise RuntimeError("woke() before sleeping()")
        lag = max(0.0, now - self._due)
        self._due = None
        self.histogram.observe(lag)
        return lag


class LagProbe:
    """The task that sleeps and measures, telling ``also`` each lag; ``clock`` and ``sleep``
    are passed in for tests."""

    def __init__(self, meter: LagMeter, *, also: Callable[[float], None] = lambda lag: None,
                 clock: Callable[[], float] = time.perf_counter,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.meter = meter
        self._also = also
        self._clock = clock
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        """Start measuring in the running loop (once)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        meter, clock = self.meter, self._clock
        while True:
            await self._sleep(meter.sleeping(clock()))
            self._also(meter.woke(clock()))
