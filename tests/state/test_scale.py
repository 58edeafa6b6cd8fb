"""10,000-entry maps: they round-trip, and cost grows linearly with what changed.

Work is counted, not timed: the number of Python lines executed (``sys.settrace``
"line" events, loop iterations included) is deterministic, so "ten times the
entries costs at most 11 times the lines" tells linear from quadratic on any
machine; sizes follow from the wire format (docs/state-sync.md).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

from rtctl.state import Decoder, Encoder
from tests.state.schemas import Unit, World, exact, loose

BIG = 10_000
LINEAR = 11  # ten times the entries may cost at most this many times the lines


def _lines(work: Callable[[], object]) -> int:
    """How many lines of Python ``work`` runs."""
    count = 0

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        count += event == "line"
        return tracer

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        work()
    finally:
        sys.settrace(previous)
    return count


def _filled(entries: int) -> tuple[World, Encoder, Decoder, Decoder]:
    """A world whose map got ``entries`` keys in one tick, that tick decoded both ways."""
    world = World()
    enc, binary, text = Encoder(world), Decoder(World), Decoder(World)
    binary.apply(enc.full())
    text.apply(enc.full_json())
    for index in range(entries):
        world.scores[f"k{index:04}"] = index / 8
    binary.apply(enc.delta())
    text.apply(enc.since_json(enc.version - 1))
    return world, enc, binary, text


def test_a_10000_entry_map_round_trips_whole_and_as_a_delta() -> None:
    world, enc, binary, text = _filled(BIG)
    assert exact(binary.state.to_dict()) == exact(world.to_dict())
    assert loose(text.state.to_dict()) == loose(world.to_dict())
    fresh = Decoder(World)
    fresh.apply(enc.full())
    assert exact(fresh.state.to_dict()) == exact(world.to_dict())
    # kind, version, 6 bytes before the map (tick, speed as 8, leaf's defaults...) are the
    # same whatever the map holds: each entry adds exactly its key (1 + 5 bytes) and its
    # float32 (4), and the count's varint takes 2 bytes
    empty = len(Encoder(World()).full())
    assert len(enc.full()) == empty - 1 + 2 + BIG * (1 + 5 + 4)


def test_a_10000_entry_map_of_schemas_round_trips() -> None:
    world = World()
    for index in range(BIG):
        world.units[str(index)] = Unit(hp=index % 256)
    binary = Decoder(World)
    binary.apply(Encoder(world).full())
    assert binary.state.to_dict() == world.to_dict()
    assert list(binary.state.to_dict()["units"]) == list(world.units)


def _fill_cost(entries: int) -> int:
    world = World()
    enc, binary, text = Encoder(world), Decoder(World), Decoder(World)
    binary.apply(enc.full())
    text.apply(enc.full_json())
    for index in range(entries):
        world.scores[f"k{index:04}"] = float(index)

    def round_trip() -> None:
        binary.apply(enc.delta())
        text.apply(enc.since_json(enc.version - 1))
        Decoder(World).apply(enc.full())
        Decoder(World).apply(enc.full_json())

    return _lines(round_trip)


def test_encoding_and_decoding_many_entries_is_linear() -> None:
    assert _fill_cost(BIG) <= LINEAR * _fill_cost(BIG // 10)


def _tick_cost(entries: int, *, restructure: bool) -> tuple[int, int]:
    """Lines and bytes of one tick that changes three entries (and, with ``restructure``,
    removes one and adds one) in a map of ``entries``."""
    world, enc, binary, text = _filled(entries)
    sizes = []

    def tick() -> None:
        for key in ("k0001", "k0500", f"k{entries - 1:04}"):
            world.scores[key] += 1.0
        if restructure:
            del world.scores[f"k{len(sizes) + 2:04}"]
            world.scores[f"new{len(sizes)}"] = 1.0
        message = enc.delta()
        sizes.append(len(message))
        binary.apply(message)
        text.apply(enc.since_json(enc.version - 1))

    tick()  # the first tick after the fill also pays for the map's position index
    lines = _lines(tick)
    assert exact(binary.state.to_dict()) == exact(world.to_dict())
    assert loose(text.state.to_dict()) == loose(world.to_dict())
    return lines, sizes[-1]


def test_a_tick_that_changes_a_few_entries_costs_the_same_in_a_big_map() -> None:
    small_lines, small_size = _tick_cost(BIG // 10, restructure=False)
    big_lines, big_size = _tick_cost(BIG, restructure=False)
    assert big_lines <= small_lines + small_lines // 10  # nothing walks the map
    assert big_size <= small_size + 3  # a varint a byte longer at most, per changed entry
    assert big_size <= 20


def test_a_tick_that_adds_and_removes_is_linear_in_a_big_map() -> None:
    small_lines, small_size = _tick_cost(BIG // 10, restructure=True)
    big_lines, big_size = _tick_cost(BIG, restructure=True)
    assert big_lines <= LINEAR * small_lines
    assert big_size <= small_size + 3
