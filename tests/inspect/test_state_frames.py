"""The inspector decodes state frames (issue 11, "Tools"): a patch shows the fields it
changes, with its version and size; without a schema, or before a snapshot, its header."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from rtctl.client import Client, SyncedRoom
from rtctl.gateway.server import Gateway
from rtctl.inspect import states as states_module
from rtctl.inspect.capture import feed
from rtctl.inspect.filters import parse_filter
from rtctl.inspect.pairing import Pairing, Row
from rtctl.inspect.recorder import Recorder
from rtctl.inspect.states import SHOWN_CHANGES, StateFrames
from rtctl.inspect.view import frame_preview, plain_line, rich_line
from rtctl.protocol import jsonrpc
from rtctl.protocol.frames import state_frame
from rtctl.protocol.tap import IN, OUT, Disconnected, FrameSeen, TapEvent
from rtctl.services import builtin_services
from rtctl.services.drift import Arena, DriftRoom, Entity
from rtctl.state import Encoder, Schema, float32, int16, uint32
from rtctl.tui.screens.inspector import _detail
from tests.cli.test_cli import rtctl
from tests.conftest import TIMING, GatewayFactory, make_token

ROOM = "drift:1"
ROOT = Path(__file__).resolve().parents[2]


def binary(message: bytes, conn: str = "c-1", room: str = ROOM) -> FrameSeen:
    return FrameSeen.of(1, conn, "alice", OUT, state_frame(room, message), binary=True)


def patch_note(message: str, conn: str = "c-1") -> FrameSeen:
    """The ``state.patch`` notification a connection on ``rtctl.v1`` gets instead."""
    note = jsonrpc.encode_notification("state.patch", {"room": ROOM,
                                                       "message": orjson.loads(message)})
    return FrameSeen.of(1, conn, "bob", OUT, jsonrpc.dumps(note))


def arena() -> Arena:
    state = Arena()
    for index, x in enumerate((512.25, 10.0, 20.0)):
        state.entities[f"e{index}"] = Entity(x=x, y=1.5, hp=100, name=f"n{index}")
    return state


def move(state: Arena) -> None:
    """The shape of a drift tick: a move, an arrival, a departure."""
    state.entities["e0"].x = 515.75
    state.entities["e1"].x = 0.1  # a float32: shown with the digits that make it, not 17
    state.entities["e103"] = Entity(name="new")
    del state.entities["e2"]


MOVED = ("-entities.e2, entities.e0.x 512.25 → 515.75, entities.e1.x 10.0 → 0.1, "
         "+entities.e103")


def tick_42(*, json_: bool = False) -> tuple[Arena, Encoder, Any, Any]:
    """A state, its encoder, its full message at version 41 and the delta :func:`move` makes."""
    state = arena()
    enc = Encoder(state, version=41)
    full = enc.full_json() if json_ else enc.full()
    move(state)
    return state, enc, full, enc.delta_json(version=42) if json_ else enc.delta(version=42)


def hp_stream(*hps: int) -> tuple[Encoder, list[bytes]]:
    """A full state at version 1, then a delta for each hp that e0 takes in turn."""
    state = arena()
    enc = Encoder(state, version=1)
    messages = [enc.full()]
    for hp in hps:
        state.entities["e0"].hp = hp
        messages.append(enc.delta())
    return enc, messages


def phrases(row: Row) -> list[str] | None:
    """What a row's state frame changed, as the inspector words it."""
    return None if row.state is None else row.state.to_json()["changes"]


def rows(states: StateFrames, events: list[TapEvent]) -> list[Row]:
    pairing = Pairing(states)
    return [pairing.see(event) for event in events]


def test_a_patch_shows_what_it_changed_with_its_version_and_size() -> None:
    _, _, full, delta = tick_42()
    shown = rows(StateFrames(Arena), [binary(full), binary(delta)])
    assert [r.state.text() if r.state else None for r in shown] == [
        f"state drift:1 v41 full {len(full)} B  entities={{3}}",
        f"state drift:1 v42←41 delta {len(delta)} B  {MOVED}",
    ]
    line = rich_line(shown[1]).plain
    assert line.endswith(f"state drift:1 v42←41 delta {len(delta)} B  {MOVED}")
    assert f"{len(delta) + 2 + len(ROOM)} B" in line  # the frame's own size stays in its column
    assert json.loads(plain_line(shown[1]))["state"] == {
        "room": ROOM, "kind": "delta", "version": 42, "base": 41, "size": len(delta),
        "changes": MOVED.split(", "), "note": None}


