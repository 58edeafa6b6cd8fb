"""Prediction and reconciliation of the own entity, at chosen instants; whole-number moves
keep every distance and blend exact."""

from __future__ import annotations

import math
from functools import reduce
from typing import Any, NamedTuple

import pytest

from rtctl.client.interpolation import ANGLE, LINEAR, STEP
from rtctl.client.prediction import Predictor, Reconciliation
from rtctl.client.rollback import RollbackTooFar


class Body(NamedTuple):
    x: float
    y: float
    angle: float = 0.0
    hp: int = 10


Move = tuple[float, float]
LAYOUT = {"x": LINEAR, "y": LINEAR, "angle": ANGLE, "hp": STEP}
INPUTS: list[Move] = [(1.0, 0.0), (0.0, 2.0), (1.0, 1.0), (-1.0, 0.0), (0.0, 1.0)]


def move(body: Body, step: Move) -> Body:
    return body._replace(x=body.x + step[0], y=body.y + step[1])


def fields(body: Body) -> dict[str, Any]:
    return body._asdict()


def _predictor(**options: Any) -> Predictor[Body, Move]:
    predictor: Predictor[Body, Move] = Predictor(move, Body(0.0, 0.0), layout=LAYOUT,
                                                 fields=fields, **options)
    for n, step in enumerate(INPUTS, start=1):
        assert predictor.apply(step) == n
    return predictor


def _server(ack: int, dx: float = 0.0, dy: float = 0.0) -> Body:
    """The server's state after input ``ack``: the same moves, displaced by (dx, dy)."""
    body = reduce(move, INPUTS[:ack], Body(0.0, 0.0))
    return body._replace(x=body.x + dx, y=body.y + dy)


def test_apply_moves_at_once() -> None:
    predictor = _predictor()
    assert (predictor.seq, predictor.acked, predictor.state) == (5, 0, _server(5))


@pytest.mark.parametrize(("limit", "seqs"), [(2, [4, 5]), (9, [1, 2, 3, 4, 5]), (0, [])])
def test_unacked(limit: int, seqs: list[int]) -> None:
    assert _predictor().unacked(limit) == [(n, INPUTS[n - 1]) for n in seqs]


def test_reconcile_deterministic_is_exact() -> None:
    """The server agrees: rewound and re-applied, the prediction is where it was."""
    predictor = _predictor()
    result = predictor.reconcile(3, _server(3), 1.0)
    assert result == Reconciliation(ack=3, error=0.0, replayed=2, correction=0.0)
    assert (predictor.state, predictor.acked) == (_server(5), 3)
    assert predictor.unacked(9) == [(4, INPUTS[3]), (5, INPUTS[4])]
    assert predictor.view(1.0) == fields(_server(5))


def test_reconcile_replays_on_the_servers_state() -> None:
    """The server had the player 3 right and 4 down (pushed): the pending inputs are
    re-applied on top of that, and the jump is smoothed over 0.5 s."""
    predictor = _predictor(smoothing=0.5)
    before = fields(predictor.state)
    result = predictor.reconcile(3, _server(3, 3.0, -4.0), 1.0)
    assert result == Reconciliation(ack=3, error=5.0, replayed=2, correction=5.0)
    assert predictor.state == move(move(_server(3, 3.0, -4.0), INPUTS[3]), INPUTS[4])
    after = fields(predictor.state)
    assert predictor.view(1.0) == before
    assert predictor.view(1.25) == {**after, "x": after["x"] - 1.5, "y": after["y"] + 2.0}
    assert predictor.view(1.5) == after
    assert predictor.view(9.0) == after


def test_view_is_a_fresh_dict() -> None:
    predictor = _predictor()
    predictor.view(0.0)["x"] = 99.0
    assert predictor.view(0.0)["x"] == _server(5).x


