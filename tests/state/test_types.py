"""Values are checked when assigned: one that does not fit raises at once and changes nothing."""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from typing import Any

import pytest

from rtctl.state import Decoder, Encoder
from tests.state.schemas import EDGES, Leaf, Unit, World, exact, f32

# (field, value, error): every width's first value past each end, and wrong types.
REFUSED: list[tuple[str, Any, type[Exception]]] = [
    ("u8", 300, ValueError),
    ("u8", 256, ValueError),
    *[(name, -1, ValueError) for name in ("u8", "u16", "u32", "u64")],
    ("u16", 2**16, ValueError),
    ("u32", 2**32, ValueError),
    ("u64", 2**64, ValueError),
    ("i8", 128, ValueError),
    ("i8", -129, ValueError),
    ("i16", 2**15, ValueError),
    ("i16", -(2**15) - 1, ValueError),
    ("i32", 2**31, ValueError),
    ("i32", -(2**31) - 1, ValueError),
    ("i64", 2**63, ValueError),
    ("i64", -(2**63) - 1, ValueError),
    ("count", 2**63, ValueError),  # a bare int is an int64
    ("f32", 1e39, ValueError),
    ("f32", -1e39, ValueError),
    ("f32", 3.5e38, ValueError),  # past the float32 max by more than half a step: no float32
    ("f32", 10**400, ValueError),  # an int no float holds
    ("f64", 10**400, ValueError),
    ("i64", "3", TypeError),
    ("i8", True, TypeError),  # a bool is an int to Python, not to a schema
    ("u8", 1.0, TypeError),
    ("i32", None, TypeError),
    ("f32", "1.5", TypeError),
    ("f64", False, TypeError),
    ("flag", 1, TypeError),
    ("flag", None, TypeError),
    ("text", b"bytes", TypeError),
    ("text", 5, TypeError),
    ("text", "\ud800", ValueError),  # a lone surrogate has no UTF-8 form
    ("text", "ok\udfff", ValueError),
]


@pytest.mark.parametrize(("name", "value", "error"), REFUSED)
def test_a_value_that_does_not_fit_raises_and_changes_nothing(
        name: str, value: Any, error: type[Exception]) -> None:
    world = World()
    enc = Encoder(world)
    enc.full()
    before = exact(world.to_dict())
    with pytest.raises(error, match=r"\S"):
        setattr(world.leaf, name, value)
    assert exact(world.to_dict()) == before
    assert enc.delta() == b""  # not even marked as changed


@pytest.mark.parametrize(("name", "value", "error"), REFUSED[:6])
def test_a_constructor_checks_as_assignment_does(name: str, value: Any,
                                                 error: type[Exception]) -> None:
    with pytest.raises(error):
        Leaf(**{name: value})


def test_error_messages_name_the_type_and_its_range() -> None:
    with pytest.raises(ValueError, match=r"300 does not fit uint8 \(0 to 255\)"):
        Leaf(u8=300)
    with pytest.raises(TypeError, match="int64 field takes an int, not str"):
        Leaf(i64="3")
    with pytest.raises(ValueError, match="beyond the range of float32"):
        Leaf(f32=1e39)
    with pytest.raises(ValueError, match="lone surrogate"):
        Leaf(text="\ud800")


@pytest.mark.parametrize(("name", "value"), [(name, value) for name, values in EDGES.items()
                                             for value in values])
def test_every_edge_value_is_accepted_as_it_is(name: str, value: Any) -> None:
    assert exact(getattr(Leaf(**{name: value}), name)) == exact(value)


def test_a_float32_holds_the_nearest_float32() -> None:
    leaf = Leaf(f32=0.1, f64=0.1)
    assert leaf.f32 == struct.unpack("<f", struct.pack("<f", 0.1))[0] != 0.1
    assert leaf.f64 == 0.1
    assert Leaf(f32=16_777_217).f32 == 16_777_216.0  # 2**24 + 1 has no float32
    assert Leaf(f32=3.4028235e38).f32 == f32(0x7F7FFFFF)  # within half a step: the max
    assert Leaf(f32=1e-46).f32 == 0.0  # below half the smallest subnormal: zero
    assert Leaf(f32=7).f32 == 7.0
    assert math.isinf(Leaf(f32=math.inf).f32)


def test_fields_start_at_their_defaults() -> None:
    assert Leaf().to_dict() == {"flag": False, "i8": 0, "i16": 0, "i32": 0, "i64": 0, "u8": 0,
                                "u16": 0, "u32": 0, "u64": 0, "f32": 0.0, "f64": 0.0,
                                "text": "", "count": 0, "ratio": 0.0}
    world = World()
    assert world.to_dict() == {"tick": 0, "speed": 0.0, "leaf": Leaf().to_dict(), "units": {},
                               "scores": {}, "squad": [], "path": []}
    assert World().leaf is not world.leaf  # each instance its own nested default


def test_to_dict_is_plain_data_in_declaration_order() -> None:
    world = World(tick=3)
    world.units["b"] = Unit(hp=1, bag={"k": -1}, tags=["t"])
    world.units["a"] = Unit(hp=2)
    world.path.extend([1, 2])
    data = world.to_dict()
    assert list(data) == [field.name for field in World.fields()]
    assert list(data["units"]) == ["b", "a"]
    assert data["units"]["b"] == {"hp": 1, "x": 0.0, "bag": {"k": -1}, "tags": ["t"]}
    assert type(data["units"]) is dict
    assert type(data["path"]) is list


@pytest.mark.parametrize("change", [
    lambda world: world.units["a"].bag.__setitem__("k", 128),
    lambda world: world.path.__setitem__(0, 2**15),
    lambda world: world.path.__setitem__(slice(0, 1), [1, 2**15]),
    lambda world: world.path.append(-(2**15) - 1),
    lambda world: setattr(world.units["a"], "bag", {"k": 2, "j": 500}),
    lambda world: setattr(world, "path", [1, 2, 2**15]),
], ids=["map", "list", "slice", "append", "map field", "list field"])
def test_items_of_maps_and_lists_are_checked(change: Callable[[World], None]) -> None:
    world = World()
    world.path.append(1)
    world.units["a"] = Unit(bag={"k": 1})
    before = world.to_dict()
    with pytest.raises(ValueError, match="does not fit int"):
        change(world)
    assert world.to_dict() == before


def test_a_refused_item_leaves_the_container_as_it_was() -> None:
    world = World()
    world.scores["a"] = 1.0
    enc, dec = Encoder(world), Decoder(World)
    dec.apply(enc.full())
    with pytest.raises(TypeError):
        world.scores = {"b": 2.0, "c": "3"}
    with pytest.raises(TypeError):
        world.squad = [Unit(), Leaf()]
    assert world.to_dict() == dec.state.to_dict()
    assert enc.delta() == b""