def test_the_json_encoding_shows_the_same_changes() -> None:
    _, _, full, delta = tick_42(json_=True)
    shown = rows(StateFrames(Arena), [patch_note(full), patch_note(delta)])
    assert shown[1].method == "state.patch"
    assert shown[1].state is not None
    assert shown[1].state.text() == (f"state drift:1 v42←41 delta "
                                     f"{len(orjson.dumps(orjson.loads(delta)))} B  {MOVED}")
    assert rich_line(shown[1]).plain.endswith(MOVED)


def test_a_long_patch_is_cut_on_its_line_and_whole_in_the_detail_pane() -> None:
    state = arena()
    enc = Encoder(state, version=1)
    full = enc.full()
    for index in range(SHOWN_CHANGES + 4):
        state.entities[f"m{index}"] = Entity(hp=index)
    row = rows(StateFrames(Arena), [binary(full), binary(enc.delta())])[1]
    assert frame_preview(row).endswith(", +entities.m7, … 4 more")
    whole = frame_preview(row, whole=True).splitlines()
    assert whole[1:] == [f"  +entities.m{index}" for index in range(SHOWN_CHANGES + 4)]
    assert str(_detail(row)).splitlines() == whole  # the TUI's detail pane shows the same


class Pos(Schema):
    x: float32
    y: float32


class Game(Schema):
    tick: uint32
    pos: Pos
    scores: dict[str, float32]
    path: list[int16]
    title: str
    on: bool


def test_every_kind_of_field_reads_plainly_and_as_it_was_when_it_came() -> None:
    game = Game()
    enc = Encoder(game, version=1)
    messages = [enc.full()]
    game.scores["bob"] = 0.1
    game.pos = Pos(x=1)
    game.path.append(3)
    game.title = "é" * 30
    game.tick, game.on = 5, True
    messages.append(enc.delta())
    game.pos.x = 2.5
    game.path[0] = -4
    del game.scores["bob"]
    game.scores["al"] = float("-inf")
    messages.append(enc.delta())
    shown = rows(StateFrames(Game), [binary(m, room="g") for m in messages])
    assert [phrases(r) for r in shown] == [
        ["tick=0", "pos={…}", "scores={0}", "path=[0]", 'title=""', "on=false"],
        ["tick 0 → 5", "pos replaced", "+scores.bob=0.1", "path [0] → [1]",
         f'title "" → "{"é" * 24}"…', "on false → true"],
        ["pos.x 1.0 → 2.5", "-scores.bob", "+scores.al=-inf", "path[0] 3 → -4"],
    ]  # worded at the end, after later frames moved the copy on: as they were


def test_without_a_schema_a_frame_shows_its_header_only() -> None:
    state, enc, full, delta = tick_42()
    state.entities["e0"].x = 1.0
    enc.commit(version=43)
    catch_up = enc.since(41)  # for a member that fell behind: absolute values
    shown = rows(StateFrames(), [binary(full), binary(delta), binary(catch_up)])
    assert [r.state.text() if r.state else None for r in shown] == [
        f"state drift:1 v41 full {len(full)} B  (no schema)",
        f"state drift:1 v42←41 delta {len(delta)} B  (no schema)",
        f"state drift:1 v43←41 absolute delta {len(catch_up)} B  (no schema)",
    ]


def test_a_listener_that_joined_mid_stream_waits_for_the_next_snapshot() -> None:
    state, enc, _, missed = tick_42()
    state.entities["e0"].hp = 7
    after_missed = enc.delta(version=43)
    resync = enc.full(version=43)
    state.entities["e0"].hp = 8
    decoded = enc.delta(version=44)
    shown = rows(StateFrames(Arena), [binary(m) for m in (missed, after_missed, resync,
                                                          decoded)])
    assert [r.state.note if r.state else None for r in shown] == [
        "no snapshot yet", "no snapshot yet", None, None]
    assert [phrases(r) for r in shown[2:]] == [["entities={3}"], ["entities.e0.hp 7 → 8"]]


