"""Hybrid logical clocks: last-writer-wins that respects causality across machines.

A stamp is ``(ms, counter, node)``: wall-clock milliseconds, a counter that
breaks ties within a millisecond (and carries causality past a clock that is
behind), and the writer's id as the last tie-break. Stamps compare as tuples.
A write stamped after its writer saw another write always orders after it,
however wrong the two wall clocks are (Kulkarni et al., "Logical Physical
Clocks", 2014, algorithm 2); between unrelated writes, the later wall clock
wins, which is what players expect of "last writer".

Sans-I/O: the wall clock is passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, NamedTuple, TypeAlias

from rtctl.params import Schema

__all__ = ["STAMP_SCHEMA", "HybridClock", "Stamp", "StampParam"]


# What Stamp.from_json accepts: a handler parameter it parses is published (rtctl spec)
# with this schema, not as "anything".
STAMP_SCHEMA: dict[str, Any] = {
    "type": "array", "minItems": 3, "items": False,
    "prefixItems": [{"type": "integer", "minimum": 0}, {"type": "integer", "minimum": 0},
                    {"type": "string"}]}
StampParam: TypeAlias = Annotated[Any, Schema(STAMP_SCHEMA)]


class Stamp(NamedTuple):
    ms: int
    counter: int
    node: str

    def to_json(self) -> list[Any]:
        return [self.ms, self.counter, self.node]

    @classmethod
    def from_json(cls, value: Any) -> Stamp:
        """A stamp from ``[ms, counter, node]``; ValueError names what is wrong."""
        if (not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 3
                or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                           for v in value[:2])
                or not isinstance(value[2], str)):
            raise ValueError(f"a clock stamp is [ms, counter, node] with ms and counter "
                             f"integers ≥ 0 and node a string, not {value!r}")
        return cls(value[0], value[1], value[2])


class HybridClock:
    """One node's hybrid logical clock."""

    def __init__(self, node: str, wall_ms: Callable[[], int]) -> None:
        self.node = node
        self._wall_ms = wall_ms
        self._last = Stamp(0, 0, node)

    def now(self) -> Stamp:
        """A stamp for a local event (a write about to be sent)."""
        wall = self._wall_ms()
        last = self._last
        self._last = (Stamp(wall, 0, self.node) if wall > last.ms
                      else Stamp(last.ms, last.counter + 1, self.node))
        return self._last

    def observe(self, remote: Stamp) -> Stamp:
        """Merge a stamp received from elsewhere; the next :meth:`now` orders after it."""
        wall = self._wall_ms()
        last = self._last
        ms = max(wall, last.ms, remote.ms)
        if ms == last.ms == remote.ms:
            counter = max(last.counter, remote.counter) + 1
        elif ms == last.ms:
            counter = last.counter + 1
        elif ms == remote.ms:
            counter = remote.counter + 1
        else:
            counter = 0
        self._last = Stamp(ms, counter, self.node)
        return self._last
