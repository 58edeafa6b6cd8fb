"""What ``Decoder.apply`` reports: one :class:`Change` per thing a message changed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from rtctl.state import Change, Decoder, Encoder, Schema, float32, uint8


class Entity(Schema):
    x: float32
    y: float32
    hp: uint8
    name: str


class Arena(Schema):
    round: uint8
    boss: Entity
    entities: dict[str, Entity]
    scores: dict[str, uint8]
    trail: list[uint8]
    party: list[Entity]


def _arena() -> Arena:
    arena = Arena()
    arena.entities["e1"] = Entity(x=1.5, y=2.0, hp=100, name="ada")
    arena.entities["e2"] = Entity(hp=50, name="bob")
    arena.scores["ada"] = 3
    arena.trail.extend([1, 2, 3])
    arena.party.append(Entity(name="cy"))
    return arena


Encoding = Callable[[Encoder, int], Any]
BINARY: Encoding = lambda enc, base: enc.since(base)  # noqa: E731
JSON: Encoding = lambda enc, base: enc.since_json(base)  # noqa: E731


def _changes(mutate: Callable[[Arena], None], encoding: Encoding = BINARY) -> list[Change]:
    arena = _arena()
    enc, dec = Encoder(arena), Decoder(Arena)
    dec.apply(enc.full())
    mutate(arena)
    enc.commit()
    changes = dec.apply(encoding(enc, 0))
    assert dec.state.to_dict() == arena.to_dict()
    return changes


def _plain(change: Change) -> tuple[Any, ...]:
    """A change with states as plain data (decoded instances are new objects)."""
    def plain(value: Any) -> Any:
        return value.to_dict() if isinstance(value, Schema) else value
    return change.path, change.kind, plain(change.value), plain(change.previous)


@pytest.mark.parametrize("encoding", [BINARY, JSON], ids=["binary", "json"])
def test_a_field_set_in_an_entry(encoding: Encoding) -> None:
    def hurt(arena: Arena) -> None:
        arena.entities["e1"].hp = 90
        arena.round = 2

    changes = _changes(hurt, encoding)
    assert sorted(changes, key=repr) == sorted([
        Change(("entities", "e1", "hp"), "set", 90, 100),
        Change(("round",), "set", 2, 0),
    ], key=repr)


@pytest.mark.parametrize("encoding", [BINARY, JSON], ids=["binary", "json"])
def test_an_entry_added_and_one_removed(encoding: Encoding) -> None:
    def churn(arena: Arena) -> None:
        arena.entities["e9"] = Entity(hp=7, name="zed")
        del arena.entities["e2"]
        arena.scores["bob"] = 1

    changes = sorted(map(_plain, _changes(churn, encoding)), key=repr)
    assert changes == sorted([
        (("entities", "e9"), "add", Entity(hp=7, name="zed").to_dict(), None),
        (("entities", "e2"), "remove", None, Entity(hp=50, name="bob").to_dict()),
        (("scores", "bob"), "add", 1, None),
    ], key=repr)


def test_an_added_entry_is_the_instance_the_state_holds() -> None:
    arena = _arena()
    enc, dec = Encoder(arena), Decoder(Arena)
    dec.apply(enc.full())
    arena.entities["e9"] = Entity(hp=7)
    [added] = dec.apply(enc.delta())
    assert added.value is dec.state.entities["e9"]
    added.value.hp = 8  # a decoded state is a tree like any other: changes are tracked
    assert dec.state.to_dict()["entities"]["e9"]["hp"] == 8


def test_an_entry_replaced_and_a_nested_state_replaced() -> None:
    def swap(arena: Arena) -> None:
        arena.entities["e1"] = Entity(hp=1, name="new")
        arena.boss = Entity(name="boss")

    changes = sorted(map(_plain, _changes(swap)), key=repr)
    assert changes == sorted([
        (("entities", "e1"), "replace", Entity(hp=1, name="new").to_dict(),
         Entity(x=1.5, y=2.0, hp=100, name="ada").to_dict()),
        (("boss",), "replace", Entity(name="boss").to_dict(), Entity().to_dict()),
    ], key=repr)


def test_a_key_removed_and_added_again_is_an_add_over_the_old_entry() -> None:
    def readd(arena: Arena) -> None:
        del arena.entities["e1"]
        arena.entities["e1"] = Entity(name="again")

    [change] = map(_plain, _changes(readd))
    assert change == (("entities", "e1"), "add", Entity(name="again").to_dict(),
                      Entity(x=1.5, y=2.0, hp=100, name="ada").to_dict())


def test_list_elements_set_in_place_and_lists_restructured() -> None:
    def step(arena: Arena) -> None:
        arena.trail[1] = 20
        arena.party[0].hp = 3

    assert _changes(step) == [Change(("trail", 1), "set", 20, 2),
                              Change(("party", 0, "hp"), "set", 3, 0)]

    def grow(arena: Arena) -> None:
        arena.trail.append(4)

    assert _changes(grow) == [Change(("trail",), "replace", [1, 2, 3, 4], [1, 2, 3])]


def test_a_full_state_is_one_replace_of_the_whole() -> None:
    arena = _arena()
    enc, dec = Encoder(arena), Decoder(Arena)
    empty = dec.state
    [change] = dec.apply(enc.full())
    assert change.path == ()
    assert change.kind == "replace"
    assert change.value is dec.state
    assert change.previous is empty
    [again] = dec.apply(enc.full_json())
    assert (again.value, again.previous) == (dec.state, change.value)


def test_a_message_that_changes_nothing_reports_nothing() -> None:
    arena = _arena()
    enc, dec = Encoder(arena), Decoder(Arena)
    dec.apply(enc.full())
    arena.round = 0  # the value it has
    assert dec.apply(enc.delta()) == []
