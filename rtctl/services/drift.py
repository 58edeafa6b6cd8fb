"""``drift``: a stateful room that moves by itself, for benchmarks, demos and tests.

Its state is the shape of the issue's anchor workload (Colyseus' schema
benchmark): entities with ``x, y: float32``, ``hp: uint8`` and an 8-letter
``name``. Every tick ``movers`` entities move by up to ±5 units on each axis,
one entity's hp changes half the time, and about one tick in ten an entity is
added or removed. Seeded, so two runs send the same bytes.

It is not registered unless asked for: ``rtctl serve --room-type drift`` (or
``builtin_services(room_types={"drift": DriftRoom})``). Options of the first
``room.join``: ``entities`` (default 100, at most 10,000), ``movers``
(default 10), ``tick_rate`` (Hz, default 20, at most 120), ``seed``.
"""

from __future__ import annotations

import random
import string
from collections.abc import Mapping
from typing import Any

from rtctl.exceptions import InvalidParams
from rtctl.services.state_room import StateRoom
from rtctl.state import Schema, float32, uint8

__all__ = ["Arena", "DriftRoom", "Entity"]

_LIMITS = {"entities": (0, 10_000, 100), "movers": (0, 10_000, 10),
           "tick_rate": (1, 120, 20), "seed": (0, 2**63 - 1, 11)}


class Entity(Schema):
    x: float32
    y: float32
    hp: uint8
    name: str


class Arena(Schema):
    entities: dict[str, Entity]


def _option(options: Mapping[str, Any], name: str) -> int:
    low, high, default = _LIMITS[name]
    value = options.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidParams(f"Invalid params: options.{name} must be an integer from {low} "
                            f"to {high}", {name: value})
    return value


class DriftRoom(StateRoom[Arena]):
    """Entities that drift, get hurt, arrive and leave, with no player input needed."""

    schema = Arena

    def on_create(self) -> None:
        unknown = set(self.options) - set(_LIMITS)
        if unknown:
            raise InvalidParams(f"Invalid params: unknown options {sorted(unknown)}; a drift "
                                f"room takes {sorted(_LIMITS)}", {"options": sorted(unknown)})
        self.tick_rate = float(_option(self.options, "tick_rate"))
        self._movers = _option(self.options, "movers")
        self._rng = random.Random(_option(self.options, "seed"))
        self._next = 0
        for _ in range(_option(self.options, "entities")):
            self._add()

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
