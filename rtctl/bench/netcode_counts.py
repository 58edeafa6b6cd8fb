"""What the ``arena`` scenario measures besides snapshot latency: the netcode's own numbers.

Each bot of a worker feeds the worker's :class:`NetcodeTotals` as its
:class:`~rtctl.demo.player.ArenaPlayer` plays, with the measured window's
second each sample falls in. Every distribution is a :class:`Series`: one HDR
histogram (:mod:`rtctl.bench.histogram`) per second of the window, so the
workers' totals merge exactly (counts add up) and the plot gets per-second
percentiles from the same samples. The histogram holds integers: world units
are kept in millionths and milliseconds in nanoseconds, so both are known to
three significant digits from 10⁻⁶ up.

Interpolation error needs the server's truth at the render time. :class:`Truth`
keeps every tick's positions as an observer client took them straight from the
gateway, in a ring (:class:`~rtctl.services.netcode.LagCompensation`, which
also gives positions at a fractional tick, linear between the two recorded
ticks around it). A sample whose render time the observer has not received yet
waits for it (a client without interpolation believes it shows the present,
up to a tick ahead of what has been sent); one older than the ring is not
judged, and counted (``unjudged``).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from rtctl.bench.histogram import Histogram
from rtctl.bench.parts import summed
from rtctl.client.interpolation import Frame
from rtctl.client.netcode import CORRECTION_EPSILON
from rtctl.client.prediction import Reconciliation
from rtctl.demo.game import TELEPORT, TICK_RATE
from rtctl.services.netcode import LagCompensation

__all__ = ["MS", "TRUTH_KEEP", "UNITS", "NetcodeTotals", "Position", "Series", "Truth"]

UNITS = 1_000_000  # per world unit: a distance is kept in millionths
MS = 1_000_000  # per millisecond: a time is kept in nanoseconds
FRAMES = 1  # rolled-back frames are whole numbers
TRUTH_KEEP = 3.0  # s of ticks kept: past any render time (delay ≤ 0.5 s + one-way latency)

Position = tuple[float, float]
Summary = dict[str, float | None]


@dataclass(slots=True)
class Series:
    """One distribution over the window: values in their unit, times ``scale`` as integers,
    one histogram per second of the window."""

    scale: int
    seconds: dict[int, Histogram] = field(default_factory=dict)

    def record(self, second: int, values: Iterable[float]) -> None:
        scaled = [round(value * self.scale) for value in values]
        if scaled:
            histogram = self.seconds.get(second)
            if histogram is None:
                histogram = self.seconds[second] = Histogram()
            histogram.record_all(scaled)

    def merge(self, other: Series) -> None:
        for second, histogram in other.seconds.items():
            self.seconds.setdefault(second, Histogram()).merge(histogram)

    def whole(self) -> Histogram:
        return Histogram.merged(self.seconds.values())

    def summary(self, *keys: str) -> Summary:
        """``p50``, ``p99``, ``max``, ``count`` as asked, in the values' unit (None: no
        samples; a count is 0 then)."""
        return _summary(self.whole(), self.scale, keys)

    def timeline(self, seconds: int, p: float) -> list[float | None]:
        """The ``p``-th percentile of each second of the window (None: no samples)."""
        return [_summary(self.seconds.get(s, Histogram()), self.scale, (f"p{p:g}",))[f"p{p:g}"]
                for s in range(seconds)]

    def counts(self, seconds: int) -> list[int]:
        return [self.seconds[s].count if s in self.seconds else 0 for s in range(seconds)]


def _summary(histogram: Histogram, scale: int, keys: Iterable[str]) -> Summary:
    result: Summary = {}
    for key in keys:
        if key == "count":
            result[key] = histogram.count
        elif not histogram.count:
            result[key] = None
        elif key == "max":
            result[key] = histogram.max / scale
        else:
            result[key] = histogram.percentile(float(key.removeprefix("p"))) / scale
    return result


def _distances() -> Series:
    return Series(UNITS)


def _times() -> Series:
    return Series(MS)


@dataclass(slots=True)
class NetcodeTotals:
    """One worker's (then the run's) netcode samples and counts over the window."""

    profile: str | None = None  # the simulator profile in between, if any
    unplayable: str | None = None  # why that profile is not playable (rtctl.demo.networks)
    prediction_error: Series = field(default_factory=_distances)
    corrections: Series = field(default_factory=_distances)  # those over CORRECTION_EPSILON
    rollback_frames: Series = field(default_factory=lambda: Series(FRAMES))
    interpolation_error: Series = field(default_factory=_distances)  # remotes as rendered
    latest_error: Series = field(default_factory=_distances)  # as the newest snapshot has them
    input_delay: Series = field(default_factory=_times)  # made → first frame showing it
    ack_delay: Series = field(default_factory=_times)  # made → first snapshot acking it
    interpolation_delay: Series = field(default_factory=_times)
    respawns: int = 0  # reconciliations across a respawn, left out of the errors
    frames: int = 0  # rendered with at least one remote player
    beyond: int = 0  # of those, extrapolated or frozen
    unjudged: int = 0  # remote samples whose truth was no longer (or not yet) recorded
    clients: int = 0  # bots that played the whole window
    inputs_sent: int = 0
    inputs_lost: int = 0
    bytes_in_per_s: float = 0.0  # summed over those bots
    bytes_out_per_s: float = 0.0

    def reconciled(self, second: int, result: Reconciliation, *, respawned: bool) -> None:
        """One reconciliation; one across a respawn (the server placed the player anew) is
        a teleport, counted apart rather than as an error of the prediction."""
        self.rollback_frames.record(second, (result.replayed,))
        if respawned:
            self.respawns += 1
            return
        self.prediction_error.record(second, (result.error,))
        if result.correction > CORRECTION_EPSILON:
            self.corrections.record(second, (result.correction,))

    def acked(self, second: int, *, shown: Iterable[float], seen: Iterable[float]) -> None:
        """Inputs acknowledged: seconds from each one's making to the frame that showed it,
        and to the snapshot that acknowledged it."""
        self.input_delay.record(second, (delay * 1000 for delay in shown))
        self.ack_delay.record(second, (delay * 1000 for delay in seen))

    def rendered(self, second: int, frame: Frame[str]) -> None:
        self.interpolation_delay.record(second, (frame.delay * 1000,))
        if frame.entities:
            self.frames += 1
            self.beyond += frame.mode in ("extrapolated", "frozen")

    def played(self, *, sent: int, lost: int, bytes_in_per_s: float,
               bytes_out_per_s: float) -> None:
        """One bot's counts over the window."""
        self.clients += 1
        self.inputs_sent += sent
        self.inputs_lost += lost
        self.bytes_in_per_s += bytes_in_per_s
        self.bytes_out_per_s += bytes_out_per_s

    def add(self, other: NetcodeTotals) -> None:
        self.profile = self.profile or other.profile
        self.unplayable = self.unplayable or other.unplayable
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if isinstance(mine, Series):
                mine.merge(theirs)
            elif isinstance(mine, int | float):
                setattr(self, f.name, mine + theirs)

    @classmethod
    def merged(cls, parts: list[NetcodeTotals]) -> NetcodeTotals | None:
        """The sum of the workers' parts; None if there are none (another scenario)."""
        return summed(parts, cls)

    def to_json(self, snapshot_age_ms: Summary) -> dict[str, Any]:
        """The ``netcode`` object (docs/bench.md); ``snapshot_age_ms`` is the run's latency:
        one sample per snapshot applied by one bot."""
        clients = self.clients
        return {
            "prediction_error": self.prediction_error.summary("p50", "p99", "max"),
            "corrections": self.corrections.summary("count", "p99"),
            "respawns": self.respawns,
            "interpolation_error": self.interpolation_error.summary("p50", "p99"),
            "snapshot_age_ms": snapshot_age_ms,
            "extrapolated_ratio": self.beyond / self.frames if self.frames else None,
            "rollback_frames": self.rollback_frames.summary("p50", "p99", "max"),
            "input_loss": {"sent": self.inputs_sent, "lost": self.inputs_lost,
                           "ratio": self.inputs_lost / self.inputs_sent
                           if self.inputs_sent else None},
            "bytes_per_s": {"in": self.bytes_in_per_s / clients if clients else None,
                            "out": self.bytes_out_per_s / clients if clients else None},
            "input_delay_ms": self.input_delay.summary("p50", "p99"),
            "interpolation_delay_ms": self.interpolation_delay.summary("p50", "p99"),
            "without": {"interpolation_error": self.latest_error.summary("p50", "p99"),
                        "input_delay_ms": self.ack_delay.summary("p50", "p99")},
            "frames": self.frames, "unjudged": self.unjudged,
            "profile": None if self.profile is None else {
                "name": self.profile, "unplayable": self.unplayable},
        }