def test_step_fields_jump_angles_glide_the_short_way() -> None:
    predictor = _predictor(smoothing=0.5)
    predictor.reconcile(5, _server(5)._replace(angle=3.0), 0.0)
    predictor.reconcile(5, _server(5)._replace(angle=-2.5, hp=7), 1.0)
    arc = 5.5 - math.tau  # from -2.5 back to 3.0, clockwise across -π
    assert predictor.view(1.0)["angle"] == pytest.approx(3.0, abs=1e-12)
    assert predictor.view(1.25)["angle"] == pytest.approx(-2.5 + arc / 2, abs=1e-12)
    assert predictor.view(1.0)["hp"] == 7


@pytest.mark.parametrize(("snap", "shown"), [(None, 3.0), (5.0, 3.0), (4.0, 0.0)])
def test_snap(snap: float | None, shown: float) -> None:
    """A correction larger than ``snap`` (here 5) is a teleport: shown at once."""
    predictor = _predictor(smoothing=0.5, snap=snap)
    predictor.reconcile(5, _server(5, -3.0, 4.0), 1.0)
    assert predictor.view(1.0)["x"] - predictor.state.x == shown


def test_correction_starts_from_what_is_shown() -> None:
    """A second correction mid-glide: the view does not jump, the glide restarts."""
    predictor = _predictor(smoothing=0.5)
    predictor.reconcile(3, _server(3, 4.0, 0.0), 1.0)
    shown = predictor.view(1.25)
    result = predictor.reconcile(4, _server(4, 4.0, 8.0), 1.25)
    assert result is not None
    assert (result.error, result.correction) == (8.0, 8.0)
    assert predictor.view(1.25) == shown
    assert predictor.view(1.75) == fields(predictor.state)


def test_no_jump_leaves_the_glide_alone() -> None:
    """The same state again (at rest, each snapshot repeats the ack): the glide goes on."""
    predictor = _predictor(smoothing=0.5)
    predictor.reconcile(3, _server(3, 4.0, 0.0), 1.0)
    halfway = predictor.view(1.25)
    result = predictor.reconcile(3, _server(3, 4.0, 0.0), 1.125)
    assert result == Reconciliation(ack=3, error=0.0, replayed=2, correction=0.0)
    assert predictor.view(1.25) == halfway


def test_same_ack_compares_with_the_last_server_state() -> None:
    """Nothing was applied since: the server moved the player by itself (a push)."""
    predictor = _predictor()
    predictor.reconcile(5, _server(5), 1.0)
    result = predictor.reconcile(5, _server(5, 0.0, 2.0), 1.5)
    assert result == Reconciliation(ack=5, error=2.0, replayed=0, correction=2.0)
    assert predictor.state == _server(5, 0.0, 2.0)


def test_stale_ack_ignored() -> None:
    predictor = _predictor()
    predictor.reconcile(4, _server(4), 1.0)
    assert predictor.reconcile(3, _server(3, 9.0, 9.0), 2.0) is None
    assert (predictor.state, predictor.acked, predictor.view(2.0)) == (
        _server(5), 4, fields(_server(5)))


def test_ack_ahead_refused() -> None:
    predictor = _predictor()
    with pytest.raises(ValueError, match="ack 6 is ahead of the last input applied, 5"):
        predictor.reconcile(6, _server(5, 1.0), 1.0)
    assert (predictor.state, predictor.acked) == (_server(5), 0)


def test_capacity_bounds_what_is_kept() -> None:
    """Capacity 3: the two oldest unacknowledged inputs are gone, so an ack for input 1
    cannot be reconciled (and changes nothing); one for input 2 can."""
    predictor = _predictor(capacity=3)
    assert [n for n, _ in predictor.unacked(9)] == [3, 4, 5]
    with pytest.raises(RollbackTooFar):
        predictor.reconcile(1, _server(1, 5.0), 1.0)
    assert (predictor.state, predictor.acked) == (_server(5), 0)
    result = predictor.reconcile(2, _server(2, 5.0), 1.0)
    assert result == Reconciliation(ack=2, error=5.0, replayed=3, correction=5.0)
    assert predictor.state == _server(5, 5.0)
