"""The arena's server side, hook by hook: the test is the room's clock (no gateway)."""

from __future__ import annotations

from typing import Any

import pytest

from rtctl.demo.game import DAMAGE, MAX_HP, RADIUS, RELOAD_TICKS, SPEED, TICK_RATE, Input
from rtctl.demo.room import MAX_CATCH_UP, MAX_INPUTS, ArenaRoom
from rtctl.exceptions import InvalidParams

STEP = SPEED / TICK_RATE


def arena(*users: str, **options: Any) -> ArenaRoom:
    room = ArenaRoom("arena:1", options)
    room.on_create()
    for user in users:
        room.on_join(user)
    return room


def send(room: ArenaRoom, user: str, *inputs: tuple[int, Input]) -> Any:
    return room.on_input(user, {"inputs": [command.to_wire(seq) for seq, command in inputs]})


def place(room: ArenaRoom, user: str, x: float, y: float) -> None:
    player = room.state.players[user]
    player.x, player.y = x, y


def test_players_spawn_inside_the_walls_where_the_seed_says() -> None:
    one, two = arena("a", "b", seed=3), arena("a", "b", seed=3)
    assert {name: (p.x, p.y) for name, p in one.state.players.items()} == {
        name: (p.x, p.y) for name, p in two.state.players.items()}
    for player in one.state.players.values():
        assert player.hp == MAX_HP
        assert player.x >= RADIUS
        assert player.y >= RADIUS


def test_inputs_apply_in_order_one_a_tick_and_are_acknowledged() -> None:
    room = arena("a")
    place(room, "a", 100.0, 100.0)
    reply = send(room, "a", *[(seq, Input(dx=1)) for seq in range(1, 6)])
    assert reply == {"ack": 0}
    room.on_tick(1 / TICK_RATE)
    player = room.state.players["a"]
    assert (player.ack, player.x) == (1, pytest.approx(100 + STEP))
    send(room, "a", *[(seq, Input(dx=1)) for seq in range(2, 7)])  # 2..5 again: redundant
    for _ in range(5):
        room.on_tick(1 / TICK_RATE)
    assert (player.ack, player.missed) == (6, 0)
    assert player.x == pytest.approx(100 + 6 * STEP)
    assert room.state.tick == 6


def test_ticks_without_input_buy_a_short_burst() -> None:
    """Inputs held up by the network catch up: two idle ticks saved two credits, so the
    next tick applies three (the most a tick applies)."""
    room = arena("a")
    room.on_tick(2 / TICK_RATE)
    send(room, "a", *[(seq, Input(dx=1)) for seq in range(1, 6)])
    room.on_tick(1 / TICK_RATE)
    assert room.state.players["a"].ack == 3


def test_an_input_never_received_is_counted_missed() -> None:
    room = arena("a")
    send(room, "a", (1, Input()), (4, Input()))
    room.on_tick(2 / TICK_RATE)
    assert (room.state.players["a"].ack, room.state.players["a"].missed) == (4, 2)


@pytest.mark.parametrize("data", [
    None, [], {"inputs": []}, {"inputs": [[1, 0, 0, 0.0, 0, 0.0]], "extra": 1},
    {"inputs": [[1, 0, 0, 0.0, 0, 0.0]] * (MAX_INPUTS + 1)},
])
def test_a_malformed_message_is_refused(data: Any) -> None:
    with pytest.raises(InvalidParams, match="'data' must be"):
        arena("a").on_input("a", data)


def test_one_bad_input_refuses_the_message_and_queues_none_of_it() -> None:
    room = arena("a")
    place(room, "a", 100.0, 100.0)
    with pytest.raises(InvalidParams, match=r"data.inputs\[1\]: an input's dx"):
        room.on_input("a", {"inputs": [[1, 1, 0, 0.0, 0, 0.0], [2, 5, 0, 0.0, 0, 0.0]]})
    room.on_tick(1 / TICK_RATE)
    assert (room.state.players["a"].ack, room.state.players["a"].x) == (0, 100.0)


def test_a_shot_is_judged_where_the_shooter_saw_its_target() -> None:
    """The target was in the line of fire at tick 2 and has left it since: a shooter
    looking at tick 2 (its interpolation delay) hits; one looking at now misses."""
    room = arena("shooter", "target")
    place(room, "shooter", 100.0, 100.0)
    place(room, "target", 300.0, 100.0)
    room.on_tick(1 / TICK_RATE)
    room.on_tick(1 / TICK_RATE)  # tick 2: the target is on the ray (angle 0)
    place(room, "target", 300.0, 250.0)
    for _ in range(3):
        room.on_tick(1 / TICK_RATE)  # ticks 3..5: off the ray
    send(room, "shooter", (1, Input(fire=True, view=5.0)))
    room.on_tick(1 / TICK_RATE)
    assert room.state.players["target"].hp == MAX_HP
    for _ in range(RELOAD_TICKS):
        room.on_tick(1 / TICK_RATE)
    send(room, "shooter", (2, Input(fire=True, view=2.0)))
    room.on_tick(1 / TICK_RATE)
    assert room.state.players["target"].hp == MAX_HP - DAMAGE


