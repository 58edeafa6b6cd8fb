"""Rollback over the arena's own rules equals the arena server's result exactly (issue 12,
"Done when"): random input schedules, remote inputs arriving late and out of order."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

from hypothesis import given, settings
from hypothesis import strategies as st

from rtctl.client.rollback import Rollback
from rtctl.demo.game import TICK_RATE, Body, Input, body_of, move
from rtctl.demo.room import ArenaRoom

PLAYERS = ("a", "b", "c")  # "a" runs the rollback; b and c are remote
WINDOW = 8
World = tuple[tuple[str, Body], ...]


def step(world: World, inputs: Mapping[Hashable, Input]) -> World:
    """One server tick: each player with an input moves by it (the arena's move)."""
    return tuple((name, move(body, inputs[name]) if name in inputs else body)
                 for name, body in world)


commands = st.builds(Input, dx=st.sampled_from((-1, 0, 1)), dy=st.sampled_from((-1, 0, 1)),
                     aim=st.floats(-3.2, 3.2).map(lambda a: round(a, 4)),
                     fire=st.just(False), view=st.just(0.0))
Arrival = tuple[int, int, str, int]  # (arrives before frame, order among those, player, frame)


@st.composite
def schedules(draw: st.DrawFn) -> tuple[list[dict[str, Input]], list[Arrival]]:
    """Every player's input for each frame, and when each remote one arrives: from on
    time to WINDOW - 1 frames late, in any order."""
    frames = draw(st.integers(1, 30))
    inputs = [{name: draw(commands) for name in PLAYERS} for _ in range(frames)]
    arrivals = [(frame + draw(st.integers(0, WINDOW - 1)), draw(st.integers(0, 3)), name, frame)
                for frame in range(frames) for name in PLAYERS[1:]]
    return inputs, sorted(arrivals)


@settings(derandomize=True, database=None, deadline=None, max_examples=60)
@given(schedules())
def test_rollback_ends_where_the_arena_server_does(
        case: tuple[list[dict[str, Input]], list[Arrival]]) -> None:
    inputs, arrivals = case
    room = ArenaRoom("arena:1", {"seed": 3})
    room.on_create()
    for name in PLAYERS:
        room.on_join(name)
    world: World = tuple((name, body_of(room.state.players[name])) for name in PLAYERS)
    client = Rollback(step, world, capacity=WINDOW)

    for seq, frame_inputs in enumerate(inputs, start=1):  # the server gets them on time
        for name in PLAYERS:
            room.on_input(name, {"inputs": [frame_inputs[name].to_wire(seq)]})
        room.on_tick(1 / TICK_RATE)

    pending = list(arrivals)
    replayed = 0
    for frame, frame_inputs in enumerate(inputs):
        while pending and pending[0][0] <= frame:
            _, _, name, late = pending.pop(0)
            replayed += client.add_input(late, name, inputs[late][name])
        client.advance({"a": frame_inputs["a"]})
    for _, _, name, late in pending:  # the last ones, after the last frame
        replayed += client.add_input(late, name, inputs[late][name])

    assert client.state == tuple((name, body_of(room.state.players[name]))
                                 for name in PLAYERS)
    assert replayed <= len(arrivals) * WINDOW
