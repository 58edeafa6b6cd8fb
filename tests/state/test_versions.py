"""Versions: what a delta starts from, what the encoder still remembers, and the order
versions must follow."""

from __future__ import annotations

import json

import pytest

from rtctl.state import Decoder, Encoder, HistoryLost, StateError, VersionGap, versions
from tests.state.schemas import Unit, World, exact


def _synced() -> tuple[World, Encoder, Decoder]:
    world = World()
    world.units["a"] = Unit(hp=5)
    enc, dec = Encoder(world), Decoder(World)
    dec.apply(enc.full())
    return world, enc, dec


def test_the_first_delta_is_a_full_state_then_nothing_changed_is_empty() -> None:
    world = World()
    enc = Encoder(world)
    assert enc.version == 0
    first = enc.delta()
    assert first[0] == 0x01
    assert versions(first) == (0, None)  # nothing was pending: version 0, whole
    assert enc.delta() == b""
    assert enc.delta_json() == ""
    world.tick = 1
    assert versions(enc.delta()) == (1, 0)
    world.tick = 1  # the same value again
    assert enc.delta() == b""
    assert enc.version == 1


def test_the_first_json_delta_is_a_full_state() -> None:
    world = World()
    enc = Encoder(world)
    world.tick = 4  # pending: the full state is version 1
    message = json.loads(enc.delta_json())
    assert message == {"version": 1, "state": json.loads(enc.full_json())["state"]}
    assert message["state"]["tick"] == 4


def test_versions_reads_the_header_only() -> None:
    world, enc, _ = _synced()
    world.tick = 9
    delta = enc.delta(version=40)
    assert versions(delta) == (40, 0)
    assert versions(enc.full()) == (40, None)
    world.tick = 10
    enc.commit(version=45)
    assert versions(enc.since(40)) == (45, 40)
    assert versions(delta[:3]) == (40, 0)  # the body is not read
    with pytest.raises(StateError, match="unknown state message kind 0x09"):
        versions(b"\x09\x01")
    with pytest.raises(StateError, match="goes back 0"):
        versions(b"\x02\x05\x00")
    with pytest.raises(StateError, match="goes back 6"):
        versions(b"\x03\x05\x06")
    with pytest.raises(StateError, match="truncated"):
        versions(b"")


def test_a_delta_from_another_version_is_a_gap_and_changes_nothing() -> None:
    world, enc, dec = _synced()
    world.tick = 1
    enc.delta()  # version 1, which this decoder never sees
    world.units["a"].hp = 6
    base = enc.version
    skipped = enc.delta()
    skipped_json = enc.since_json(base)
    before = exact(dec.state.to_dict())
    for message in (skipped, skipped_json):
        with pytest.raises(VersionGap) as caught:
            dec.apply(message)
        assert (caught.value.expected, caught.value.base) == (0, 1)
        assert "delta from version 1 cannot apply: the decoder holds version 0" in str(
            caught.value)
        assert dec.version == 0
        assert exact(dec.state.to_dict()) == before
    dec.apply(enc.since(0))  # what a client does next: ask from where it is (or resync)
    assert exact(dec.state.to_dict()) == exact(world.to_dict())


def test_a_delta_before_any_full_state_is_a_gap() -> None:
    world, enc, _ = _synced()
    world.tick = 3
    with pytest.raises(VersionGap, match="no snapshot yet") as caught:
        Decoder(World).apply(enc.delta())
    assert caught.value.expected is None
    assert isinstance(caught.value, StateError)


def test_since_reaches_back_as_far_as_the_history() -> None:
    world = World()
    enc = Encoder(world, history=3)
    dec = Decoder(World)
    dec.apply(enc.full())
    for tick in range(1, 6):
        world.tick = tick
        enc.delta()
    assert enc.floor == 2
    with pytest.raises(HistoryLost, match="no history since version 1: the oldest kept is 2"):
        enc.since(1)
    with pytest.raises(HistoryLost) as caught:
        enc.since_json(0)
    assert (caught.value.base, caught.value.oldest) == (0, 2)
    behind = Decoder(World)
    behind.apply(enc.full())  # what a client that far behind gets instead
    assert behind.version == 5


def test_since_the_floor_still_removes_keys_removed_after_it() -> None:
    world = World()
    world.units["a"] = Unit()
    enc = Encoder(world, history=2)
    held = Decoder(World)
    held.apply(enc.full())
    del world.units["a"]
    enc.delta()
    world.tick = 1
    enc.delta()
    assert enc.floor == 0
    held.apply(enc.since(0))
    assert held.state.to_dict()["units"] == {}


def test_since_refuses_uncommitted_changes_and_future_versions() -> None:
    world, enc, _ = _synced()
    world.tick = 2
    with pytest.raises(ValueError, match="uncommitted changes"):
        enc.since(0)
    with pytest.raises(ValueError, match="uncommitted changes"):
        enc.since_json(0)
    enc.commit()
    with pytest.raises(ValueError, match="version 2 is ahead of the state's 1"):
        enc.since(2)
    assert enc.since(1) == b""
    assert enc.since_json(1) == ""


def test_versions_given_must_increase_and_a_refused_one_commits_nothing() -> None:
    world, enc, dec = _synced()
    world.tick = 1
    dec.apply(enc.delta(version=10))
    assert enc.version == 10
    world.tick = 2
    for stale in (10, 3):
        with pytest.raises(ValueError, match=f"version {stale} does not follow 10"):
            enc.delta(version=stale)
        with pytest.raises(ValueError, match="does not follow"):
            enc.full(version=stale)
        with pytest.raises(ValueError, match="does not follow"):
            enc.commit(version=stale)
    assert enc.version == 10
    message = enc.delta(version=11)  # the change is still pending, and sent now
    assert versions(message) == (11, 10)
    dec.apply(message)
    assert dec.state.tick == 2