def test_a_corrupt_frame_shows_as_such_and_the_copy_carries_on() -> None:
    _, (full, delta) = hp_stream(1)
    broken_frame = state_frame(ROOM, full)[:4]  # the room name cut short
    events: list[TapEvent] = [
        binary(full), binary(delta[:-1]),  # truncated: nothing of it applies
        FrameSeen.of(1, "c-1", "alice", OUT, broken_frame, binary=True),
        binary(b"\x07\x01"),  # no such message kind
        binary(delta)]
    shown = rows(StateFrames(Arena), events)
    notes = [r.state.note or "" if r.state else "" for r in shown]
    assert notes[1].startswith("corrupt: ")
    assert notes[2].startswith("corrupt: state frame cut short")
    assert notes[3] == "corrupt: unknown state message kind 0x07"
    assert phrases(shown[4]) == ["entities.e0.hp 100 → 1"]
    line = rich_line(shown[2]).plain  # a corrupt frame's bytes are shown too
    assert line.endswith(f"<binary 4 bytes> {broken_frame.hex(' ')}")


def test_frames_that_are_no_state_are_left_alone() -> None:
    other_type = FrameSeen.of(1, "c-1", "alice", OUT, b"\x02\x00", binary=True)  # reserved
    sent_in = FrameSeen.of(1, "c-1", "alice", IN, state_frame(ROOM, b"\x01\x00"), binary=True)
    shown = rows(StateFrames(Arena), [other_type, sent_in])
    assert [r.state for r in shown] == [None, None]
    assert rich_line(shown[0]).plain.endswith("<binary 2 bytes> 02 00")


def test_two_connections_keep_their_own_copies_until_they_close() -> None:
    _, (full, delta, after) = hp_stream(5, 6)
    shown = rows(StateFrames(Arena), [
        binary(full, "c-1"), binary(delta, "c-1"), binary(delta, "c-2"),
        Disconnected(t_us=2, conn="c-1", user="alice", code=1000, reason=""),
        binary(after, "c-1")])
    assert [r.state.note if r.state else "-" for r in shown] == [
        None, None, "no snapshot yet", "-", "no snapshot yet"]


def test_a_fetched_schema_decodes_from_the_snapshot_seen_before_it_came() -> None:
    enc, (full, held, later) = hp_stream(5, 6)
    states = StateFrames(fetching=True)
    pairing = Pairing(states)
    early = [pairing.see(binary(m)) for m in (full, held[:-1], held)]  # one corrupt among them
    assert [r.state.note if r.state else None for r in early] == ["schema not fetched yet"] * 3
    assert states.wanted() == [ROOM]
    pairing.see(patch_note(enc.full_json(), "c-2"))  # the same room on another connection
    assert states.wanted() == []  # asked once
    pairing.see(binary(full, room="drift:2"))  # each room: one may pick its schema by options
    assert states.wanted() == ["drift:2"]
    states.learn(ROOM, Arena)
    row = pairing.see(binary(later))
    assert phrases(row) == ["entities.e0.hp 5 → 6"]


def test_a_copy_held_too_long_waits_for_a_full_and_a_failed_fetch_leaves_headers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, (full, *deltas) = hp_stream(1, 2, 3)
    monkeypatch.setattr(states_module, "MAX_WAITING", 2)
    states = StateFrames(fetching=True)
    pairing = Pairing(states)
    for message in (full, *deltas[:2]):  # three held on c-1: one too many
        pairing.see(binary(message, "c-1"))
    pairing.see(binary(full, "c-2"))
    states.learn(ROOM, Arena)
    too_far, kept = pairing.see(binary(deltas[2], "c-1")), pairing.see(binary(deltas[0], "c-2"))
    assert too_far.state is not None
    assert too_far.state.note == "no snapshot yet"
    assert phrases(kept) == ["entities.e0.hp 100 → 1"]

    refused = StateFrames(fetching=True)
    pairing = Pairing(refused)
    pairing.see(binary(full))
    refused.learn(ROOM, None)
    row = pairing.see(binary(deltas[0]))
    assert row.state is not None
    assert row.state.note == "no schema"
    assert refused.wanted() == []


def test_rooms_learnt_long_ago_are_forgotten_but_their_copies_keep_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, (full, first) = hp_stream(5)
    monkeypatch.setattr(states_module, "MAX_ROOMS", 2)
    states = StateFrames(fetching=True)
    pairing = Pairing(states)
    for room in ("drift:1", "drift:2", "drift:3"):
        pairing.see(binary(full, room=room))
        assert states.wanted() == [room]
        states.learn(room, Arena)  # the third makes the gateway's first the one forgotten
    assert phrases(pairing.see(binary(first, room="drift:1"))) == ["entities.e0.hp 100 → 5"]
    assert states.wanted() == []  # c-1's copy still has its schema
    pairing.see(binary(full, "c-2", room="drift:1"))
    pairing.see(binary(full, "c-2", room="drift:3"))
    assert states.wanted() == ["drift:1"]  # a new copy of a forgotten room asks again
    states.learn("drift:1", Arena)
    assert phrases(pairing.see(binary(first, "c-2", room="drift:1"))) == [
        "entities.e0.hp 100 → 5"]


