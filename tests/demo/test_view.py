"""A player's netcode without I/O: the test makes the snapshots and the clock."""

from __future__ import annotations

import pytest

from rtctl.client.netstats import NetStats
from rtctl.demo.game import TICK_RATE, ArenaState, Body, Input, Player, move
from rtctl.demo.view import REDUNDANCY, PlayerView

FRAME = 1 / TICK_RATE


def arena(tick: int, me: Body, ack: int, spawns: int = 1, **others: Body) -> ArenaState:
    state = ArenaState(tick=tick)
    for name, body in {"me": me, **others}.items():
        state.players[name] = Player(x=body.x, y=body.y, angle=body.angle, hp=100,
                                     ack=ack if name == "me" else 0, spawns=spawns)
    return state


START = Body(100.0, 100.0, 0.0)


def test_nothing_is_sent_before_there_is_a_player_to_move() -> None:
    assert PlayerView("me").command(Input(dx=1), 0.0) == []


def test_each_message_carries_the_newest_unacknowledged_inputs() -> None:
    view = PlayerView("me")
    view.snapshot(arena(1, START, 0), 0.0, 0.0)
    sent = [view.command(Input(dx=1), n * FRAME) for n in range(REDUNDANCY + 2)]
    assert [item[0] for item in sent[0]] == [1]
    assert [item[0] for item in sent[-1]] == list(range(3, REDUNDANCY + 3))
    assert view.metrics.inputs_sent == REDUNDANCY + 2


def test_a_server_that_ran_the_same_inputs_agrees_exactly() -> None:
    view = PlayerView("me")
    view.snapshot(arena(1, START, 0), 0.0, 0.0)
    server = START
    for n in range(5):
        view.command(Input(dx=1, dy=n % 2), n * FRAME)
    for n in range(3):
        server = move(server, Input(dx=1, dy=n % 2))
    seen = view.snapshot(arena(2, server, 3), 0.2, 0.0)
    assert seen.reconciliation is not None
    assert (seen.reconciliation.error, seen.reconciliation.replayed) == (0.0, 2)
    assert [seq for seq, _ in seen.acked] == [1, 2, 3]
    assert [made for _, made in seen.acked] == [0.0, FRAME, 2 * FRAME]


def test_a_player_made_afresh_is_numbered_on_from_the_last_input_sent() -> None:
    """After a reconnect the server's player is new (ack 0) and its queue starts at the
    first input it hears of: the view goes on numbering, and reconciles with it."""
    view = PlayerView("me")
    view.snapshot(arena(1, START, 0), 0.0, 0.0)
    for n in range(4):
        view.command(Input(dx=1), n * FRAME)
    view.snapshot(arena(2, START, 4), 0.2, 0.0)
    fresh = Body(300.0, 200.0, 0.0)
    view.snapshot(arena(9, fresh, 0), 1.0, 0.0)
    sent = view.command(Input(dy=1), 1.0)
    assert [item[0] for item in sent] == [5]
    seen = view.snapshot(arena(10, move(fresh, Input(dy=1)), 5), 1.1, 0.0)
    assert seen.reconciliation is not None
    assert seen.reconciliation.error == 0.0
    assert view.predictor is not None
    assert view.predictor.state == move(fresh, Input(dy=1))


def test_an_outage_longer_than_the_inputs_kept_starts_the_prediction_over() -> None:
    view = PlayerView("me")
    view.snapshot(arena(1, START, 0), 0.0, 0.0)
    for n in range(300):  # 10 s of inputs, none acknowledged: more than the 256 kept
        view.command(Input(dx=1), n * FRAME)
    seen = view.snapshot(arena(2, START, 1), 10.0, 0.0)
    assert seen.reconciliation is None
    assert view.predictor is not None
    assert view.predictor.state == START


def test_the_scene_has_both_pictures() -> None:
    view = PlayerView("me")
    other = Body(50.0, 60.0, 1.0)
    view.snapshot(arena(30, START, 0, you=other), 0.0, 0.0)
    scene = view.render(0.25)
    assert scene.latest == {"you": {"x": 50.0, "y": 60.0, "angle": 1.0, "hp": 100}}
    assert scene.latest_time == 30 / TICK_RATE + 0.25
    own, others = scene.visible(predict=False, interpolate=False)
    assert own == {"x": 100.0, "y": 100.0, "angle": 0.0, "hp": 100}
    assert others == scene.latest
    assert scene.visible(predict=True, interpolate=True)[1] == scene.remotes.entities


def test_a_snapshot_of_the_arena_without_this_player_reconciles_nothing() -> None:
    view = PlayerView("me")
    state = arena(3, START, 0)
    del state.players["me"]
    seen = view.snapshot(state, 0.0, 1000.0)
    assert (seen.reconciliation, seen.age, view.render(0.0).own) == (None, None, None)


def test_after_a_drop_the_next_player_is_predicted_afresh_even_before_any_ack() -> None:
    """The connection dropped before the server acknowledged anything: the player the room
    shows after the rejoin is new, so the inputs made before are not replayed on it."""
    view = PlayerView("me")
    view.snapshot(arena(1, START, 0), 0.0, 0.0)
    for n in range(20):
        view.command(Input(dx=1), n * FRAME)
    view.lost()
    fresh = Body(400.0, 200.0, 0.0)
    view.snapshot(arena(5, fresh, 0), 1.0, 0.0)
    assert view.predictor is not None
    assert view.predictor.state == fresh
    assert [item[0] for item in view.command(Input(), 1.0)] == [21]


def test_a_respawn_is_a_teleport_not_an_error_of_the_prediction() -> None:
    view = PlayerView("me")
    view.snapshot(arena(1, START, 0), 0.0, 0.0)
    view.command(Input(dx=1), 0.0)
    elsewhere = Body(500.0, 300.0, 0.0)
    seen = view.snapshot(arena(2, elsewhere, 1, spawns=2), 0.1, 0.0)
    assert seen.respawned
    assert seen.reconciliation is not None
    assert seen.reconciliation.error > 0
    later = view.snapshot(arena(3, elsewhere, 1, spawns=2), 0.2, 0.0)
    assert not later.respawned


def test_ticks_run_together_after_a_stall_are_not_lost_snapshots() -> None:
    """The arena runs the ticks a stall owed in one go: one version, several ticks."""
    view = PlayerView("me")
    view.snapshot(arena(1, START, 0), 0.0, 0.0, version=1)
    view.snapshot(arena(5, START, 0), 0.1, 0.0, version=2)
    assert view.metrics.read(NetStats().snapshot(0.1), jitter=0.0, now=0.1).snapshot_loss == 0
    view.snapshot(arena(7, START, 0), 0.2, 0.0, version=4)  # version 3 never came
    assert view.metrics.read(NetStats().snapshot(0.2), jitter=0.0,
                             now=0.2).snapshot_loss == pytest.approx(1 / 4)
