"""Declaring schemas, and the rule that an instance has one place in one tree."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rtctl.state import Decoder, Encoder, Schema, uint8
from tests.state.schemas import Leaf, Unit, World, exact


class Later(Schema):
    ahead: Declared  # declared below: annotations resolve at first use
    many: dict[str, Declared]


class Declared(Schema):
    hp: uint8


def test_fields_keep_declaration_order_and_types() -> None:
    assert [field.name for field in World.fields()] == [
        "tick", "speed", "leaf", "units", "scores", "squad", "path"]
    assert [field.index for field in World.fields()] == list(range(7))
    assert [repr(field.type) for field in Leaf.fields()][:3] == ["bool", "int8", "int16"]
    assert repr(Leaf.fields()[-2].type) == "int64"  # a bare int
    assert repr(Leaf.fields()[-1].type) == "float64"  # a bare float


def test_a_schema_may_name_one_declared_later() -> None:
    later = Later()
    later.many["a"] = Declared(hp=3)
    assert later.to_dict() == {"ahead": {"hp": 0}, "many": {"a": {"hp": 3}}}


def test_a_schema_without_fields_is_refused() -> None:
    class Empty(Schema):
        pass

    with pytest.raises(TypeError, match="Empty declares no fields"):
        Empty()
    with pytest.raises(TypeError, match="Empty declares no fields"):
        Decoder(Empty)


@pytest.mark.parametrize("annotation", [bytes, dict[int, int], list[list[int]],
                                        dict[str, dict[str, int]], int | None])
def test_a_field_of_no_state_type_is_refused_and_named(annotation: object) -> None:
    odd = type(Schema)("Odd", (Schema,), {"__annotations__": {"hp": uint8, "odd": annotation}})
    with pytest.raises(TypeError, match=r"Odd\.odd"):
        odd()


def test_unknown_fields_are_errors_not_new_attributes() -> None:
    with pytest.raises(TypeError, match="Unit has no field 'hpp'"):
        Unit(hpp=3)
    unit = Unit()
    with pytest.raises(AttributeError):
        unit.hpp = 3  # type: ignore[attr-defined]


def _in_two_places(world: World) -> None:
    world.units["b"] = world.units["a"]


def _moved_between_trees(world: World) -> None:
    World().leaf = world.leaf


def _appended_from_a_map(world: World) -> None:
    world.squad.append(world.units["a"])


def _listed_twice(world: World) -> None:
    world.squad = [world.squad[0], world.squad[0]]


def _sliced_twice(world: World) -> None:
    world.squad[0:1] = [world.squad[1]]


def _mapped_twice(world: World) -> None:
    twin = Unit()
    world.units = {"x": twin, "y": twin}


def _inserted_twice(world: World) -> None:
    world.squad.insert(0, world.squad[1])


@pytest.mark.parametrize("move", [_in_two_places, _moved_between_trees, _appended_from_a_map,
                                  _listed_twice, _sliced_twice, _mapped_twice, _inserted_twice])
def test_an_instance_in_a_tree_cannot_go_elsewhere(move: Callable[[World], None]) -> None:
    world = World()
    world.units["a"] = Unit(hp=1)
    world.squad.extend([Unit(hp=2), Unit(hp=3)])
    enc, dec = Encoder(world), Decoder(World)
    dec.apply(enc.full())
    with pytest.raises(ValueError, match=r"appears twice|already part of a state tree"):
        move(world)
    assert exact(world.to_dict()) == exact(dec.state.to_dict())
    assert enc.delta() == b""
    for unit in [*world.units.values(), *world.squad]:  # all still tracked where they are
        unit.hp += 10
    dec.apply(enc.delta())
    assert exact(dec.state.to_dict()) == exact(world.to_dict())


def test_a_removed_instance_may_go_elsewhere() -> None:
    world = World()
    world.units["a"] = Unit(hp=1)
    enc, dec = Encoder(world), Decoder(World)
    dec.apply(enc.full())
    unit = world.units.pop("a")
    world.squad.append(unit)
    unit.hp = 7
    dec.apply(enc.delta())
    assert dec.state.to_dict()["squad"] == [{"hp": 7, "x": 0.0, "bag": {}, "tags": []}]
    assert dec.state.to_dict()["units"] == {}


@pytest.mark.parametrize(("assign", "error"), [
    (lambda world: setattr(world, "leaf", Unit()), "expected a Leaf, not Unit"),
    (lambda world: world.units.__setitem__("a", Leaf()), "expected a Unit, not Leaf"),
    (lambda world: world.squad.append({"hp": 1}), "expected a Unit, not dict"),
    (lambda world: world.scores.__setitem__(1, 1.0), "map keys are str, not int"),
    (lambda world: setattr(world, "units", [Unit()]), "a map field takes a dict, not list"),
    (lambda world: setattr(world, "path", "abc"), "a list field takes a list, not str"),
])
def test_a_wrong_instance_type_is_a_type_error(assign: Callable[[World], None],
                                               error: str) -> None:
    world = World()
    before = world.to_dict()
    with pytest.raises(TypeError, match=error):
        assign(world)
    assert world.to_dict() == before


def test_a_map_key_must_have_a_utf8_form() -> None:
    world = World()
    with pytest.raises(ValueError, match="lone surrogate"):
        world.scores["\ud83d"] = 1.0
    assert world.to_dict()["scores"] == {}


def test_only_a_root_is_encoded() -> None:
    world = World()
    with pytest.raises(ValueError, match="encode a root"):
        Encoder(world.leaf)
    with pytest.raises(ValueError, match="history must be at least 1"):
        Encoder(world, history=0)


def test_a_map_assigned_a_bad_key_keeps_what_it_held() -> None:
    world = World()
    world.units["a"] = Unit()
    with pytest.raises(TypeError, match="map keys are str"):
        world.units = {"b": Unit(), 5: Unit()}  # type: ignore[dict-item]
    assert list(world.units) == ["a"]