def test_room_filters_state_frames() -> None:
    enc = Encoder(arena(), version=1)
    full = enc.full()
    other = binary(full, room="lobby")
    text = FrameSeen.of(1, "c-1", "alice", IN, '{"jsonrpc":"2.0","method":"room.join",'
                                               '"params":{"room":"drift:1"},"id":1}')
    shown = rows(StateFrames(), [binary(full), other, patch_note(enc.full_json()), text])
    assert [parse_filter("room=drift:*").matches(r) for r in shown] == [True, False, True, False]
    assert [parse_filter("room!=lobby kind=binary").matches(r) for r in shown] == [
        True, False, False, False]


def test_a_recording_replays_decoded_with_schema(tmp_path: Path) -> None:
    _, _, full, delta = tick_42()
    path = tmp_path / "state.jsonl"
    with Recorder(path) as recorder:
        feed([binary(full), binary(delta)], [recorder])
    done = rtctl("inspect", "--replay", str(path), "--schema", "rtctl.services.drift:Arena")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].endswith(f"v42←41 delta {len(delta)} B  {MOVED}")
    header_only = rtctl("inspect", "--replay", str(path))
    assert header_only.stdout.splitlines()[1].endswith("(no schema)")


@pytest.mark.parametrize(("spec", "message"), [
    ("nocolon", "--schema expects MODULE:ATTR (like mygame.state:Arena), got 'nocolon'"),
    ("no_such_module_xyz:Arena", "--schema: cannot import module 'no_such_module_xyz'"),
    ("rtctl.services.drift:Nope", "module 'rtctl.services.drift' has no attribute 'Nope'"),
    ("rtctl.services.drift:DriftRoom", "rtctl.services.drift:DriftRoom is not an rtctl "
                                       "Schema class"),
    ("rtctl.state:Schema", "--schema: rtctl.state:Schema: Schema declares no fields"),
])
def test_a_bad_schema_is_one_line_exit_2(tmp_path: Path, spec: str, message: str) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    done = rtctl("inspect", "--replay", str(empty), "--schema", spec)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert message in done.stderr


@pytest.mark.parametrize("schema", [[], ["--schema", "rtctl.services.drift:Arena"]],
                         ids=["fetched", "given"])
async def test_live_inspect_shows_decoded_patches_of_both_encodings(
    start_gateway: GatewayFactory, schema: list[str],
) -> None:
    gateway: Gateway = await start_gateway(
        services=builtin_services(room_types={"drift": DriftRoom}))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rtctl", "inspect", f"ws://127.0.0.1:{gateway.port}",
        "--token", make_token("ops", role="admin"), *schema, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout = proc.stdout
    assert stdout is not None
    clients: list[Client] = []

    async def until(*parts: str) -> str:
        """The next line that holds every one of ``parts``."""
        while True:
            text = (await stdout.readline()).decode()
            assert text, "rtctl inspect ended early"
            if all(part in text for part in parts):
                return text

    try:
        await asyncio.wait_for(until("listening"), 20 * TIMING)
        for user, takes_binary in (("alice", True), ("bob", False)):
            client = Client(gateway.url, token=make_token(user), binary=takes_binary)
            clients.append(client)
            await client.connect()
            await SyncedRoom.join(client, ROOM, Arena, options={
                "entities": 5, "movers": 2, "tick_rate": 50, "seed": 3})
        full = await asyncio.wait_for(until("alice", "state drift:1 v", " full "), 20 * TIMING)
        if schema:
            assert full.rstrip().endswith("entities={5}")
        moved = [await asyncio.wait_for(until(user, "delta", ".x ", " → "), 20 * TIMING)
                 for user in ("alice", "bob")]
        assert " binary " in moved[0]
        assert " state.patch " in moved[1]
    finally:
        for client in clients:
            await client.close()
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), 20 * TIMING)
    assert proc.returncode == 0, err.decode()
