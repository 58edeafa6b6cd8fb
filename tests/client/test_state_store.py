"""The client's state store, sans-I/O: a real :class:`rtctl.state.Encoder` makes every
message, in each of its forms (binary, JSON text, JSON as data), and the store must hold
the server's state, refuse what it cannot apply, and announce what changed per path."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from rtctl.client import ApplyOutcome, StateStore
from rtctl.state import Change, Encoder, Schema, float32, int16, uint8, uint16, uint32


class Entity(Schema):
    x: float32
    y: float32
    hp: uint8
    name: str


class Record(Schema):
    kills: uint16


class Arena(Schema):
    tick: uint32
    entities: dict[str, Entity]
    scores: dict[str, int16]
    path: list[int16]
    best: Record


FORMS = ("binary", "json", "object")


class Server:
    """A room's state and encoder, writing its messages in one form."""

    def __init__(self, form: str = "binary") -> None:
        self.form = form
        self.state = Arena()
        self.state.entities["e1"] = Entity(x=1.5, y=2.0, hp=100, name="ada")
        self.state.entities["e2"] = Entity(x=-3.0, y=0.25, hp=80, name="bob")
        self.enc = Encoder(self.state)

    def full(self) -> Any:
        if self.form == "binary":
            return self.enc.full()
        if self.form == "json":
            return self.enc.full_json()
        self.enc.commit()
        return self.enc.full_object()

    def delta(self) -> Any:
        if self.form == "binary":
            return self.enc.delta()
        if self.form == "json":
            return self.enc.delta_json()
        base = self.enc.version
        self.enc.commit()
        return self.enc.since_object(base)

    def tick(self, n: int = 1) -> Any:
        """Move e1 by ``n`` and return the delta."""
        self.state.tick += 1
        self.state.entities["e1"].x += n
        return self.delta()


def synced(form: str = "binary") -> tuple[Server, StateStore[Arena]]:
    server = Server(form)
    store = StateStore(Arena)
    assert store.apply(server.full()) is ApplyOutcome.SNAPSHOT
    return server, store


def record(store: StateStore[Any], pattern: str | tuple[str | int, ...]) -> list[Change]:
    seen: list[Change] = []
    store.on_change(pattern, seen.append)
    return seen


def brief(changes: list[Change]) -> list[tuple[Any, ...]]:
    """Changes without their node values (those are checked by what they hold)."""
    return [(c.path, c.kind, c.value if not isinstance(c.value, Schema) else c.value.to_dict(),
             c.previous if not isinstance(c.previous, Schema) else c.previous.to_dict())
            for c in changes]


# -- versions ------------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_patches_in_order_keep_the_server_state(form: str) -> None:
    server, store = synced(form)
    assert store.state.to_dict() == server.state.to_dict()
    sizes = []
    for n in range(1, 6):
        patch = server.tick(n)
        assert store.apply(patch) is ApplyOutcome.PATCH
        assert store.state.to_dict() == server.state.to_dict()
        assert store.version == server.enc.version
        sizes.append(len(patch.encode() if isinstance(patch, str) else
                         patch if isinstance(patch, bytes) else orjson.dumps(patch)))
    stats = store.stats
    assert (stats.messages, stats.patches, stats.snapshots) == (6, 5, 1)
    assert not store.needs_resync
    assert stats.last_patch_bytes == sizes[-1]
    assert stats.bytes_per_patch == pytest.approx(sum(sizes) / len(sizes))


@pytest.mark.parametrize("form", FORMS)
def test_a_duplicated_patch_is_stale_and_ignored(form: str) -> None:
    server, store = synced(form)
    first = server.tick()
    assert store.apply(first) is ApplyOutcome.PATCH
    held = store.state.to_dict()
    assert store.apply(first) is ApplyOutcome.STALE
    assert store.state.to_dict() == held
    assert store.apply(server.full()) is ApplyOutcome.STALE  # the same version, whole
    assert store.stats.stale == 2
    assert store.apply(server.tick()) is ApplyOutcome.PATCH
    assert store.state.to_dict() == server.state.to_dict()
    assert (store.stats.gaps, store.stats.resyncs, store.needs_resync) == (0, 0, False)


