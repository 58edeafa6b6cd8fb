"""The netcode numbers a game can show its player: one accumulator, no I/O.

:class:`NetcodeMetrics` is fed by the game's netcode as things happen (a
snapshot arrived, inputs were sent and acknowledged, a reconciliation, a
rendered frame) and :meth:`NetcodeMetrics.read` joins them with the
connection's own :class:`~rtctl.client.netstats.NetSnapshot` (RTT, jitter,
bandwidth) into one :class:`NetcodeSnapshot`, what a network graph or a
"connection quality" icon is drawn from:

* **snapshot age**: the server's send time to this client's receipt (needs the
  two clocks in step: same machine, NTP);
* **snapshot loss**: ticks that never arrived as their own patch (gaps in the
  tick numbers: lost, or coalesced by a gateway that found this client behind);
* **input loss**: inputs the server never processed, from its own count
  (``missed`` in the arena) over those it acknowledged;
* **corrections**: reconciliations that moved the player's predicted present,
  and the last one's size (world units);
* **interpolation**: the buffer's depth ahead of the render time, its delay,
  and how often the renderer ran past the newest snapshot (extrapolated or frozen)
  over the last :data:`RECENT_FRAMES` frames, so the figure follows the network now
  rather than since the join.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from rtctl.client.interpolation import Frame
from rtctl.client.netstats import NetSnapshot, NetStats
from rtctl.client.prediction import Reconciliation

__all__ = ["CORRECTION_EPSILON", "RECENT_FRAMES", "NetcodeMetrics", "NetcodeSnapshot"]

CORRECTION_EPSILON = 1e-3  # world units: a smaller change of the present is no correction
RECENT_FRAMES = 90  # frames the extrapolated share is taken over: 3 s at 30 Hz
_TICKS = "ticks"  # the stream name of snapshot tick numbers in NetStats' gap counter


@dataclass(frozen=True, slots=True, kw_only=True)
class NetcodeSnapshot:
    """Every number at one instant; times in seconds, None before their first sample."""

    rtt: float | None
    jitter: float  # of snapshot arrivals (RFC 3550 §6.4.1), as the interpolator measures it
    bytes_in_per_s: float
    bytes_out_per_s: float
    snapshot_age: float | None
    snapshots: int
    snapshot_loss: float  # ticks missed / ticks expected
    inputs_sent: int
    inputs_unacked: int
    input_loss: float  # inputs never processed / inputs acknowledged
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
        self.snapshot_age: float | None = None
        self.inputs_sent = 0
        self.inputs_acked = 0
        self.inputs_missed = 0
        self.corrections = 0
        self.last_correction = 0.0
        self._recent: deque[bool] = deque(maxlen=RECENT_FRAMES)  # beyond, per recent frame
        self._recent_beyond = 0
        self._frame: Frame[str] | None = None

    def snapshot(self, tick: int, age: float | None) -> None:
        """A snapshot of server tick ``tick`` arrived, ``age`` seconds after it was sent."""
        self.snapshots += 1
        self._ticks.observe_sequence(_TICKS, tick)
        if age is not None:
            self.snapshot_age = age

    def inputs(self, *, sent: int, acked: int, missed: int) -> None:
        """The last input numbered so far, the last acknowledged, and the server's count of
        inputs it skipped."""
        self.inputs_sent, self.inputs_acked, self.inputs_missed = sent, acked, missed

    def reconciled(self, result: Reconciliation) -> None:
        if result.correction > CORRECTION_EPSILON:
            self.corrections += 1
            self.last_correction = result.correction

    def rendered(self, frame: Frame[str]) -> None:
        beyond = frame.mode in ("extrapolated", "frozen")
        if len(self._recent) == RECENT_FRAMES:
            self._recent_beyond -= self._recent[0]
        self._recent.append(beyond)
        self._recent_beyond += beyond
        self._frame = frame

    def read(self, net: NetSnapshot, *, jitter: float) -> NetcodeSnapshot:
        """The numbers now; ``net`` is the connection's, ``jitter`` the interpolator's."""
        ticks = self._ticks.snapshot(0.0)
        expected = self.snapshots + ticks.missing
        frame = self._frame
        return NetcodeSnapshot(
            rtt=net.srtt, jitter=jitter, bytes_in_per_s=net.bytes_in_per_s,
            bytes_out_per_s=net.bytes_out_per_s, snapshot_age=self.snapshot_age,
            snapshots=self.snapshots,
            snapshot_loss=ticks.missing / expected if expected else 0.0,
            inputs_sent=self.inputs_sent,
            inputs_unacked=self.inputs_sent - self.inputs_acked,
            input_loss=self.inputs_missed / self.inputs_acked if self.inputs_acked else 0.0,
            corrections=self.corrections, last_correction=self.last_correction,
            buffer_depth=frame.depth if frame is not None else 0,
            delay=frame.delay if frame is not None else 0.0,
            extrapolated_ratio=self._recent_beyond / len(self._recent) if self._recent else 0.0)
