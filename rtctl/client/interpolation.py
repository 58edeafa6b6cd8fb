"""Entity interpolation: remote entities drawn a little in the past, between two snapshots. No I/O.

A client that draws each remote entity where the newest snapshot put it shows
it jumping at the snapshot rate and stalling whenever one is late. Instead the
client keeps the snapshots in a buffer and renders at ``now - delay``, between
the two that bracket that time (Gambetta, "Fast-Paced Multiplayer" part III,
entity interpolation; Valve, "Source Multiplayer Networking": 20 snapshots/s
rendered 100 ms in the past).

* **Fields.** Each field of an entity has a kind that knows how to blend and
  offset it: :data:`LINEAR` for positions, :data:`ANGLE` along the shortest arc
  (a heading going from 179° to -179° turns 2°, not 358°), :data:`STEP` for
  discrete values (hit points, a team), which change at the newer snapshot and
  are never extrapolated.
* **Delay.** Fiedler ("Snapshot Interpolation") sizes the buffer as a few
  packet intervals plus the jitter, so that the next snapshot has nearly always
  arrived when it is needed: :func:`adaptive_delay` is ``intervals * interval +
  jitter_factor * jitter``, clamped to :class:`DelayBounds`. The jitter is the
  RFC 3550 §6.4.1 estimate over the snapshots' transit times.
* **Clock.** Snapshots carry server time (tick / tick rate); the client maps
  its own clock onto it with the offset ``max(t - received)`` over the last
  :data:`OFFSET_WINDOW` seconds of snapshots: the fastest arrival had the least
  queueing, so it is the truest. The render time is ``now + lead``, the lead
  following its target ``offset - delay`` (both of which move: a latency drop
  raises the offset at once) at most :data:`SLEW` seconds per second, so the
  render clock runs between 0.75 and 1.25 times real time and never backwards.
  A target more than the :attr:`Interpolator.margin` away is no network
  weather but another clock (the room made afresh ahead of the old one's
  time): it is stepped to at once, as NTP steps rather than slews an offset
  beyond its step threshold (RFC 5905 §11.3); a step back holds the render time
  still until the clock catches up, never backwards.
* **New timeline.** A snapshot older than the newest by more than the margin
  is a new life of the room (the server restarted its clock: the room was made
  afresh, a gateway restarted), not one overtaken on the way: the buffer, the
  clock and the jitter estimate start over from it.
* **Late snapshots.** Past the newest snapshot the entities are extrapolated
  from the last two for at most ``extrapolate`` seconds (Valve's
  ``cl_extrapolate_amount`` 0.25), then frozen there; :attr:`Frame.mode` says
  which, so the game (and ``rtctl bench``) can count it.
* **Teleports.** An entity whose :data:`LINEAR` fields moved more than
  ``snap`` (Euclidean) between two snapshots teleported (a respawn): between
  those two it is drawn as :data:`STEP` draws (the older values until the newer
  one's time), and never extrapolated across the jump, which would throw it
  far past where it landed.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar

from rtctl.client.netstats import jitter_step

__all__ = [
    "ANGLE",
    "DEFAULT_CAPACITY",
    "DEFAULT_EXTRAPOLATE",
    "LINEAR",
    "OFFSET_WINDOW",
    "SLEW",
    "STEP",
    "DelayBounds",
    "Field",
    "Frame",
    "Interpolator",
    "Layout",
    "Mode",
    "adaptive_delay",
    "lerp",
    "lerp_angle",
    "linear_distance",
    "wrap_angle",
]

DEFAULT_EXTRAPOLATE = 0.25  # s: Valve's cl_extrapolate_amount
DEFAULT_CAPACITY = 64  # snapshots: 3.2 s at 20 Hz, far more than any delay within bounds
SLEW = 0.25  # s of render-time lead change per s: a 25 % speed change reads as motion, not a jump
OFFSET_WINDOW = 2.0  # s of snapshots whose fastest arrival sets the clock offset

K = TypeVar("K")
Mode = Literal["interpolated", "extrapolated", "frozen", "empty"]


def lerp(a: float, b: float, t: float) -> float:
    """``a`` at ``t = 0``, ``b`` at ``t = 1`` (both exactly), a straight line beyond."""
    return b if t == 1 else a + (b - a) * t


def wrap_angle(a: float) -> float:
    """``a`` (radians) brought into (-π, π]; exact, as ``math.remainder`` is."""
    wrapped = math.remainder(a, math.tau)
    return math.pi if wrapped == -math.pi else wrapped


def lerp_angle(a: float, b: float, t: float) -> float:
    """From ``a`` towards ``b`` along the shorter arc, wrapped to (-π, π].

    Half a turn apart, the arc taken is the counter-clockwise one (``wrap_angle``
    maps -π to π).
    """
    if t == 1:
        return wrap_angle(b)
    return wrap_angle(a + wrap_angle(b - a) * t)


class Field(Protocol):
    """How one kind of field blends (interpolation, extrapolation) and is offset (smoothing)."""

    def lerp(self, a: Any, b: Any, t: float) -> Any:
        """``a`` at ``t = 0``, ``b`` at ``t = 1``; ``t > 1`` extrapolates."""

    def diff(self, a: Any, b: Any) -> Any:
        """``a - b``, the offset that :meth:`shift` adds back."""

    def shift(self, value: Any, diff: Any, scale: float) -> Any:
        """``value + diff * scale``."""


class _Linear:
    def lerp(self, a: float, b: float, t: float) -> float:
        return lerp(a, b, t)

    def diff(self, a: float, b: float) -> float:
        return a - b

    def shift(self, value: float, diff: float, scale: float) -> float:
        return value + diff * scale


class _Angle:
    def lerp(self, a: float, b: float, t: float) -> float:
        return lerp_angle(a, b, t)

    def diff(self, a: float, b: float) -> float:
        return wrap_angle(a - b)

    def shift(self, value: float, diff: float, scale: float) -> float:
        return wrap_angle(value + diff * scale)


class _Step:
    """Discrete: the older value until the newer one's time, never extrapolated nor offset."""

    def lerp(self, a: Any, b: Any, t: float) -> Any:
        return a if t < 1 else b

    def diff(self, a: Any, b: Any) -> int:
        return 0

    def shift(self, value: Any, diff: Any, scale: float) -> Any:
        return value