@pytest.mark.parametrize("form", FORMS)
def test_a_gap_drops_patches_until_a_snapshot(form: str) -> None:
    server, store = synced(form)
    store.apply(server.tick())
    at = (store.version, store.state.to_dict())
    server.tick()  # lost on the way
    assert store.apply(server.tick()) is ApplyOutcome.GAP
    assert store.needs_resync
    assert store.resync_reason is not None
    assert store.apply(server.tick()) is ApplyOutcome.DROPPED
    assert store.apply(server.tick()) is ApplyOutcome.DROPPED
    assert (store.version, store.state.to_dict()) == at
    assert store.apply(server.full()) is ApplyOutcome.SNAPSHOT
    assert store.state.to_dict() == server.state.to_dict()
    assert not store.needs_resync
    assert store.resync_reason is None
    assert store.apply(server.tick()) is ApplyOutcome.PATCH
    stats = store.stats
    assert (stats.gaps, stats.dropped, stats.resyncs, stats.patches) == (1, 2, 1, 2)


@pytest.mark.parametrize("form", FORMS)
def test_a_fresh_store_takes_nothing_before_a_snapshot(form: str) -> None:
    server = Server(form)
    server.full()
    store = StateStore(Arena)
    assert store.needs_resync
    assert store.version is None
    assert store.apply(server.tick()) is ApplyOutcome.DROPPED
    assert store.apply(server.full()) is ApplyOutcome.SNAPSHOT
    assert store.state.to_dict() == server.state.to_dict()
    assert (store.stats.dropped, store.stats.resyncs, store.stats.gaps) == (1, 0, 0)


# Unreadable messages, made for a store at version ``v``: headers that cannot be read, and
# well-formed deltas from ``v`` whose bodies do not fit the schema or the wire.
CORRUPT: dict[str, list[Callable[[int], Any]]] = {
    "binary": [lambda v: b"\x02", lambda v: bytes([9, v + 1, 0]),
               lambda v: bytes([2, v + 1, 1, 0xFF, 0xFF]), lambda v: bytes([2, v + 1, 1, 64])],
    "json": [lambda v: "{not json", lambda v: f'{{"version": "{v + 1}"}}',
             lambda v: f'{{"version": {v + 1}, "base": {v}, "patch": {{"nope": 1}}}}'],
    "object": [lambda v: None, lambda v: {"base": v}, lambda v: [v],
               lambda v: {"version": v + 1, "base": v, "patch": {"tick": -1}}],
}


@pytest.mark.parametrize(("form", "make"),
                         [(form, make) for form in FORMS for make in CORRUPT[form]])
def test_a_corrupt_message_is_counted_logged_once_and_asks_for_a_snapshot(
        form: str, make: Callable[[int], Any], caplog: pytest.LogCaptureFixture) -> None:
    server, store = synced(form)
    store.apply(server.tick())
    at = (store.version, store.state.to_dict())
    assert store.version is not None
    with caplog.at_level(logging.DEBUG, logger="rtctl.client"):
        assert store.apply(make(store.version)) is ApplyOutcome.CORRUPT
        assert store.apply(server.tick()) is ApplyOutcome.DROPPED  # nothing applied on top
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "corrupt" in caplog.records[0].getMessage()
    assert (store.version, store.state.to_dict()) == at
    assert store.needs_resync
    assert store.stats.corrupt == 1
    assert store.apply(server.full()) is ApplyOutcome.SNAPSHOT
    assert store.state.to_dict() == server.state.to_dict()


def test_corrupt_messages_warn_once_until_a_snapshot(caplog: pytest.LogCaptureFixture) -> None:
    server, store = synced()
    with caplog.at_level(logging.WARNING, logger="rtctl.client"):
        for _ in range(3):
            store.apply(b"\x02")
        store.apply(server.full())
        store.apply(b"\x02")
    assert store.stats.corrupt == 4
    assert len(caplog.records) == 2


def test_a_truncated_patch_is_corrupt_not_half_applied() -> None:
    server, store = synced()
    server.state.entities["e2"].hp = 1
    patch = server.tick()
    at = store.state.to_dict()
    assert store.apply(patch[:-1]) is ApplyOutcome.CORRUPT
    assert store.state.to_dict() == at


def test_snapshots_newer_replace_older_wait_unless_one_is_needed() -> None:
    server, store = synced()
    server.tick()
    assert store.apply(server.full()) is ApplyOutcome.SNAPSHOT  # newer: taken
    assert store.stats.resyncs == 0
    behind = Server()  # a room restored elsewhere, at an older version
    old = behind.full()
    assert store.apply(old) is ApplyOutcome.STALE
    store.expect_snapshot("connection lost")
    assert store.apply(server.tick()) is ApplyOutcome.DROPPED
    assert store.apply(old) is ApplyOutcome.SNAPSHOT  # needed: taken whatever its version
    assert (store.version, store.state.to_dict()) == (behind.enc.version, behind.state.to_dict())
    assert store.stats.resyncs == 1


