"""Bot brains for the arena: players that play by themselves, seeded, without I/O.

A :class:`Brain` looks at the scene its player sees (what a human would see:
its own body predicted, the others interpolated) and returns the frame's
:class:`~rtctl.demo.game.Input`: it walks towards a waypoint, picks a new one
when it gets there or after a while, aims at the nearest other player and
fires when one is in range. Now and then it stands still for a moment, with
its aim fixed: those are the moments when nothing is pending and the
prediction must equal the server's state exactly (docs/netcode.md).
"""

from __future__ import annotations

import math
import random
from typing import Any

from rtctl.demo.game import HEIGHT, RADIUS, RANGE, SPEED, TICK_RATE, WIDTH, Input

__all__ = ["Brain"]

_ARRIVED = SPEED / TICK_RATE  # within one step of the waypoint
_WANDER = (1.0, 4.0)  # seconds before a new waypoint, at most
_REST = (0.5, 1.5)  # seconds standing still, now and then
_REST_CHANCE = 0.15  # of resting instead of taking a new waypoint
_AIMED = 0.2  # radians: close enough to fire


class Brain:
    """One bot's decisions; the same seed and scenes give the same inputs."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._waypoint: tuple[float, float] | None = None
        self._frames_left = 0  # until a new plan
        self._resting = False
        self._aim = self._rng.uniform(-math.pi, math.pi)

    def decide(self, own: dict[str, Any] | None, others: dict[str, dict[str, Any]]) -> Input:
        """The next input, given the own player's fields and the others' (as drawn)."""
        if own is None:
            return Input()
        x, y = own["x"], own["y"]
        if self._frames_left <= 0 or (self._waypoint is not None and math.dist(
                (x, y), self._waypoint) < _ARRIVED):
            self._plan()
        self._frames_left -= 1
        if self._resting:
            return Input(aim=self._aim)
        target = min(((math.dist((x, y), (o["x"], o["y"])), o["x"], o["y"])
                      for o in others.values()), default=None)
        fire = False
        if target is not None:
            self._aim = math.atan2(target[2] - y, target[1] - x)
            fire = target[0] <= RANGE and self._rng.random() < 0.5
        assert self._waypoint is not None
        dx = _sign(self._waypoint[0] - x)
        dy = _sign(self._waypoint[1] - y)
        return Input(dx=dx, dy=dy, aim=self._aim, fire=fire and abs(
            math.remainder(self._aim - own["angle"], math.tau)) < _AIMED)

    def _plan(self) -> None:
        rng = self._rng
        self._resting = rng.random() < _REST_CHANCE
        self._frames_left = round(rng.uniform(*(_REST if self._resting else _WANDER))
                                  * TICK_RATE)
        self._waypoint = (rng.uniform(RADIUS, WIDTH - RADIUS),
                          rng.uniform(RADIUS, HEIGHT - RADIUS))


def _sign(delta: float) -> int:
    return 0 if abs(delta) < _ARRIVED else (1 if delta > 0 else -1)
