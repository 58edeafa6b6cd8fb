"""``drift``: a stateful room that moves by itself, for benchmarks, demos and tests.

Its state is the shape of the issue's anchor workload (Colyseus' schema
benchmark): entities with ``x, y: float32``, ``hp: uint8`` and an 8-letter
``name``. Every tick ``movers`` entities move by up to ±5 units on each axis,
one entity's hp changes half the time, and about one tick in ten an entity is
added or removed. Seeded, so two runs send the same bytes.

It is not registered unless asked for: ``rtctl serve --room-type drift`` (or
``builtin_services(room_types={"drift": DriftRoom})``). Options of the first
``room.join``: ``entities`` (default 100, at most 10,000), ``movers``
(default 10), ``tick_rate`` (Hz, default 20, at most 120), ``seed``, and
``stamp`` (default false): true makes the state a :class:`StampedArena`, whose
``sent_at`` is set to the server's Unix time in ms at the end of every tick, just
before the tick's changes are committed, so a client can tell how long a version
took to reach it (``rtctl bench --scenario state``). The stamp changes every tick,
so a stamped room sends a version every tick, each a few bytes longer.
"""

from __future__ import annotations

import random
import string
import time
from collections.abc import Mapping
from typing import Any

from rtctl.exceptions import InvalidParams
from rtctl.services.state_room import StateRoom
from rtctl.state import Schema, float32, float64, uint8

__all__ = ["LIMITS", "Arena", "DriftRoom", "Entity", "StampedArena"]

# Each integer option's (lowest, highest, default).
LIMITS = {"entities": (0, 10_000, 100), "movers": (0, 10_000, 10),
          "tick_rate": (1, 120, 20), "seed": (0, 2**63 - 1, 11)}


class Entity(Schema):
    x: float32
    y: float32
    hp: uint8
    name: str


class Arena(Schema):
    entities: dict[str, Entity]


class StampedArena(Arena):
    sent_at: float64  # the server's Unix time (ms) of the tick that made this version


def _option(options: Mapping[str, Any], name: str) -> int:
    low, high, default = LIMITS[name]
    value = options.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidParams(f"Invalid params: options.{name} must be an integer from {low} "
                            f"to {high}", {name: value})
    return value


class DriftRoom(StateRoom[Arena]):
    """Entities that drift, get hurt, arrive and leave, with no player input needed."""

    schema = Arena

    def on_create(self) -> None:
        unknown = set(self.options) - {*LIMITS, "stamp"}
        if unknown:
            raise InvalidParams(f"Invalid params: unknown options {sorted(unknown)}; a drift "
                                f"room takes {sorted({*LIMITS, 'stamp'})}",
                                {"options": sorted(unknown)})
        stamp = self.options.get("stamp", False)
        if not isinstance(stamp, bool):
            raise InvalidParams("Invalid params: options.stamp must be true or false",
                                {"stamp": stamp})
        if stamp:  # before the encoder is made (it is made after on_create)
            self.state = StampedArena()
        self.tick_rate = float(_option(self.options, "tick_rate"))
        self._movers = _option(self.options, "movers")
        self._rng = random.Random(_option(self.options, "seed"))
        self._next = 0
        for _ in range(_option(self.options, "entities")):
            self._add()

    def on_restore(self) -> None:
        """Resumed from a snapshot: new entities are numbered after those it holds."""
        numbers = [int(key[1:]) for key in self.state.entities if key[1:].isdigit()]
        self._next = max(numbers, default=-1) + 1

    def _add(self) -> None:
        rng = self._rng
        self.state.entities[f"e{self._next}"] = Entity(
            x=rng.uniform(0, 1000), y=rng.uniform(0, 1000), hp=rng.randrange(256),
            name="".join(rng.choices(string.ascii_letters, k=8)))
        self._next += 1

    def on_tick(self, dt: float) -> None:
        rng, entities = self._rng, self.state.entities
        keys = list(entities)
        for key in rng.sample(keys, min(self._movers, len(keys))):
            entity = entities[key]
            entity.x += rng.uniform(-5, 5)
            entity.y += rng.uniform(-5, 5)
        if keys and rng.random() < 0.5:
            entities[rng.choice(keys)].hp = rng.randrange(256)
        if rng.random() < 0.05:
            self._add()
        if keys and rng.random() < 0.05:
            del entities[rng.choice(keys)]
        if isinstance(self.state, StampedArena):
            self.state.sent_at = time.time() * 1000