def test_an_empty_message_changes_nothing() -> None:
    server, store = synced()
    assert server.delta() == b""
    assert store.apply(b"") is ApplyOutcome.EMPTY
    assert store.apply("") is ApplyOutcome.EMPTY
    assert (store.stats.messages, store.stats.patches) == (3, 0)
    assert store.version == server.enc.version


def test_the_last_snapshot_is_kept_and_rebuilds_the_state() -> None:
    server, store = synced()
    at = (server.enc.version, server.state.to_dict())
    store.apply(server.tick())
    snapshot = store.snapshot
    assert isinstance(snapshot, bytes)
    copy = StateStore(Arena)
    copy.apply(snapshot)
    assert (copy.version, copy.state.to_dict()) == at
    server.tick()
    latest = server.full()
    store.expect_snapshot("test")
    store.apply(latest)
    assert store.snapshot == latest


def test_stats_count_bytes_of_every_message() -> None:
    server = Server("json")
    store = StateStore(Arena)
    messages = [server.full(), server.tick(), "{bad"]
    for message in messages:
        store.apply(message)
    assert store.stats.messages == 3
    assert store.stats.bytes == sum(len(m.encode()) for m in messages)
    assert store.stats.last_patch_bytes == len(messages[1].encode())


# -- change events ---------------------------------------------------------------------


def test_a_pattern_sees_the_changes_at_its_paths() -> None:
    server, store = synced()
    hp, anyone, e2 = record(store, "entities.*.hp"), record(store, "entities.*"), \
        record(store, "entities.e2.hp")
    server.state.entities["e1"].hp = 90
    server.state.entities["e2"].hp = 70
    server.state.entities["e1"].x = 5.0
    store.apply(server.delta())
    assert brief(hp) == [(("entities", "e1", "hp"), "set", 90, 100),
                         (("entities", "e2", "hp"), "set", 70, 80)]
    assert brief(e2) == [(("entities", "e2", "hp"), "set", 70, 80)]
    assert anyone == []
    del server.state.entities["e2"]
    server.state.entities["e3"] = Entity(hp=5, name="cy")
    store.apply(server.delta())
    assert [(c.path, c.kind) for c in anyone] == [(("entities", "e2"), "remove"),
                                                  (("entities", "e3"), "add")]
    assert anyone[0].previous.name == "bob"
    assert anyone[1].value is store.state.entities["e3"]
    assert len(hp) == 2  # an add is news at the entity's path only


def test_an_entity_replaced_whole_reports_its_fields_too() -> None:
    server, store = synced()
    anyone, hp, x = record(store, "entities.*"), record(store, "entities.*.hp"), \
        record(store, "entities.*.x")
    server.state.entities["e1"] = Entity(x=1.5, y=2.0, hp=1, name="ada")
    store.apply(server.delta())
    assert [(c.path, c.kind) for c in anyone] == [(("entities", "e1"), "replace")]
    assert brief(hp) == [(("entities", "e1", "hp"), "set", 1, 100)]
    assert x == []  # the same value: no news


def test_patterns_name_lists_dotted_keys_and_the_root() -> None:
    server, store = synced()
    server.state.path.extend([1, 2, 3])
    server.state.entities["a.b"] = Entity(hp=3)
    store.apply(server.delta())
    second, path, dotted, root = record(store, "path.1"), record(store, "path"), \
        record(store, ("entities", "a.b", "hp")), record(store, "")
    server.state.path[1] = 20
    server.state.entities["a.b"].hp = 4
    store.apply(server.delta())
    assert brief(second) == [(("path", 1), "set", 20, 2)]
    assert brief(dotted) == [(("entities", "a.b", "hp"), "set", 4, 3)]
    server.state.path.append(4)  # a length change sends the list whole
    store.apply(server.delta())
    assert brief(path) == [(("path",), "replace", [1, 20, 3, 4], [1, 20, 3])]
    assert root == []
    store.expect_snapshot("test")
    store.apply(server.full())
    assert [(c.path, c.kind, c.value) for c in root] == [((), "replace", store.state)]


