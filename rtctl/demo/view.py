"""One player's netcode in the arena, without I/O: inputs and snapshots in, a scene out.

:class:`PlayerView` is what a game client runs each frame (driven by
:class:`~rtctl.demo.player.ArenaPlayer`, or by a test with made-up times):

* :meth:`PlayerView.command`: the frame's input moves the player's own body at
  once (:class:`~rtctl.client.Predictor`) and returns the inputs to send, the
  newest :data:`REDUNDANCY` unacknowledged ones, so a lost message costs nothing;
* :meth:`PlayerView.snapshot`: an authoritative state arrived: the own body is
  reconciled with it (rewound to the server's, the later inputs re-applied, the
  visible jump smoothed), the others go into the interpolation buffer;
* :meth:`PlayerView.render`: the scene to draw now: the own body predicted and
  the others interpolated ``delay`` behind (Valve, Gambetta, Fiedler), and beside
  it what a client without either would draw: the own body and the others as the
  newest snapshot has them.

Both pictures are made from the same snapshots at the same instants, so one run
measures what prediction and interpolation are worth (``rtctl bench --scenario
arena``); :attr:`PlayerView.predict` and :attr:`PlayerView.interpolate` say which
one the player looks at (and so which tick its shots are judged against).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from rtctl.client.interpolation import ANGLE, LINEAR, STEP, DelayBounds, Frame, Interpolator
from rtctl.client.netcode import NetcodeMetrics
from rtctl.client.prediction import DEFAULT_SMOOTHING, Predictor, Reconciliation
from rtctl.demo.game import TELEPORT, TICK_RATE, ArenaState, Body, Input, body_of, move

__all__ = ["LAYOUT", "MAX_UNACKED", "REDUNDANCY", "PlayerView", "Scene", "Seen"]

LAYOUT = {"x": LINEAR, "y": LINEAR, "angle": ANGLE, "hp": STEP}
REDUNDANCY = 4  # inputs per message: 4 messages lost in a row (133 ms at 30 Hz) cost nothing
MAX_UNACKED = 256  # inputs remembered for their delay: 8.5 s at 30 Hz, the predictor's reach


def _fields(body: Body) -> dict[str, Any]:
    return {"x": body.x, "y": body.y, "angle": body.angle}


@dataclass(frozen=True, slots=True)
class Seen:
    """What one snapshot did."""

    tick: int
    age: float | None  # seconds from the server's send to its receipt here
    reconciliation: Reconciliation | None
    acked: list[tuple[int, float]] = field(default_factory=list)  # (seq, made at): new acks
    respawned: bool = False  # the server placed the own player anew: a teleport, no error


@dataclass(frozen=True, slots=True)
class Scene:
    """What to draw at ``now``, with and without prediction and interpolation."""

    now: float
    own: dict[str, Any] | None  # predicted and smoothed; None until the first snapshot
    own_server: dict[str, Any] | None  # the newest authoritative own player
    remotes: Frame[str]  # the others, interpolated
    latest: dict[str, dict[str, Any]]  # the others as the newest snapshot has them
    latest_time: float  # the server time a client drawing ``latest`` believes it shows
    tick: int  # of the newest snapshot

    def visible(self, *, predict: bool, interpolate: bool
                ) -> tuple[dict[str, Any] | None, dict[str, dict[str, Any]]]:
        """The own player and the others as the player sees them with these switches."""
        return (self.own if predict else self.own_server,
                self.remotes.entities if interpolate else self.latest)


class PlayerView:
    """The netcode of player ``name`` (its user id) in one arena."""

    def __init__(self, name: str, *, smoothing: float = DEFAULT_SMOOTHING,
                 bounds: DelayBounds | None = None) -> None:
        self.name = name
        self.predict = True
        self.interpolate = True
        self.metrics = NetcodeMetrics()
        self.interpolator: Interpolator[str] = Interpolator(
            LAYOUT, interval=1 / TICK_RATE, bounds=bounds or DelayBounds(), snap=TELEPORT)
        self.predictor: Predictor[Body, Input] | None = None
        self._smoothing = smoothing
        self._base = 0  # the wire number of the predictor's input 0 (a new player restarts it)
        # (wire seq, when it was made) of the inputs not yet acknowledged, oldest first
        self._made: deque[tuple[int, float]] = deque(maxlen=MAX_UNACKED)
        self._acked = 0
        self._spawns = 0  # the own player's, as last seen
        self._missed = 0  # its inputs the server never got, as last seen
        self._fresh = False  # the connection dropped: the next own player is a new one
        self._own: dict[str, Any] | None = None
        self._latest: dict[str, dict[str, Any]] = {}
        self._latest_at = (0.0, 0.0)  # (server time, local time) of the newest snapshot
        self._tick = 0
        self._view = 0.0  # the tick the player last looked at: what its shots are judged on

    def command(self, command: Input, now: float) -> list[list[Any]]:
        """Apply this frame's input; the wire inputs to send (empty before the first
        snapshot: there is nothing to move yet)."""
        predictor = self.predictor
        if predictor is None:
            return []
        command = command._replace(view=self._view).quantized()
        seq = predictor.apply(command)
        self._made.append((self._base + seq, now))
        self.metrics.inputs(sent=self._base + seq, acked=max(self._acked, self._base),
                            missed=self._missed, now=now)
        return [item.to_wire(self._base + n) for n, item in predictor.unacked(REDUNDANCY)]

    def snapshot(self, state: ArenaState, now: float, wall_ms: float, *,
                 version: int | None = None) -> Seen:
        """An authoritative state, received at ``now`` (local seconds) and ``wall_ms``
        (this machine's Unix time in ms, for the snapshot's age). ``version`` (the store's)
        tells a lost patch from ticks the server ran together after a stall; without it
        the ticks are counted."""
        tick = state.tick
        age = (wall_ms - state.sent_at) / 1000 if state.sent_at else None
        self.metrics.snapshot(tick if version is None else version, age, now=now)
        server_time = tick / TICK_RATE
        self._latest = {name: {"x": p.x, "y": p.y, "angle": p.angle, "hp": p.hp}
                        for name, p in state.players.items() if name != self.name}
        self.interpolator.push(server_time, self._latest, now)
        self._latest_at, self._tick = (server_time, now), tick
        own = state.players.get(self.name)
        if own is None:
            self._own = None
            return Seen(tick, age, None)
        self._own = {"x": own.x, "y": own.y, "angle": own.angle, "hp": own.hp}
        respawned = own.spawns != self._spawns and self.predictor is not None
        self._spawns, self._missed = own.spawns, own.missed
        if self.predictor is None or self._fresh or own.ack < self._acked:  # a new player
            self._restart(body_of(own), own.ack)
            respawned = False
        assert self.predictor is not None
        acked = []
        while self._made and self._made[0][0] <= own.ack:
            acked.append(self._made.popleft())
        self._acked = max(self._acked, own.ack)
        self.metrics.inputs(sent=self._base + self.predictor.seq,
                            acked=max(self._acked, self._base),
                            missed=own.missed, now=now)
        try:
            result = self.predictor.reconcile(max(own.ack - self._base, 0), body_of(own), now)
        except ValueError:  # RollbackTooFar: an outage outlasted the inputs kept; start over
            self._restart(body_of(own), own.ack)
            return Seen(tick, age, None, acked)
        if result is not None:
            self.metrics.reconciled(result)
        return Seen(tick, age, result, acked, respawned)

    def lost(self) -> None:
        """The connection dropped: the room forgot this player, and the next one it shows
        is new (predicted afresh from where the server places it)."""
        self._fresh = True

    def _restart(self, body: Body, ack: int) -> None:
        """Predict afresh from ``body``: inputs go on being numbered after the last one
        sent, so a server that kept the player acknowledges the new ones in order."""
        sent = self._base + (self.predictor.seq if self.predictor is not None else 0)
        self._base = max(sent, ack)
        self._acked = ack
        self._fresh = False
        self._made.clear()
        self.predictor = Predictor(move, body, layout=LAYOUT, fields=_fields,
                                   smoothing=self._smoothing, snap=TELEPORT)

    def render(self, now: float) -> Scene:
        """The scene at ``now``; what the player looks at decides its next inputs' view."""
        frame = self.interpolator.sample(now)
        self.metrics.rendered(frame)
        server_time, received = self._latest_at
        latest_time = server_time + (now - received)  # a newest snapshot shown as "now"
        self._view = max(0.0, (frame.time if self.interpolate else server_time) * TICK_RATE)
        own = self.predictor.view(now) if self.predictor is not None else None
        if own is not None and self._own is not None:
            own["hp"] = self._own["hp"]
        return Scene(now=now, own=own, own_server=self._own, remotes=frame,
                     latest=self._latest, latest_time=latest_time, tick=self._tick)