def test_a_view_older_than_the_rewind_limit_is_judged_at_the_limit() -> None:
    room = arena("shooter", "target")
    place(room, "shooter", 100.0, 100.0)
    place(room, "target", 300.0, 100.0)
    room.on_tick(1 / TICK_RATE)  # tick 1: on the ray
    place(room, "target", 300.0, 250.0)
    for _ in range(2 * TICK_RATE):  # two seconds: beyond the one-second rewind
        room.on_tick(1 / TICK_RATE)
    send(room, "shooter", (1, Input(fire=True, view=1.0)))
    room.on_tick(1 / TICK_RATE)
    assert room.state.players["target"].hp == MAX_HP


def test_reload_then_a_kill_scores_and_respawns_the_target() -> None:
    room = arena("shooter", "target")
    place(room, "shooter", 100.0, 100.0)
    place(room, "target", 200.0, 100.0)
    room.on_tick(1 / TICK_RATE)
    shots = [(seq, Input(fire=True, view=float(room.state.tick))) for seq in range(1, 4)]
    send(room, "shooter", *shots)
    room.on_tick(1 / TICK_RATE)  # three inputs this tick, but one shot: reloading
    assert room.state.players["target"].hp == MAX_HP - DAMAGE
    fired = 1
    seq = 4
    while room.state.players["shooter"].score == 0:
        for _ in range(RELOAD_TICKS):
            room.on_tick(1 / TICK_RATE)
        send(room, "shooter", (seq, Input(fire=True, view=float(room.state.tick))))
        room.on_tick(1 / TICK_RATE)
        seq += 1
        fired += 1
    target = room.state.players["target"]
    assert fired == -(-MAX_HP // DAMAGE)
    assert target.hp == MAX_HP
    assert (target.x, target.y) != (200.0, 100.0)


def test_a_player_stays_until_its_last_connection_leaves() -> None:
    room = arena("a")
    room.on_join("a")
    room.on_leave("a")
    assert "a" in room.state.players
    room.on_leave("a")
    assert "a" not in room.state.players


@pytest.mark.parametrize(("options", "problem"), [
    ({"entities": 3}, "unknown options"), ({"seed": "x"}, "seed must be an integer"),
    ({"seed": True}, "seed must be an integer")])
def test_bad_options_are_refused(options: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidParams, match=problem):
        arena(**options)


def test_a_stall_is_caught_up_tick_by_tick_up_to_a_limit() -> None:
    """After 4 ticks' worth of stall the room runs 4 ticks (each taking its inputs); after
    a long one, MAX_CATCH_UP and the rest is skipped."""
    room = arena("a")
    place(room, "a", 100.0, 100.0)
    send(room, "a", *[(seq, Input(dx=1)) for seq in range(1, 5)])
    room.on_tick(4 / TICK_RATE)
    assert room.state.tick == 4
    assert room.state.players["a"].ack == 4
    room.on_tick(100 / TICK_RATE)
    assert room.state.tick == 4 + MAX_CATCH_UP
    room.on_tick(1 / TICK_RATE)
    assert room.state.tick == 5 + MAX_CATCH_UP


def test_every_placement_by_the_server_is_counted() -> None:
    room = arena("shooter", "target")
    assert room.state.players["target"].spawns == 1
    place(room, "shooter", 100.0, 100.0)
    place(room, "target", 200.0, 100.0)
    room.state.players["target"].hp = DAMAGE
    room.on_tick(1 / TICK_RATE)
    send(room, "shooter", (1, Input(fire=True, view=1.0)))
    room.on_tick(1 / TICK_RATE)
    assert room.state.players["target"].spawns == 2
    assert room.state.players["shooter"].spawns == 1


def test_a_restored_arena_keeps_its_clock_and_lets_players_rejoin_afresh() -> None:
    room = arena("a")
    room.on_tick(3 / TICK_RATE)
    room.on_restore()
    assert (room.state.tick, dict(room.state.players)) == (3, {})
    room.on_join("b")
    room.on_tick(1 / TICK_RATE)
    assert list(room.state.players) == ["b"]
