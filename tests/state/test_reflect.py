"""A schema as data and back (``state.schema``): a client without the game's code decodes."""

from __future__ import annotations

import pytest

from rtctl.state import Decoder, Encoder, Schema, StateError, int8
from rtctl.state.reflect import build, describe
from tests.state.schemas import Unit, World, exact


def test_a_built_schema_decodes_what_the_real_one_encodes() -> None:
    world = World()
    world.units["a"] = Unit(tags=["x"], hp=3)
    encoder = Encoder(world)
    built = build(describe(World))
    assert [f.name for f in built.fields()] == [f.name for f in World.fields()]
    decoder = Decoder(built)
    decoder.apply(encoder.full())
    world.units["a"].hp = 9
    decoder.apply(encoder.delta())
    assert exact(decoder.state.to_dict()) == exact(world.to_dict())


def test_two_schemas_of_one_name_are_refused() -> None:
    def other() -> type[Schema]:
        class Unit(Schema):
            a: int8
        return Unit

    twin = other()

    class Pair(Schema):
        first: Unit
        second: twin  # type: ignore[valid-type]

    with pytest.raises(TypeError, match="two schemas are named Unit"):
        describe(Pair)


@pytest.mark.parametrize("description", [
    {}, {"root": "A"}, {"root": "A", "types": {"A": [{"name": "x", "type": "B"}]}},
    {"root": "A", "types": {"A": [{"name": "x", "type": "A"}]}},
])
def test_a_description_that_is_not_one_is_a_state_error(description: object) -> None:
    with pytest.raises(StateError):
        build(description)
