"""Every type's edge values survive every encoding: binary full, relative and absolute
deltas (bit for bit, map order kept) and JSON (as JSON can carry them: any NaN is NaN)."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from rtctl.state import Decoder, Encoder
from tests.state.schemas import EDGES, LEAF_FIELDS, Leaf, Unit, World, exact, loose

EDGE_CASES = [(name, value) for name, values in EDGES.items() for value in values]
KEYS = ["", "a", "🙂", "中文字", "e\u0301", "ß" * 70, "a\x00b"]


def _decoders(enc: Encoder) -> tuple[Decoder, Decoder]:
    binary, text = Decoder(World), Decoder(World)
    binary.apply(enc.full())
    text.apply(enc.full_json())
    return binary, text


def _same(world: World, binary: Decoder, text: Decoder) -> None:
    assert exact(binary.state.to_dict()) == exact(world.to_dict())
    assert loose(text.state.to_dict()) == loose(world.to_dict())


@pytest.mark.parametrize(("name", "value"), EDGE_CASES)
def test_an_edge_value_survives_a_full_state(name: str, value: Any) -> None:
    world = World(leaf=Leaf(**{name: value}))
    world.scores["k"] = value if name == "f32" else 0.0
    _same(world, *_decoders(Encoder(world)))


@pytest.mark.parametrize(("name", "value"), EDGE_CASES)
def test_an_edge_value_survives_each_kind_of_delta(name: str, value: Any) -> None:
    start = next(other for other in EDGES[name] if exact(other) != exact(value))
    world = World(leaf=Leaf(**{name: start}))
    world.units["u"] = Unit()
    enc = Encoder(world)
    binary, text = _decoders(enc)
    behind = Decoder(World)
    behind.apply(enc.full())
    setattr(world.leaf, name, value)
    if name == "f32":
        world.units["u"].x = value
        world.scores["k"] = value
    base = enc.version
    message = enc.delta()
    assert message[0] == 0x02  # relative: numbers as differences from what the client holds
    binary.apply(message)
    text.apply(enc.since_json(base))
    _same(world, binary, text)
    absolute = enc.since(base)
    assert absolute[0] == 0x03
    behind.apply(absolute)
    assert exact(behind.state.to_dict()) == exact(world.to_dict())


@pytest.mark.parametrize("name", LEAF_FIELDS)
def test_relative_deltas_wrap_between_any_two_edges(name: str) -> None:
    """From each edge value to each other, both ways: the difference of two extremes
    wraps around the type's width (e.g. int8 -128 → 127 is a step of -1)."""
    world = World()
    enc = Encoder(world)
    binary, text = _decoders(enc)
    values = EDGES[name]
    for first in values:
        for second in values:
            for value in (first, second):
                setattr(world.leaf, name, value)
                base = enc.version
                binary.apply(enc.delta())
                text.apply(enc.since_json(base))
                _same(world, binary, text)


def test_a_small_step_costs_less_than_the_value() -> None:
    world = World(leaf=Leaf(f32=512.0, u64=2**64 - 1, i64=-(2**63)))
    enc = Encoder(world)
    enc.full()
    world.leaf.u64 -= 1
    world.leaf.i64 += 1
    world.leaf.f32 = 517.0
    # kind, version, back, World mask, tag "leaf changed inside", Leaf mask (2 bytes: field 9),
    # then one byte per integer step and 3 for the float32 (a bit-pattern step of 5 * 2**14)
    assert len(enc.delta()) == 1 + 1 + 1 + 1 + 1 + 2 + 1 + 1 + 3


@pytest.mark.parametrize("key", KEYS)
def test_any_unicode_key_and_text_survives(key: str) -> None:
    world = World()
    enc = Encoder(world)
    binary, text = _decoders(enc)
    world.units[key] = Unit(tags=[key, ""], bag={key: -128})
    world.scores[key] = 1.5
    base = enc.version
    binary.apply(enc.delta())
    text.apply(enc.since_json(base))
    _same(world, binary, text)
    del world.units[key]
    world.leaf.text = key
    base = enc.version
    binary.apply(enc.delta())
    text.apply(enc.since_json(base))
    _same(world, binary, text)


def test_map_order_is_kept_through_removals_and_readds() -> None:
    world = World()
    for key in "abcdef":
        world.scores[key] = float(ord(key))
    enc = Encoder(world)
    binary, _ = _decoders(enc)
    del world.scores["b"]
    world.scores["a"] = world.scores.pop("a")  # removed and added again: it goes last
    world.scores["b"] = 2.0
    world.scores["d"] = -1.0
    binary.apply(enc.delta())
    assert list(binary.state.to_dict()["scores"]) == list(world.scores) == list("cdefab")
    assert exact(binary.state.to_dict()) == exact(world.to_dict())


def test_lists_of_primitives_carry_every_edge() -> None:
    world = World()
    enc = Encoder(world)
    binary, text = _decoders(enc)
    world.path = list(EDGES["i16"])
    world.units["u"] = Unit(tags=list(EDGES["text"]))
    for step in (lambda: world.path.reverse(), lambda: world.path.__setitem__(1, 7),
                 lambda: world.units["u"].tags.__setitem__(0, "🙂"),
                 lambda: world.units["u"].tags.pop()):
        step()
        base = enc.version
        binary.apply(enc.delta())
        text.apply(enc.since_json(base))
        _same(world, binary, text)


def test_a_float32_decodes_to_the_identical_float32() -> None:
    patterns = [0x00000001, 0x007FFFFF, 0x00800000, 0x3F800001, 0x7F7FFFFF, 0x7FC00001,
                0xFFC12345, 0x80000000, 0x7F800000, 0xFF800000]
    world = World()
    enc = Encoder(world)
    binary, _ = _decoders(enc)
    for pattern in patterns:
        world.leaf.f32 = struct.unpack("<f", struct.pack("<I", pattern))[0]
        binary.apply(enc.delta())
        held = struct.unpack("<I", struct.pack("<f", binary.state.to_dict()["leaf"]["f32"]))[0]
        assert held == pattern
