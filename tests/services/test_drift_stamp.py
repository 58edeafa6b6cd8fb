"""The drift room's ``stamp`` option: the server's time of each tick, in the state itself."""

from __future__ import annotations

import time
from typing import Any

import pytest

from rtctl.exceptions import InvalidParams
from rtctl.services.drift import Arena, DriftRoom, StampedArena
from rtctl.state import Decoder, Encoder


def _room(**options: Any) -> DriftRoom:
    room = DriftRoom("drift:1", options)
    room.on_create()
    return room


def test_a_stamped_room_carries_the_time_of_each_tick() -> None:
    room = _room(stamp=True, entities=5)
    assert isinstance(room.state, StampedArena)
    encoder, decoder = Encoder(room.state), Decoder(StampedArena)
    decoder.apply(encoder.full())
    for _ in range(3):
        before = time.time() * 1000
        room.on_tick(0.05)
        after = time.time() * 1000
        decoder.apply(encoder.delta())
        state = decoder.state
        assert isinstance(state, StampedArena)
        assert before <= state.sent_at <= after


def test_without_the_option_the_state_is_the_plain_arena() -> None:
    room = _room(entities=5)
    assert type(room.state) is Arena
    room.on_tick(0.05)
    assert "sent_at" not in room.state.to_dict()


@pytest.mark.parametrize("stamp", ["yes", 1, None])
def test_stamp_is_true_or_false(stamp: Any) -> None:
    with pytest.raises(InvalidParams, match=r"options\.stamp must be true or false"):
        _room(stamp=stamp)


def test_a_restored_room_numbers_new_entities_after_those_it_holds() -> None:
    room = _room(entities=3, seed=1)
    room.state.entities["e41"] = room.state.entities.pop("e2")
    restored = _room(entities=0, seed=1)
    restored.state = room.state
    restored.on_restore()
    restored._add()
    assert list(restored.state.entities)[-1] == "e42"
    assert len(restored.state.entities) == 4  # nothing was replaced