LINEAR: Field = _Linear()
ANGLE: Field = _Angle()
STEP: Field = _Step()
Layout = Mapping[str, Field]  # field name -> kind; fields not named are treated as STEP


def linear_distance(layout: Layout, a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
    """How far apart ``a`` and ``b`` are: Euclidean over the :data:`LINEAR` fields both hold."""
    return math.hypot(*(LINEAR.diff(a[name], b[name]) for name, kind in layout.items()
                        if kind is LINEAR and name in a and name in b))


@dataclass(frozen=True, slots=True, kw_only=True)
class DelayBounds:
    """How far in the past remote entities are rendered (seconds), and how the delay is sized.

    ``intervals`` snapshot intervals (Fiedler: three, so that two snapshots lost or
    late in a row still leave one to interpolate towards; at 30 Hz that is Valve's
    100 ms) plus
    ``jitter_factor`` times the jitter (Fiedler), clamped to
    ``[minimum, maximum]``.
    """

    minimum: float = 0.05
    maximum: float = 0.5
    intervals: float = 3.0
    jitter_factor: float = 2.0

    def __post_init__(self) -> None:
        if not 0 <= self.minimum <= self.maximum:
            raise ValueError(f"delay bounds need 0 <= minimum <= maximum, "
                             f"got {self.minimum} and {self.maximum}")


def adaptive_delay(interval: float, jitter: float, bounds: DelayBounds) -> float:
    """The target delay for snapshots ``interval`` seconds apart arriving with ``jitter``."""
    wanted = bounds.intervals * interval + bounds.jitter_factor * jitter
    return min(max(wanted, bounds.minimum), bounds.maximum)


@dataclass(frozen=True, slots=True)
class Frame(Generic[K]):
    """The remote entities as rendered at one instant."""

    time: float  # the server time rendered: now + offset - delay, never going backwards
    entities: dict[K, dict[str, Any]]
    mode: Mode  # "frozen": past the newest snapshot by more than the extrapolation cap
    depth: int  # snapshots buffered newer than ``time``: 0 means running on extrapolation
    delay: float  # how far behind the server's present, as the clock offset has it


_Snapshot = tuple[float, dict[Any, dict[str, Any]]]


class Interpolator(Generic[K]):
    """A snapshot buffer for remote entities keyed by ``K``, sampled at any ``now``.

    ``push`` each snapshot as it arrives (server time, entities, local receive
    time) and ``sample`` once per rendered frame; both take the local clock in
    seconds, any origin. ``snap`` (world units, None: never) is the jump of an
    entity's :data:`LINEAR` fields between two snapshots taken for a teleport.
    """

    def __init__(self, layout: Layout, *, interval: float, bounds: DelayBounds = DelayBounds(),
                 extrapolate: float = DEFAULT_EXTRAPOLATE, capacity: int = DEFAULT_CAPACITY,
                 snap: float | None = None) -> None:
        if capacity < 2:
            raise ValueError(f"an interpolation buffer needs room for two snapshots, "
                             f"got capacity {capacity}")
        self.layout = layout
        self.interval = interval
        self.bounds = bounds
        self.extrapolate = extrapolate
        self.snap = snap
        self.jitter = 0.0
        self.delay = adaptive_delay(interval, 0.0, bounds)
        self._buffer: deque[_Snapshot] = deque(maxlen=capacity)
        # (received, t - received), t - received decreasing: the front is the offset
        self._offsets: deque[tuple[float, float]] = deque()
        self._transit: float | None = None
        self._now: float | None = None
        self._lead: float | None = None  # render time - now, slewed
        self._time: float | None = None  # the last render time: the next is not earlier

    @property
    def target_delay(self) -> float:
        """The delay the current jitter asks for; :attr:`delay` moves towards it."""
        return adaptive_delay(self.interval, self.jitter, self.bounds)

    @property
    def margin(self) -> float:
        """The most the render time can trail the newest snapshot (the longest delay) plus
        run past it (the extrapolation cap): a clock further off is another clock."""
        return self.bounds.maximum + self.extrapolate

    def push(self, t: float, entities: Mapping[K, Mapping[str, Any]], received: float) -> bool:
        """Buffer the snapshot of server time ``t`` received at ``received``.

        False, and nothing changes, if it is not newer than the newest one
        (a duplicate, or overtaken on the way), unless it is older by more than
        :attr:`margin`: a new timeline, which the buffer, the clock offset, the
        jitter estimate and the render time start over from.
        """
        if self._buffer and t <= self._buffer[-1][0]:
            if self._buffer[-1][0] - t <= self.margin:
                return False
            self._buffer.clear()
            self._offsets.clear()
            self._transit = self._lead = self._time = None
            self.jitter = 0.0
        self._buffer.append((t, {key: dict(fields) for key, fields in entities.items()}))
        transit = received - t
        if self._transit is not None:
            self.jitter = jitter_step(self.jitter, transit - self._transit)
        self._transit = transit
        while self._offsets and self._offsets[-1][1] <= -transit:
            self._offsets.pop()
        self._offsets.append((received, -transit))
        while self._offsets[0][0] <= received - OFFSET_WINDOW:
            self._offsets.popleft()
        return True

    def sample(self, now: float) -> Frame[K]:
        """The entities as rendered at ``now``; call it once per frame, ``now`` not decreasing."""
        elapsed = 0.0 if self._now is None else max(now - self._now, 0.0)
        self._now = now if self._now is None else max(now, self._now)
        if not self._buffer:
            return Frame(now - self.delay, {}, "empty", 0, self.delay)
        offset = self._offsets[0][1]
        target = offset - self.target_delay
        lead = self._lead
        if lead is None or abs(target - lead) > self.margin:
            lead = target  # the first frame, or another clock: stepped
        else:
            step = SLEW * elapsed
            lead += min(max(target - lead, -step), step)
        time = now + lead
        if self._time is not None and time < self._time:  # a step back: held meanwhile
            time, lead = self._time, self._time - now
        self._lead, self._time = lead, time
        self.delay = offset - lead
        buffer = self._buffer
        while len(buffer) > 2 and buffer[1][0] <= time:  # keep one at or before `time`
            buffer.popleft()
        t0, first = buffer[0]
        if time < t0:  # not filled yet: the oldest one as it is
            return self._frame(time, first, first, 0.0, "interpolated", len(buffer))
        if len(buffer) == 1:  # nothing to extrapolate from: held
            return self._beyond(time, t0, first, first, 1.0)
        t1, second = buffer[1]
        if time < t1:
            return self._frame(time, first, second, (time - t0) / (t1 - t0), "interpolated",
                               len(buffer) - 1)
        # both at or before `time`, so these are the newest two
        return self._beyond(time, t1, first, second,
                            (min(time, t1 + self.extrapolate) - t0) / (t1 - t0))

    def _beyond(self, time: float, newest: float, older: dict[Any, dict[str, Any]],
                latest: dict[Any, dict[str, Any]], t: float) -> Frame[K]:
        mode: Mode = "extrapolated" if time - newest <= self.extrapolate else "frozen"
        return self._frame(time, older, latest, t, mode, 0)

    def _frame(self, time: float, a: dict[K, dict[str, Any]], b: dict[K, dict[str, Any]],
               t: float, mode: Mode, depth: int) -> Frame[K]:
        """Entities in both blended at ``t``; only in ``b``: it appeared; only in ``a``: gone."""
        entities = {key: self._blend(a[key], fields, t) if key in a else dict(fields)
                    for key, fields in b.items()}
        return Frame(time, entities, mode, depth, self.delay)

    def _blend(self, a: dict[str, Any], b: dict[str, Any], t: float) -> dict[str, Any]:
        if self.snap is not None and t != 1 and linear_distance(self.layout, a, b) > self.snap:
            t = 0.0 if t < 1 else 1.0  # teleported: as STEP, never extrapolated across
        return {name: self.layout.get(name, STEP).lerp(a[name], value, t) if name in a else value
                for name, value in b.items()}