def test_unsubscribe_stops_the_callback() -> None:
    server, store = synced()
    seen: list[Change] = []
    unsubscribe = store.on_change("tick", seen.append)
    other = record(store, "tick")
    store.apply(server.tick())
    unsubscribe()
    unsubscribe()  # twice is harmless
    store.apply(server.tick())
    assert [c.value for c in seen] == [1]
    assert [c.value for c in other] == [1, 2]


def test_a_callback_may_unsubscribe_while_changes_are_announced() -> None:
    server, store = synced()
    seen: list[Any] = []

    def once(change: Change) -> None:
        seen.append(change.path)
        unsubscribe()

    unsubscribe = store.on_change("entities.*.hp", once)
    later = record(store, "entities.*.hp")
    server.state.entities["e1"].hp = 1
    server.state.entities["e2"].hp = 2
    store.apply(server.delta())
    assert seen == [("entities", "e1", "hp")]
    assert len(later) == 2


@pytest.mark.parametrize("pattern", ["entities.*.hpp", "tick.x", "entities..hp", "path.x",
                                     "best.kills.more", "nope"])
def test_a_pattern_that_matches_nothing_is_refused(pattern: str) -> None:
    store = StateStore(Arena)
    with pytest.raises(ValueError, match="pattern"):
        store.on_change(pattern, print)


def test_a_callback_that_raises_is_logged_and_the_store_carries_on(
        caplog: pytest.LogCaptureFixture) -> None:
    server, store = synced()

    def broken(change: Change) -> None:
        raise RuntimeError("UI bug")

    store.on_change("tick", broken)
    after = record(store, "tick")
    with caplog.at_level(logging.ERROR, logger="rtctl.client"):
        assert store.apply(server.tick()) is ApplyOutcome.PATCH
        assert store.apply(server.tick()) is ApplyOutcome.PATCH
    assert [c.value for c in after] == [1, 2]
    assert store.state.to_dict() == server.state.to_dict()
    assert len(caplog.records) == 2
    assert all(r.exc_info and "UI bug" in str(r.exc_info[1]) for r in caplog.records)


# -- a snapshot that replaces the state -------------------------------------------------


def test_the_first_snapshot_announces_every_entity_and_value() -> None:
    server = Server()
    server.state.tick = 7
    server.state.scores["ada"] = -3
    store = StateStore(Arena)
    anyone, tick, scores = record(store, "entities.*"), record(store, "tick"), \
        record(store, "scores.*")
    store.apply(server.full())
    assert [(c.path, c.kind, c.value.name) for c in anyone] == [
        (("entities", "e1"), "add", "ada"), (("entities", "e2"), "add", "bob")]
    assert brief(tick) == [(("tick",), "set", 7, 0)]
    assert brief(scores) == [(("scores", "ada"), "add", -3, None)]


def test_a_resync_announces_exactly_what_differs() -> None:
    server, store = synced()
    server.state.scores["ada"] = 1
    server.state.path.append(9)
    store.apply(server.delta())
    anyone, hp, x, score, kills, tick = (record(store, p) for p in (
        "entities.*", "entities.*.hp", "entities.*.x", "scores.*", "best.kills", "tick"))
    server.tick()  # missed
    server.state.entities["e1"].hp = 10
    server.state.entities["e2"].x = 4.0
    del server.state.scores["ada"]
    server.state.entities["e3"] = Entity(name="cy")
    server.state.best.kills = 4
    assert store.apply(server.tick()) is ApplyOutcome.GAP
    assert store.apply(server.full()) is ApplyOutcome.SNAPSHOT
    assert [(c.path, c.kind) for c in anyone] == [(("entities", "e3"), "add")]
    assert brief(hp) == [(("entities", "e1", "hp"), "set", 10, 100)]
    assert [c.path for c in x] == [("entities", "e1", "x"), ("entities", "e2", "x")]
    assert brief(score) == [(("scores", "ada"), "remove", None, 1)]
    assert brief(kills) == [(("best", "kills"), "set", 4, 0)]
    assert brief(tick) == [(("tick",), "set", 2, 0)]
    assert store.state.to_dict() == server.state.to_dict()


def test_minus_zero_is_a_change() -> None:
    server, store = synced()
    server.state.entities["e1"].x = 0.0
    store.apply(server.delta())
    x = record(store, "entities.e1.x")
    server.state.entities["e1"].x = -0.0
    store.expect_snapshot("test")
    store.apply(server.full())
    assert [(c.value, math.copysign(1, c.value)) for c in x] == [(0.0, -1)]
