"""The arena's rules: inputs on the wire, the deterministic move, the shot."""

from __future__ import annotations

import math

import orjson
import pytest

from rtctl.demo.game import (
    HEIGHT,
    RADIUS,
    RANGE,
    SPEED,
    TICK_RATE,
    WIDTH,
    Body,
    Input,
    hit,
    move,
)
from rtctl.state.types import FLOAT32

STEP = SPEED / TICK_RATE


def test_an_input_round_trips_through_the_wire() -> None:
    command = Input(dx=-1, dy=1, aim=0.5, fire=True, view=41.25)
    assert Input.from_wire(command.to_wire(7)) == (7, command)
    assert command.to_wire(7) == [7, -1, 1, 0.5, 1, 41.25]


@pytest.mark.parametrize(("item", "problem"), [
    ({"seq": 1}, "is a list"),
    ([1, 0, 0, 0.0, 0], "is a list"),
    ([0, 0, 0, 0.0, 0, 0.0], "seq is an integer from 1 to 4294967295"),
    ([2**32, 0, 0, 0.0, 0, 0.0], "seq is an integer from 1 to 4294967295"),
    ([True, 0, 0, 0.0, 0, 0.0], "seq is an integer from 1"),
    ([1.0, 0, 0, 0.0, 0, 0.0], "seq is an integer from 1"),
    ([1, 2, 0, 0.0, 0, 0.0], "dx and dy are -1, 0 or 1"),
    ([1, 0, 0.5, 0.0, 0, 0.0], "dx and dy are -1, 0 or 1"),
    ([1, 0, 0, "up", 0, 0.0], "aim is a finite number"),
    ([1, 0, 0, float("nan"), 0, 0.0], "aim is a finite number"),
    ([1, 0, 0, 0.0, 2, 0.0], "fire is 0 or 1"),
    ([1, 0, 0, 0.0, 1.0, 0.0], "fire is 0 or 1"),
    ([1, 0, 0, 0.0, 0, -1], "view is a tick"),
    ([1, 0, 0, 0.0, 0, float("inf")], "view is a tick"),
])
def test_a_malformed_input_says_what_is_wrong(item: object, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Input.from_wire(item)


def test_a_move_is_one_step_straight_or_diagonal_and_float32() -> None:
    start = Body(100.0, 100.0, 0.0)
    assert move(start, Input(dx=1)) == Body(FLOAT32.check(100 + STEP), 100.0, 0.0)
    diagonal = move(start, Input(dx=1, dy=-1))
    distance = math.dist((diagonal.x, diagonal.y), (100, 100))
    assert distance == pytest.approx(STEP, abs=1e-5)  # float32's ulp at 100 is 7.6e-6
    assert all(FLOAT32.check(v) == v for v in diagonal)


def test_walls_stop_a_player_at_its_radius() -> None:
    assert move(Body(RADIUS, HEIGHT - RADIUS, 0.0), Input(dx=-1, dy=1))[:2] == (RADIUS,
                                                                                HEIGHT - RADIUS)
    assert move(Body(WIDTH - RADIUS - 1, 50.0, 0.0), Input(dx=1)).x == WIDTH - RADIUS


def test_the_aim_is_wrapped_into_one_turn() -> None:
    angle = move(Body(50.0, 50.0, 0.0), Input(aim=3 * math.pi / 2)).angle
    assert angle == FLOAT32.check(-math.pi / 2)


def test_the_same_inputs_give_the_same_bits() -> None:
    inputs = [Input(dx=(i % 3) - 1, dy=((i // 3) % 3) - 1, aim=i * 0.37) for i in range(200)]
    runs = []
    for _ in range(2):
        body = Body(320.0, 180.0, 0.0)
        for command in inputs:
            body = move(body, command)
        runs.append(body)
    assert runs[0] == runs[1]


def test_a_shot_hits_the_nearest_disc_on_its_ray() -> None:
    targets = [("far", 300.0, 100.0), ("near", 200.0, 100.0 + RADIUS - 1),
               ("behind", 50.0, 100.0), ("aside", 150.0, 100.0 + RADIUS + 1)]
    assert hit((100.0, 100.0), 0.0, targets) == "near"
    assert hit((100.0, 100.0), math.pi, targets) == "behind"
    assert hit((100.0, 100.0), math.pi / 2, targets) is None


def test_a_shot_reaches_exactly_its_range() -> None:
    edge = 100.0 + RANGE + RADIUS  # the disc's near edge at RANGE
    assert hit((100.0, 0.0), 0.0, [("t", edge, 0.0)]) == "t"
    assert hit((100.0, 0.0), 0.0, [("t", edge + 1, 0.0)]) is None


def test_a_quantized_input_is_read_back_exactly_in_few_digits() -> None:
    command = Input(dx=1, aim=math.pi / 3, view=12.3456789).quantized()
    wire = orjson.dumps(command.to_wire(3))
    assert wire == b"[3,1,0,1.0472,0,12.35]"
    assert Input.from_wire(orjson.loads(wire)) == (3, command)