class Truth:
    """The server's positions tick by tick, and the remote samples waiting to be judged."""

    def __init__(self, totals: NetcodeTotals, *, keep: float = TRUTH_KEEP) -> None:
        self.totals = totals
        self._history: LagCompensation[str] = LagCompensation(
            max_rewind=keep, tick_rate=TICK_RATE, snap=TELEPORT)  # as the bots draw it
        self._latest: int | None = None
        # (tick to wait for, order, tick, series, second, positions shown)
        self._waiting: list[tuple[int, int, float, Series, int, dict[str, Position]]] = []
        self._order = itertools.count()

    def record(self, tick: int, positions: Mapping[str, Position]) -> None:
        """The positions after server tick ``tick``; judges what waited for it. A tick not
        after the newest (a resync to a state already seen) is ignored."""
        if self._latest is not None and tick <= self._latest:
            return
        self._history.record(tick, positions)
        self._latest = tick
        while self._waiting and self._waiting[0][0] <= tick:
            _, _, at, series, second, shown = heapq.heappop(self._waiting)
            self._judge(series, second, at, shown)

    def judge(self, series: Series, second: int, time: float,
              shown: Mapping[str, Position]) -> None:
        """Record in ``series`` how far each of ``shown`` is from where the server had it at
        server time ``time`` (seconds), now or once that tick is recorded."""
        if not shown:
            return
        tick = time * TICK_RATE
        if self._latest is not None and tick <= self._latest:
            self._judge(series, second, tick, shown)
        else:
            heapq.heappush(self._waiting, (math.ceil(tick), next(self._order), tick, series,
                                           second, dict(shown)))

    def _judge(self, series: Series, second: int, tick: float,
               shown: Mapping[str, Position]) -> None:
        assert self._latest is not None
        rewound = self._history.at(tick, self._latest)
        truth = rewound.positions
        if rewound.clamped:  # older than the ring: the truth is gone
            self.totals.unjudged += len(shown)
            return
        series.record(second, (math.dist(where, truth[name])
                               for name, where in shown.items() if name in truth))

    def finish(self) -> None:
        """The observer stops: what still waits for a tick is counted as unjudged."""
        self.totals.unjudged += sum(len(item[-1]) for item in self._waiting)
        self._waiting.clear()
