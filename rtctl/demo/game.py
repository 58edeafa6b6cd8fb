"""The demo arena's rules: a small top-down shooter, deterministic to the bit.

Players move on a :data:`WIDTH` × :data:`HEIGHT` plane and shoot along their
aim. The server's room (:mod:`rtctl.demo.room`) owns the truth; each client
predicts its own player with the same :func:`move` the server runs, so the
two compute the same float32 values from the same inputs (Gambetta,
"Fast-Paced Multiplayer (Part II): Client-Side Prediction and Server
Reconciliation"). This module is pure and loads no server code: a game
client imports it as the server does.

An input is one frame of a player's intent: a direction on each axis (-1, 0
or 1), an aim angle, whether the trigger is held, and ``view``, the server
tick the player was looking at when it fired (the remote players' render
time, in ticks), with which the server rewinds its targets (lag
compensation). On the wire an input is a list ``[seq, dx, dy, aim, fire,
view]`` (``fire`` 0 or 1), and ``state.input {room, data: {"inputs": [...]}}``
carries the last few unacknowledged ones, oldest first, so one lost message
costs nothing.

Each input moves its player by ``SPEED / TICK_RATE`` (diagonals as fast as
straight lines), clamped to the walls, every coordinate rounded to float32 as
the state holds it. So the position after input *n* depends on nothing but
the position after *n* − 1 and input *n*: not on when the server processed it,
nor on other players (players pass through one another). Only the server's
own events move a player otherwise: a respawn after being shot down.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

from rtctl.state import Schema, float32, float64, uint8, uint16, uint32
from rtctl.state.types import FLOAT32

__all__ = [
    "AIM_DECIMALS",
    "DAMAGE",
    "HEIGHT",
    "INPUT_FIELDS",
    "MAX_HP",
    "MAX_SEQ",
    "RADIUS",
    "RANGE",
    "RELOAD_TICKS",
    "SPEED",
    "TELEPORT",
    "TICK_RATE",
    "VIEW_DECIMALS",
    "WIDTH",
    "ArenaState",
    "Body",
    "Input",
    "Player",
    "body_of",
    "hit",
    "move",
]

TICK_RATE = 30  # Hz: inputs per second per player, and the server's ticks
WIDTH, HEIGHT = 640.0, 360.0  # world units
RADIUS = 12.0  # a player is a disc this wide (world units)
SPEED = 150.0  # world units per second
RANGE = 400.0  # how far a shot reaches
DAMAGE = 34  # three hits take a full player down
MAX_HP = 100
RELOAD_TICKS = 10  # a player fires at most once per this many ticks (3 shots/s at 30 Hz)
TELEPORT = 8 * RADIUS  # a move this long between two ticks is a respawn, never motion
INPUT_FIELDS = "[seq, dx, dy, aim, fire, view]"
MAX_SEQ = 0xFFFF_FFFF  # the state's ack is a uint32: 4.5 years of inputs at 30 Hz
AIM_DECIMALS = 4  # radians: 0.006 degrees, finer than any screen shows
VIEW_DECIMALS = 2  # ticks


class Player(Schema):
    x: float32
    y: float32
    angle: float32  # aim, radians in (-π, π]
    hp: uint8
    score: uint16
    ack: uint32  # the last input of this player the server processed (0: none yet)
    missed: uint32  # inputs the server never got: skipped over when a later one came
    shot: uint32  # the tick of this player's last shot (0: none)
    spawns: uint32  # times placed by the server (joined, respawned): a change is a teleport


class ArenaState(Schema):
    tick: uint32  # the server's tick count: the snapshot's time is tick / tick_rate
    sent_at: float64  # the server's Unix time (ms) when this tick was committed
    players: dict[str, Player]


class Body(NamedTuple):
    """What a client predicts of its own player."""

    x: float
    y: float
    angle: float


class Input(NamedTuple):
    """One frame of a player's intent (the module docstring has the wire form)."""

    dx: int = 0
    dy: int = 0
    aim: float = 0.0
    fire: bool = False
    view: float = 0.0

    def quantized(self) -> Input:
        """The input as it is sent: aim to 1/10,000 rad, view to 1/100 tick, so that each
        prints in a few digits and the server reads back exactly what was predicted with."""
        return self._replace(aim=round(self.aim, AIM_DECIMALS),
                             view=round(self.view, VIEW_DECIMALS))

    def to_wire(self, seq: int) -> list[Any]:
        return [seq, self.dx, self.dy, self.aim, int(self.fire), self.view]

    @classmethod
    def from_wire(cls, item: Any) -> tuple[int, Input]:
        """``[seq, dx, dy, aim, fire, view]`` → ``(seq, Input)``; ValueError says what is
        wrong with it."""
        if not isinstance(item, list) or len(item) != 6:
            raise ValueError(f"an input is a list {INPUT_FIELDS}, not {item!r}")
        seq, dx, dy, aim, fire, view = item
        if not _integer(seq) or not 1 <= seq <= MAX_SEQ:
            raise ValueError(f"an input's seq is an integer from 1 to {MAX_SEQ}, not {seq!r}")
        if not (_integer(dx) and _integer(dy) and dx in (-1, 0, 1) and dy in (-1, 0, 1)):
            raise ValueError(f"an input's dx and dy are -1, 0 or 1, not {dx!r}, {dy!r}")
        if not (_number(aim) and math.isfinite(aim)):
            raise ValueError(f"an input's aim is a finite number (radians), not {aim!r}")
        if fire not in (0, 1) or isinstance(fire, float):
            raise ValueError(f"an input's fire is 0 or 1, not {fire!r}")
        if not (_number(view) and math.isfinite(view) and view >= 0):
            raise ValueError(f"an input's view is a tick (a number from 0), not {view!r}")
        return seq, cls(dx, dy, float(aim), bool(fire), float(view))


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _f32(value: float) -> float:
    held: float = FLOAT32.check(value)
    return held


_STRAIGHT = SPEED / TICK_RATE
_DIAGONAL = _STRAIGHT / math.sqrt(2)


def move(body: Body, command: Input) -> Body:
    """The body after one input: the server's step and the client's prediction alike."""
    step = _DIAGONAL if command.dx and command.dy else _STRAIGHT
    x = min(max(body.x + command.dx * step, RADIUS), WIDTH - RADIUS)
    y = min(max(body.y + command.dy * step, RADIUS), HEIGHT - RADIUS)
    angle = math.remainder(command.aim, math.tau)  # (-π, π], as the schema documents
    return Body(_f32(x), _f32(y), _f32(angle))


def body_of(player: Player) -> Body:
    return Body(player.x, player.y, player.angle)


def hit(origin: tuple[float, float], angle: float,
        targets: Sequence[tuple[str, float, float]]) -> str | None:
    """The first target (name, x, y) a shot from ``origin`` along ``angle`` hits within
    :data:`RANGE`, or None: the ray against each target's disc, nearest first."""
    ux, uy = math.cos(angle), math.sin(angle)
    best: tuple[float, str] | None = None
    for name, x, y in targets:
        ox, oy = x - origin[0], y - origin[1]
        along = ox * ux + oy * uy  # distance along the ray to the point nearest the centre
        if along < 0:
            continue
        miss = ox * uy - oy * ux  # that point's distance from the centre
        if abs(miss) > RADIUS:
            continue
        reach = along - math.sqrt(RADIUS * RADIUS - miss * miss)
        if reach <= RANGE and (best is None or (reach, name) < best):
            best = (reach, name)
    return None if best is None else best[1]
