"""The JSON encoding: strict JSON (RFC 8259), float32 with the fewest digits, and merge
patches with RFC 7396 semantics (objects merge, null removes, arrays replace)."""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import pytest

from rtctl.state import Decoder, Encoder
from tests.state.schemas import EDGES, Leaf, Unit, World, f32, loose


def _strict(text: str) -> Any:
    """``text`` parsed as RFC 8259 JSON: no NaN or Infinity literals, no duplicate keys."""
    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} is not JSON (RFC 8259 §6)")

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        assert len({key for key, _ in pairs}) == len(pairs)
        return dict(pairs)

    return json.loads(text, parse_constant=refuse, object_pairs_hook=unique)


def _edgy() -> World:
    world = World(leaf=Leaf(f32=math.nan, f64=-math.inf, ratio=math.inf, i64=-(2**63),
                            u64=2**64 - 1, text="🙂\u0301\x00\"\\"))
    world.scores.update({"nan": math.nan, "inf": -math.inf, "tiny": f32(1), "-0": -0.0})
    world.units["中"] = Unit(x=f32(0x7F7FFFFF), tags=["", "\n"])
    return world


def test_every_message_is_strict_json() -> None:
    world = _edgy()
    enc = Encoder(world)
    full = _strict(enc.full_json())
    assert set(full) == {"version", "state"}
    world.leaf.f32 = math.inf
    world.scores["nan"] = -math.nan
    del world.units["中"]
    delta = _strict(enc.delta_json())
    assert set(delta) == {"version", "base", "patch"}
    assert (delta["version"], delta["base"]) == (1, 0)
    _strict(enc.since_json(0))


def test_nan_and_infinities_are_strings() -> None:
    state = _strict(Encoder(_edgy()).full_json())["state"]
    assert (state["leaf"]["f32"], state["leaf"]["f64"], state["leaf"]["ratio"]) == (
        "NaN", "-Infinity", "Infinity")
    assert state["scores"]["nan"] == "NaN"
    assert state["scores"]["inf"] == "-Infinity"
    decoded = Decoder(World)
    decoded.apply(Encoder(_edgy()).full_json())
    assert math.isnan(decoded.state.leaf.f32)
    assert decoded.state.leaf.f64 == -math.inf


def test_64_bit_extremes_and_negative_zero_are_exact() -> None:
    text = Encoder(_edgy()).full_json()
    state = _strict(text)["state"]
    assert (state["leaf"]["i64"], state["leaf"]["u64"]) == (-(2**63), 2**64 - 1)
    assert math.copysign(1.0, state["scores"]["-0"]) == -1.0
    decoded = Decoder(World)
    decoded.apply(text)
    assert loose(decoded.state.to_dict()) == loose(_edgy().to_dict())


def _digits(number: str) -> int:
    """Significant digits of a JSON number."""
    mantissa = number.lower().split("e")[0].lstrip("-").replace(".", "").lstrip("0")
    return len(mantissa.rstrip("0")) or 1


@pytest.mark.parametrize("value", [0.1, 1 / 3, 16_777_216.0, 3.4028235e38, 1e-45, 1.17549435e-38,
                                   -2.5, 100.0, 0.3, 123456.789])
def test_a_float32_is_written_with_the_fewest_digits_that_read_back(value: float) -> None:
    world = World(leaf=Leaf(f32=value))
    text = Encoder(world).full_json()
    number = text.split('"f32":')[1].split(",")[0]
    held = world.leaf.f32
    assert struct.pack("<f", float(number)) == struct.pack("<f", held)  # reads back exactly
    fewer = _digits(number) - 1
    if fewer:  # no shorter decimal is the same float32
        assert struct.pack("<f", float(f"{held:.{fewer}g}")) != struct.pack("<f", held)


def test_point_one_as_float32_prints_as_0_1() -> None:
    assert '"f32":0.1,' in Encoder(World(leaf=Leaf(f32=0.1))).full_json()
    assert '"f64":0.1,' in Encoder(World(leaf=Leaf(f64=0.1))).full_json()


@pytest.mark.parametrize("value", EDGES["f64"][2:])
def test_a_float64_reads_back_exactly(value: float) -> None:
    decoded = Decoder(World)
    decoded.apply(Encoder(World(leaf=Leaf(f64=value))).full_json())
    assert struct.pack("<d", decoded.state.leaf.f64) == struct.pack("<d", value)


