"""Rollback: predicted inputs, late and early arrivals, the window, authoritative corrections.

The unit tests use a step whose state is the log of the inputs each frame ran
with, so a state says exactly what was predicted and what was re-run. The
property test plays a small physical game with inputs arriving late and out of
order, and checks the result against the fold of the step over the schedule.
"""

from __future__ import annotations

import struct
from collections.abc import Hashable, Mapping
from functools import reduce
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtctl.client.rollback import DEFAULT_CAPACITY, Rollback, RollbackTooFar

Log = tuple[tuple[tuple[Any, str], ...], ...]
EMPTY: Log = ()


def log(state: Log, inputs: Mapping[Hashable, str]) -> Log:
    """One frame: the inputs it ran with, appended, in player order."""
    return (*state, tuple(sorted(inputs.items())))


def _played(*frames: Mapping[Hashable, str], **options: Any) -> Rollback[Log, str]:
    rollback: Rollback[Log, str] = Rollback(log, EMPTY, **options)
    for inputs in frames:
        rollback.advance(inputs)
    return rollback


def test_advance_predicts_missing_players() -> None:
    """A player seen before and missing repeats their last input; one never seen is
    left out."""
    rollback = _played({0: "a", 1: "x"}, {0: "b"}, {0: "c", 2: "p"}, {1: "y"})
    assert rollback.state == (((0, "a"), (1, "x")), ((0, "b"), (1, "x")),
                              ((0, "c"), (1, "x"), (2, "p")), ((0, "c"), (1, "y"), (2, "p")))
    assert rollback.frame == 4


def test_predict_hook() -> None:
    rollback = _played({0: "a", 1: "x"}, {0: "b"}, predict=lambda last: None)
    assert rollback.state == (((0, "a"), (1, "x")), ((0, "b"),))


def test_input_as_predicted_costs_nothing() -> None:
    rollback = _played({0: "a", 1: "x"}, {0: "b"}, {0: "c"})
    before = rollback.state
    assert rollback.add_input(1, 1, "x") == 0
    assert (rollback.state, rollback.resimulated, rollback.rollbacks) == (before, 0, 0)


def test_late_input_rewinds_and_resimulates() -> None:
    """Player 1's input for frame 1 differs from the guess: frames 1..3 run again, and the
    later frames now predict from it."""
    rollback = _played({0: "a", 1: "x"}, {0: "b"}, {0: "c"}, {0: "d"})
    assert rollback.add_input(1, 1, "y") == 3
    assert rollback.state == (((0, "a"), (1, "x")), ((0, "b"), (1, "y")),
                              ((0, "c"), (1, "y")), ((0, "d"), (1, "y")))
    assert (rollback.resimulated, rollback.rollbacks, rollback.frame) == (3, 1, 4)
    assert rollback.add_input(3, 1, "z") == 1  # only the last frame changes
    assert (rollback.resimulated, rollback.rollbacks) == (4, 2)


def test_late_input_of_a_new_player() -> None:
    rollback = _played({0: "a"}, {0: "b"}, {0: "c"})
    assert rollback.add_input(1, 1, "x") == 2
    assert rollback.state == (((0, "a"),), ((0, "b"), (1, "x")), ((0, "c"), (1, "x")))


def test_early_input_is_kept_for_its_frame() -> None:
    rollback = _played({0: "a", 1: "x"})
    assert rollback.add_input(2, 1, "z") == 0
    rollback.advance({0: "b"})
    rollback.advance({0: "c"})
    assert rollback.state[1:] == (((0, "b"), (1, "x")), ((0, "c"), (1, "z")))
    assert rollback.resimulated == 0


@pytest.mark.parametrize(("frame", "resimulated"), [(2, 2), (3, 1), (4, 0)])
def test_window_edge(frame: int, resimulated: int) -> None:
    """Capacity 2 after four frames: frames 2 and 3 are kept, 4 is the present."""
    rollback = _played({0: "a"}, {0: "b"}, {0: "c"}, {0: "d"}, capacity=2)
    assert rollback.start == 2
    assert rollback.add_input(frame, 0, "z") == resimulated


def test_too_far_changes_nothing() -> None:
    rollback = _played({0: "a", 1: "x"}, {0: "b"}, {0: "c"}, {0: "d"}, capacity=2)
    before = (rollback.state, rollback.frame, rollback.start, rollback.resimulated)
    with pytest.raises(RollbackTooFar, match=r"frame 1 .* frames 2\.\.4 .*capacity 2"):
        rollback.add_input(1, 1, "y")
    assert (rollback.state, rollback.frame, rollback.start, rollback.resimulated) == before
    rollback.advance({0: "e"})
    assert rollback.state[-1] == ((0, "e"), (1, "x"))  # the refused input was not kept
    assert isinstance(RollbackTooFar("x"), ValueError)



def test_too_far_ahead_is_refused_and_not_kept() -> None:
    """Capacity 2 at frame 4: inputs for frames up to 6 are kept, 7 is refused, so a
    sender cannot make the memory grow without bound."""
    rollback = _played({0: "a"}, {0: "b"}, {0: "c"}, {0: "d"}, capacity=2)
    assert rollback.add_input(6, 1, "y") == 0  # the edge: kept for frame 6
    with pytest.raises(RollbackTooFar, match=r"frame 7 .* up to 6 \(capacity 2 past .* 4\)"):
        rollback.add_input(7, 1, "z")
    for inputs in ({0: "e"}, {0: "f"}, {0: "g"}, {0: "h"}):
        rollback.advance(inputs)
    assert rollback.state[-2:] == (((0, "g"), (1, "y")), ((0, "h"), (1, "y")))  # not "z"