def test_full_and_commit_take_a_version_too() -> None:
    world, enc, dec = _synced()
    world.tick = 1
    assert enc.commit(version=7) is True
    assert enc.commit(version=8) is False  # nothing pending: no version
    assert enc.version == 7
    world.tick = 2
    dec.apply(enc.full(version=20))
    assert dec.version == enc.version == 20
    world.tick = 3
    dec.apply(enc.delta())
    assert dec.version == 21


def test_an_empty_message_changes_nothing() -> None:
    _, _, dec = _synced()
    assert dec.apply(b"") == []
    assert dec.apply("") == []
    assert dec.version == 0


def test_a_parsed_json_message_applies_like_its_text() -> None:
    world, enc, dec = _synced()
    world.units["a"].hp = 9
    base = enc.version
    enc.commit()
    dec.apply(enc.since_object(base))
    assert dec.state.to_dict() == world.to_dict()
    fresh = Decoder(World)
    fresh.apply(enc.full_object())
    assert (fresh.version, fresh.state.to_dict()) == (1, world.to_dict())


def test_binary_deltas_after_json_ones_stay_correct() -> None:
    """One encoder serving both encodings: a binary delta after JSON deltas moved the
    version on is written with absolute values (the relative base is gone)."""
    world, enc, dec = _synced()
    json_client = Decoder(World)
    json_client.apply(enc.full_json())
    world.units["a"].hp = 6
    base = enc.version
    json_client.apply(enc.delta_json())
    dec.apply(enc.since(base))
    world.units["a"].hp = 7
    message = enc.delta()
    assert message[0] == 0x03
    dec.apply(message)
    assert exact(dec.state.to_dict()) == exact(world.to_dict())
    world.units["a"].hp = 8
    message = enc.delta()
    assert message[0] == 0x02  # relative again once the values sent are known
    dec.apply(message)
    assert exact(dec.state.to_dict()) == exact(world.to_dict())



def _held_now(enc: Encoder) -> tuple[Decoder, Decoder]:
    binary, text = Decoder(World), Decoder(World)
    binary.apply(enc.full())
    text.apply(enc.full_json())
    return binary, text


@pytest.mark.parametrize("same_commit", [False, True], ids=["apart", "in one commit"])
def test_a_key_that_came_back_and_went_again_is_removed_where_it_was_held(
        same_commit: bool) -> None:
    """Clients at each version before the last removal: those that held the key (in its
    first life) lose it, one that never saw it is not told to remove it."""
    world = World()
    world.scores["a"] = 1.0
    enc = Encoder(world)
    at = {0: _held_now(enc)}
    del world.scores["a"]
    if not same_commit:
        enc.commit()  # version 1: no "a"
        at[1] = _held_now(enc)
    world.scores["a"] = 2.0
    enc.commit()
    del world.scores["a"]
    world.scores["b"] = 3.0
    enc.commit()
    for base, (binary, text) in at.items():
        binary.apply(enc.since(base))
        text.apply(enc.since_json(base))
        assert binary.state.to_dict()["scores"] == text.state.to_dict()["scores"] == {"b": 3.0}


def test_removals_are_remembered_for_the_history_only() -> None:
    world = World()
    enc = Encoder(world, history=4)
    oldest = Decoder(World)
    for tick in range(40):  # a key that comes and goes every tick, and one that leaves
        world.scores["blink"] = float(tick)
        world.scores[f"gone{tick}"] = 0.0
        enc.commit()
        del world.scores["blink"]
        del world.scores[f"gone{tick}"]
        enc.commit()
        if tick == 37:
            oldest.apply(enc.full())
    assert enc.since(enc.floor)  # what a client at the floor needs is still known
    assert oldest.version is not None
    oldest.apply(enc.since(oldest.version))
    assert oldest.state.to_dict()["scores"] == {}
    tombs = world.scores._tombs
    assert len(tombs) <= 4  # one per key removed within the history
    assert all(len(lives) <= 2 for lives in tombs.values())  # lives that ended after the floor



def _next(enc: Encoder, binary: bool) -> bytes | str:
    return enc.delta() if binary else enc.delta_json()


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_a_delta_covers_versions_committed_since_the_previous_one(binary: bool) -> None:
    """``commit()`` stamps a version without sending it: the next delta still brings a
    client that saw every full state and delta up to date, from where it is."""
    world = World()
    enc, dec = Encoder(world), Decoder(World)
    dec.apply(_next(enc, binary))
    world.tick = 1
    enc.commit()
    world.speed = 2.0
    enc.commit()
    assert enc.version == 2
    dec.apply(_next(enc, binary))  # nothing pending, but versions 1 and 2 never sent
    assert (dec.version, dec.state.to_dict()) == (2, world.to_dict())
    assert not _next(enc, binary)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_a_delta_past_the_history_is_a_full_state(binary: bool) -> None:
    world = World()
    enc, dec = Encoder(world, history=2), Decoder(World)
    dec.apply(_next(enc, binary))
    for tick in range(1, 4):
        world.tick = tick
        enc.commit()
    message = _next(enc, binary)
    if isinstance(message, bytes):
        assert versions(message) == (3, None)
    else:
        assert "state" in json.loads(message)
    dec.apply(message)
    assert (dec.version, dec.state.to_dict()) == (3, world.to_dict())
