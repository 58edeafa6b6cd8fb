"""The netcode numbers a game can show its player: one accumulator, no I/O.

:class:`NetcodeMetrics` is fed by the game's netcode as things happen (a
snapshot arrived, inputs were sent and acknowledged, a reconciliation, a
rendered frame) and :meth:`NetcodeMetrics.read` joins them with the
connection's own :class:`~rtctl.client.netstats.NetSnapshot` (RTT, jitter,
bandwidth) into one :class:`NetcodeSnapshot`, what a network graph or a
"connection quality" icon is drawn from. The shares follow the network now,
not since the join: they are of the last :data:`RECENT` seconds (of the local
clock the game passes as ``now``, the one its frames run on), or of the last
:data:`RECENT_FRAMES` rendered frames, that many seconds at 30 frames/s.

* **snapshot age**: how old the newest snapshot is now: its age on arrival (the
  server's send time to this client's receipt, which needs the two clocks in
  step: same machine, NTP) plus the time since it arrived, so the figure grows
  while nothing comes. A snapshot without a send time is taken to have been on
  the way as long as the last one that had one;
* **snapshot loss**: of the snapshots that arrived in the last :data:`RECENT`
  seconds and the ticks missing before each, the share missing: ticks that never
  arrived as their own patch (gaps in the tick numbers: lost, or coalesced by a
  gateway that found this client behind). A gap counts once the next snapshot
  shows it; while nothing arrives, the age is what tells;
* **input loss**: of the inputs the server acknowledged in the last
  :data:`RECENT` seconds, those it never processed, from its own count
  (``missed`` in the arena);
* **corrections**: reconciliations that moved the player's predicted present,
  and the last one's size (world units);
* **interpolation**: the buffer's depth ahead of the render time, its delay,
  and how often the renderer ran past the newest snapshot (extrapolated or
  frozen) over the last :data:`RECENT_FRAMES` frames.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from rtctl.client.interpolation import Frame
from rtctl.client.netstats import NetSnapshot, NetStats
from rtctl.client.prediction import Reconciliation

__all__ = ["CORRECTION_EPSILON", "RECENT", "RECENT_FRAMES", "NetcodeMetrics",
           "NetcodeSnapshot"]

CORRECTION_EPSILON = 1e-3  # world units: a smaller change of the present is no correction
RECENT = 3.0  # s the losses are taken over: long enough to read, short enough to follow
RECENT_FRAMES = 90  # frames the extrapolated share is taken over: RECENT at 30 frames/s
_TICKS = "ticks"  # the stream name of snapshot tick numbers in NetStats' gap counter


@dataclass(frozen=True, slots=True, kw_only=True)
class NetcodeSnapshot:
    """Every number at one instant; times in seconds, None before their first sample."""

    rtt: float | None
    jitter: float  # of snapshot arrivals (RFC 3550 §6.4.1), as the interpolator measures it
    bytes_in_per_s: float
    bytes_out_per_s: float
    snapshot_age: float | None  # the newest snapshot's, now
    snapshots: int
    snapshot_loss: float  # recent ticks missed / recent ticks expected
    inputs_sent: int
    inputs_unacked: int
    input_loss: float  # recent inputs never processed / recent inputs acknowledged
    corrections: int
    last_correction: float  # world units
    buffer_depth: int
    delay: float  # of the interpolation
    extrapolated_ratio: float  # of the recent frames, those past the newest snapshot


class NetcodeMetrics:
    """Accumulates what the netcode saw; :meth:`read` turns it into numbers."""

    def __init__(self) -> None:
        self._ticks = NetStats()  # only its sequence-gap counter is used
        self.snapshots = 0
        self._arrived: tuple[float, float] | None = None  # the newest: (age on arrival, at)
        self._missing: deque[tuple[float, int]] = deque()  # recent: (arrived at, ticks missed)
        self.inputs_sent = 0
        self.inputs_acked = 0
        self.inputs_missed = 0
        # (at, acked, missed): the first is the last sample RECENT or more ago, the baseline
        self._acks: deque[tuple[float, int, int]] = deque()
        self.corrections = 0
        self.last_correction = 0.0
        self._recent: deque[bool] = deque(maxlen=RECENT_FRAMES)  # beyond, per recent frame
        self._frame: Frame[str] | None = None

    def snapshot(self, tick: int, age: float | None, *, now: float) -> None:
        """Snapshot number ``tick`` arrived at ``now``, ``age`` seconds after it was sent
        (None: not known). Numbers are consecutive unless one never came on its own: a
        room's state versions (:attr:`~rtctl.client.StateStore.version`), or its ticks when
        every tick is a version."""
        self.snapshots += 1
        gap = self._ticks.observe_sequence(_TICKS, tick)
        self._missing.append((now, 0 if gap is None else gap.missing))
        if age is None and self._arrived is not None:
            age = self._arrived[0]
        if age is not None:
            self._arrived = (age, now)
        self._forget(now)

    def inputs(self, *, sent: int, acked: int, missed: int, now: float) -> None:
        """At ``now``: the last input numbered so far, the last acknowledged, and the
        server's count of inputs it skipped. Counts that fall (the server made the player
        afresh) start the window over."""
        acks = self._acks
        if acks and (acked < acks[-1][1] or missed < acks[-1][2]):
            acks.clear()
        acks.append((now, acked, missed))
        self.inputs_sent, self.inputs_acked, self.inputs_missed = sent, acked, missed
        self._forget(now)

    def reconciled(self, result: Reconciliation) -> None:
        if result.correction > CORRECTION_EPSILON:
            self.corrections += 1
            self.last_correction = result.correction

    def rendered(self, frame: Frame[str]) -> None:
        self._recent.append(frame.mode in ("extrapolated", "frozen"))
        self._frame = frame

    def read(self, net: NetSnapshot, *, jitter: float, now: float) -> NetcodeSnapshot:
        """The numbers at ``now``; ``net`` is the connection's, ``jitter`` the
        interpolator's."""
        self._forget(now)
        missing = sum(missed for _, missed in self._missing)
        expected = len(self._missing) + missing
        _, acked, missed = self._acks[0] if self._acks else (now, 0, 0)
        acked, missed = self.inputs_acked - acked, self.inputs_missed - missed
        arrived = self._arrived
        frame = self._frame
        return NetcodeSnapshot(
            rtt=net.srtt, jitter=jitter, bytes_in_per_s=net.bytes_in_per_s,
            bytes_out_per_s=net.bytes_out_per_s,
            snapshot_age=None if arrived is None else arrived[0] + now - arrived[1],
            snapshots=self.snapshots,
            snapshot_loss=missing / expected if expected else 0.0,
            inputs_sent=self.inputs_sent,
            inputs_unacked=self.inputs_sent - self.inputs_acked,
            input_loss=missed / acked if acked else 0.0,
            corrections=self.corrections, last_correction=self.last_correction,
            buffer_depth=frame.depth if frame is not None else 0,
            delay=frame.delay if frame is not None else 0.0,
            extrapolated_ratio=sum(self._recent) / len(self._recent) if self._recent else 0.0)

    def _forget(self, now: float) -> None:
        """Drop what is older than the window, keeping the input counts' baseline."""
        since = now - RECENT
        while self._missing and self._missing[0][0] <= since:
            self._missing.popleft()
        while len(self._acks) > 1 and self._acks[1][0] <= since:
            self._acks.popleft()