def test_a_delta_is_a_merge_patch_of_what_changed() -> None:
    world = World()
    world.units["a"] = Unit(hp=1, tags=["t"])
    world.units["b"] = Unit(hp=2)
    world.scores["s"] = 1.0
    enc = Encoder(world)
    enc.full()
    world.units["a"].hp = 5
    world.units["a"].bag["k"] = 1
    del world.units["b"]
    del world.scores["s"]
    world.units["c"] = Unit(hp=3)
    world.path.append(2)
    patch = _strict(enc.delta_json())["patch"]
    assert patch == {
        "units": {"a": {"hp": 5, "bag": {"k": 1}}, "b": None,
                  "c": {"hp": 3, "x": 0.0, "bag": {}, "tags": []}},
        "scores": {"s": None},
        "path": [2],
    }


def test_a_changed_list_is_written_whole() -> None:
    world = World()
    world.path.extend([1, 2, 3])
    enc = Encoder(world)
    enc.full()
    world.path[1] = 20
    assert _strict(enc.delta_json())["patch"] == {"path": [1, 20, 3]}  # RFC 7396 §2: arrays replace


def test_a_hand_written_merge_patch_applies_by_rfc_7396() -> None:
    world = World()
    world.units["a"] = Unit(hp=1, bag={"x": 1, "y": 2})
    world.scores.update({"p": 1.0, "q": 2.0})
    dec = Decoder(World)
    dec.apply(Encoder(world).full_json())
    dec.apply(json.dumps({"version": 1, "base": 0, "patch": {
        "units": {"a": {"bag": {"x": None, "z": 3}}},  # null removes; objects merge
        "scores": {"p": None, "r": "NaN"},
        "leaf": {"u8": 7},
        "path": [4, 5],
    }}))
    state = dec.state.to_dict()
    assert state["units"]["a"] == {"hp": 1, "x": 0.0, "bag": {"y": 2, "z": 3}, "tags": []}
    assert list(state["scores"]) == ["q", "r"]
    assert math.isnan(state["scores"]["r"])
    assert state["leaf"] == Leaf(u8=7).to_dict()
    assert state["path"] == [4, 5]


def test_a_replaced_entry_with_a_map_inside_arrives_whole() -> None:
    """A merge patch would merge the new entry into the old one and keep the old map's keys
    (RFC 7396 §2): the encoder sends a full state instead."""
    world = World()
    world.units["a"] = Unit(bag={"old": 1})
    enc, dec = Encoder(world), Decoder(World)
    dec.apply(enc.full_json())
    world.units["a"] = Unit(bag={"new": 2})
    message = _strict(enc.delta_json())
    assert "state" in message
    dec.apply(json.dumps(message))
    assert dec.state.to_dict()["units"]["a"]["bag"] == {"new": 2}


def test_a_key_readded_over_an_entry_the_client_holds_arrives_whole() -> None:
    world = World()
    world.units["a"] = Unit(bag={"old": 1})
    enc, dec = Encoder(world), Decoder(World)
    dec.apply(enc.full_json())
    del world.units["a"]
    enc.commit()
    world.units["a"] = Unit(bag={"new": 2})
    enc.commit()
    message = enc.since_json(0)
    assert "state" in _strict(message)
    dec.apply(message)
    assert dec.state.to_dict()["units"]["a"]["bag"] == {"new": 2}


def test_a_new_entry_or_a_replaced_one_without_maps_stays_a_patch() -> None:
    world = World()
    world.units["a"] = Unit(bag={"old": 1})
    enc, dec = Encoder(world), Decoder(World)
    dec.apply(enc.full_json())
    world.units["b"] = Unit(bag={"new": 2})  # the client holds no "b" to merge into
    world.leaf = Leaf(u8=3)  # a Leaf has no map: every field written whole replaces it
    message = _strict(enc.delta_json())
    assert message["patch"]["units"] == {"b": {"hp": 0, "x": 0.0, "bag": {"new": 2}, "tags": []}}
    assert message["patch"]["leaf"] == Leaf(u8=3).to_dict()
    dec.apply(json.dumps(message))
    assert dec.state.to_dict() == world.to_dict()