def test_correct_replaces_and_reruns() -> None:
    rollback = _played({0: "a", 1: "x"}, {0: "b"}, {0: "c"}, {0: "d"})
    server: Log = (((0, "A"), (1, "X")),)
    assert rollback.correct(1, server) == 3
    assert rollback.state == (*server, ((0, "b"), (1, "x")), ((0, "c"), (1, "x")),
                              ((0, "d"), (1, "x")))
    assert rollback.state_at(1) == server
    assert (rollback.start, rollback.resimulated, rollback.rollbacks) == (1, 3, 1)
    with pytest.raises(RollbackTooFar):  # forgotten: the authority will not go back
        rollback.add_input(0, 1, "y")
    assert rollback.add_input(2, 1, "y") == 2  # later inputs still re-run from there
    assert rollback.state[2:] == (((0, "c"), (1, "y")), ((0, "d"), (1, "y")))


def test_correct_the_present() -> None:
    rollback = _played({0: "a"}, {0: "b"})
    server: Log = (((0, "now"),),)
    assert rollback.correct(2, server) == 0
    assert (rollback.state, rollback.start, rollback.rollbacks) == (server, 2, 0)


@pytest.mark.parametrize(("frame", "error"), [(3, ValueError), (-1, RollbackTooFar)])
def test_correct_refused(frame: int, error: type[Exception]) -> None:
    rollback = _played({0: "a"}, {0: "b"})
    before = rollback.state
    with pytest.raises(error, match=f"frame {frame} "):
        rollback.correct(frame, ())
    assert rollback.state == before
    with pytest.raises(error):
        rollback.state_at(frame)


def test_state_at() -> None:
    rollback = _played({0: "a"}, {0: "b"})
    assert [rollback.state_at(frame) for frame in range(3)] == [
        (), (((0, "a"),),), (((0, "a"),), ((0, "b"),))]


def test_capacity_refused() -> None:
    with pytest.raises(ValueError, match="at least one frame"):
        Rollback(log, EMPTY, capacity=0)


# --- property: the resimulated result is the authoritative one, exactly -----------------

Plane = tuple[tuple[float, float], ...]
Move = tuple[int, int]
Schedule = list[Mapping[Hashable, Move]]
Game = tuple[int, Schedule, list[tuple[int, int, int]]]  # capacity, schedule, arrivals
MOVES: list[Move] = [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)]  # few: guesses often right
SPEED = 0.7
PUSH = 0.3


def f32(value: float) -> float:
    """Round to float32, as a game sharing its step across machines would."""
    return float(struct.unpack("f", struct.pack("f", value))[0])


def plane(state: Plane, inputs: Mapping[Hashable, Move]) -> Plane:
    """Each player with an input moves; then any player within 1 of an earlier one is
    pushed away along x, so one player's inputs move the others."""
    bodies = list(state)
    for player, (dx, dy) in sorted(cast("Mapping[int, Move]", inputs).items()):
        x, y = bodies[player]
        bodies[player] = (f32(x + SPEED * dx), f32(y + SPEED * dy))
    for i in range(len(bodies)):
        for j in range(i + 1, len(bodies)):
            (xi, yi), (xj, yj) = bodies[i], bodies[j]
            if abs(xi - xj) + abs(yi - yj) < 1:
                bodies[j] = (f32(xj + (PUSH if xj >= xi else -PUSH)), yj)
    return tuple(bodies)


@st.composite
def games(draw: st.DrawFn) -> Game:
    """(capacity, the schedule of every player's inputs, remote arrivals in order as
    (frame of arrival, frame, player)): from 2 frames early (at most `capacity`, the
    furthest ahead an input is taken) to `capacity` late."""
    capacity = draw(st.integers(1, DEFAULT_CAPACITY))
    players = draw(st.integers(2, 4))
    frames = draw(st.integers(1, 40))
    move = st.sampled_from(MOVES)
    schedule: Schedule = [{p: draw(move) for p in range(players)} for _ in range(frames)]
    arrivals = sorted(
        (min(max(frame + draw(st.integers(-min(2, capacity), capacity)), 0), frames),
         draw(st.integers(0, 3)), frame, player)
        for frame in range(frames) for player in range(1, players))
    return capacity, schedule, [(at, frame, player) for at, _, frame, player in arrivals]


@settings(derandomize=True, database=None, deadline=None, max_examples=150)
@given(games())
def test_resimulation_equals_the_fold(game: Game) -> None:
    """Player 0 is local (inputs on time); the others' arrive late, early and out of order.
    Once all are in, the state is the fold of the step over the schedule, and no arrival
    re-ran more frames than it was late."""
    capacity, schedule, arrivals = game
    start: Plane = tuple((float(2 * p), 0.0) for p in range(len(schedule[0])))
    rollback: Rollback[Plane, Move] = Rollback(plane, start, capacity=capacity)
    pending = iter(arrivals)
    arrival = next(pending, None)
    for frame in range(len(schedule) + 1):
        while arrival is not None and arrival[0] == frame:
            _, late, player = arrival
            assert rollback.add_input(late, player, schedule[late][player]) <= max(
                frame - late, 0)
            arrival = next(pending, None)
        if frame < len(schedule):
            rollback.advance({0: schedule[frame][0]})
    assert rollback.state == reduce(plane, schedule, start)
    assert rollback.frame == len(schedule)
    assert rollback.resimulated <= sum(max(at - frame, 0) for at, frame, _ in arrivals)
