"""The seeded state-sync workload of issue 11, shared by every encoder it measures.

The issue anchors its targets on Colyseus' ``@colyseus/schema`` 5.0.34 over "100
entities, 200 ticks, 10 movers per tick at ±5 units, 0–1 hp changes, occasional
add/remove", but the exact shape behind its figures is not published, so this is
the shape chosen here (one ``random.Random(seed)`` draws everything, in this order):

* initial state: ``entities`` entities keyed ``"e0"``, ``"e1"``, ... (new ones
  continue the count: ``"e100"``, ...), each with ``x``, ``y`` uniform in
  [0, 1000), ``hp`` uniform in 0..255 and ``name`` 8 random ASCII letters;
* each tick, in this order:
  - with probability 1/10, one structural change: remove a random entity when
    there are more than ``entities``, add a new one (drawn as above) when there
    are fewer, either with even odds when there are exactly ``entities``; so the
    count stays within one of ``entities``;
  - 10 distinct random movers among the live entities, each ``x += uniform(-5, 5)``
    and ``y += uniform(-5, 5)`` (no clamping: a random walk over 200 ticks drifts
    a few tens of units at most);
  - with probability 1/2, one hp change: a random live entity gets a new hp
    uniform in 0..255 (possibly equal to the old one, as a game would send it).

Every float is rounded to float32 when drawn (``x + dx`` is computed in float64 and
rounded once), so each encoder, Python or Node, is given the same numbers and a
float32 field holds them exactly.

``Workload.to_json()`` is the form ``colyseus/replay.mjs`` reads; ``apply`` plays a
tick onto an ``Arena`` and ``apply_plain`` onto the plain-dict state (the shape of
``Arena.to_dict()``) that the JSON merge-patch baseline diffs. ``Arena`` and ``Entity``
are the ``drift`` room's schema (``rtctl.services.drift``, the same anchor shape, for a
live room); ``replay.mjs`` declares the same fields for Colyseus.
"""

from __future__ import annotations

import json
import random
import string
import struct
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from rtctl.services.drift import Arena, Entity

__all__ = [
    "Add",
    "Arena",
    "Entity",
    "HpChange",
    "Move",
    "Op",
    "Remove",
    "Workload",
    "apply",
    "apply_plain",
    "workload",
]

MOVERS = 10  # entities moved per tick
STEP = 5.0  # a move changes x and y by uniform(-STEP, STEP) each
WORLD = 1000.0  # initial positions are uniform in [0, WORLD)
HP_CHANGE_P = 0.5  # per tick, at most one hp change
STRUCTURAL_P = 0.1  # per tick, at most one add or remove
NAME_LENGTH = 8

Move: TypeAlias = tuple[Literal["move"], str, float, float]
HpChange: TypeAlias = tuple[Literal["hp"], str, int]
Add: TypeAlias = tuple[Literal["add"], str, float, float, int, str]
Remove: TypeAlias = tuple[Literal["remove"], str]
Op: TypeAlias = Move | HpChange | Add | Remove


@dataclass(frozen=True)
class Workload:
    """The initial entities (as ``add`` ops) and each tick's ops, in order."""

    seed: int
    initial: tuple[Add, ...]
    ticks: tuple[tuple[Op, ...], ...]

    def to_json(self) -> str:
        """``{"seed", "initial": [[op, ...], ...], "ticks": [[[op, ...], ...], ...]}``;
        floats print as the shortest text that parses back to the same double, in
        Python and JavaScript alike, so Node sees the float32 values exactly."""
        return json.dumps(
            {"seed": self.seed, "initial": self.initial, "ticks": self.ticks},
            separators=(",", ":"),
        )


def to_float32(value: float) -> float:
    """The float32 nearest ``value``, as a Python float (IEEE 754 round to nearest)."""
    rounded: float = struct.unpack("<f", struct.pack("<f", value))[0]
    return rounded


def workload(seed: int = 11, entities: int = 100, ticks: int = 200) -> Workload:
    """The workload drawn from ``seed`` (see the module docstring for its shape)."""
    if entities <= MOVERS:
        # a remove at exactly `entities` must still leave MOVERS entities to move
        raise ValueError(f"entities must be more than {MOVERS} (the movers per tick)")
    rng = random.Random(seed)
    positions: dict[str, tuple[float, float]] = {}
    next_id = 0

    def add() -> Add:
        nonlocal next_id
        key = f"e{next_id}"
        next_id += 1
        x, y = to_float32(rng.random() * WORLD), to_float32(rng.random() * WORLD)
        hp = rng.randrange(256)
        name = "".join(rng.choices(string.ascii_letters, k=NAME_LENGTH))
        positions[key] = x, y
        return "add", key, x, y, hp, name

    initial = tuple(add() for _ in range(entities))
    played: list[tuple[Op, ...]] = []
    for _ in range(ticks):
        ops: list[Op] = []
        if rng.random() < STRUCTURAL_P:
            grow = len(positions) < entities or (
                len(positions) == entities and rng.random() < 0.5
            )
            if grow:
                ops.append(add())
            else:
                key = rng.choice(list(positions))
                del positions[key]
                ops.append(("remove", key))
        for key in rng.sample(list(positions), MOVERS):
            x, y = positions[key]
            x = to_float32(x + rng.uniform(-STEP, STEP))
            y = to_float32(y + rng.uniform(-STEP, STEP))
            positions[key] = x, y
            ops.append(("move", key, x, y))
        if rng.random() < HP_CHANGE_P:
            ops.append(("hp", rng.choice(list(positions)), rng.randrange(256)))
        played.append(tuple(ops))
    return Workload(seed, initial, tuple(played))


def apply(arena: Arena, ops: tuple[Op, ...]) -> None:
    """Play ``ops`` onto ``arena`` (its change tracking records them)."""
    for op in ops:
        match op:
            case ("move", key, x, y):
                entity = arena.entities[key]
                entity.x = x
                entity.y = y
            case ("hp", key, hp):
                arena.entities[key].hp = hp
            case ("add", key, x, y, hp, name):
                arena.entities[key] = Entity(x=x, y=y, hp=hp, name=name)
            case ("remove", key):
                del arena.entities[key]


def apply_plain(state: dict[str, Any], ops: tuple[Op, ...]) -> None:
    """Play ``ops`` onto the plain-dict state ``{"entities": {key: {...}}}``."""
    entities: dict[str, dict[str, Any]] = state.setdefault("entities", {})
    for op in ops:
        match op:
            case ("move", key, x, y):
                entities[key].update(x=x, y=y)
            case ("hp", key, hp):
                entities[key]["hp"] = hp
            case ("add", key, x, y, hp, name):
                entities[key] = {"x": x, "y": y, "hp": hp, "name": name}
            case ("remove", key):
                del entities[key]
