"""Interpolation as pure functions: fields, delay bounds, the snapshot buffer at chosen instants.

Times and values are binary fractions, so results are exact; angles that are
not representable are compared to 1e-12 rad.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from rtctl.client.interpolation import (
    ANGLE,
    DELAY_SLEW,
    LINEAR,
    STEP,
    DelayBounds,
    Field,
    Interpolator,
    adaptive_delay,
    lerp,
    lerp_angle,
    wrap_angle,
)

LAYOUT = {"x": LINEAR, "angle": ANGLE, "hp": STEP}
FIXED = DelayBounds(minimum=0.25, maximum=0.25)  # render exactly 0.25 s behind
ARC = 2 * math.pi - 6  # from 3 rad to -3 rad the short way: counter-clockwise, across π


@pytest.mark.parametrize(("a", "b", "t", "expected"), [
    (0.7, 0.1, 0.0, 0.7),
    (0.7, 0.1, 1.0, 0.1),  # a + (b - a) * 1 would be 0.09999999999999998
    (1e16, 1.0, 1.0, 1.0),
    (0.0, 4.0, 0.5, 2.0),
    (-2.0, 2.0, 0.25, -1.0),
    (0.0, 4.0, 1.25, 5.0),  # extrapolation
])
def test_lerp(a: float, b: float, t: float, expected: float) -> None:
    assert lerp(a, b, t) == expected


@pytest.mark.parametrize(("angle", "expected"), [
    (0.0, 0.0),
    (1.0, 1.0),
    (math.pi, math.pi),
    (-math.pi, math.pi),  # the interval is (-π, π]
    (math.tau + 1.0, pytest.approx(1.0, abs=1e-12)),
    (-math.tau - 1.0, pytest.approx(-1.0, abs=1e-12)),
    (3.5, pytest.approx(3.5 - math.tau, abs=1e-12)),
    (-3.5, pytest.approx(math.tau - 3.5, abs=1e-12)),
])
def test_wrap_angle(angle: float, expected: Any) -> None:
    assert wrap_angle(angle) == expected


@pytest.mark.parametrize(("a", "b", "t", "expected"), [
    (3.0, -3.0, 0.0, 3.0),
    (-3.0, 3.0, 0.0, -3.0),
    (3.0, -3.0, 1.0, -3.0),
    (-3.0, 3.0, 1.0, 3.0),
    (3.0, -3.0, 0.25, pytest.approx(3.0 + ARC / 4, abs=1e-12)),  # not across 0
    (3.0, -3.0, 0.75, pytest.approx(3.0 + ARC * 0.75 - math.tau, abs=1e-12)),  # past +π
    (-3.0, 3.0, 0.75, pytest.approx(-3.0 - ARC * 0.75 + math.tau, abs=1e-12)),  # past -π
    (0.0, 5.0, 1.0, pytest.approx(5.0 - math.tau, abs=1e-12)),  # b itself is wrapped
    (0.25, -0.25, 0.5, 0.0),
    (0.0, 0.5, 1.25, 0.625),  # extrapolation
])
def test_lerp_angle(a: float, b: float, t: float, expected: Any) -> None:
    assert lerp_angle(a, b, t) == expected


@pytest.mark.parametrize(("kind", "a", "b", "t", "blended", "diff", "shifted"), [
    # blended = lerp(a, b, t); diff = diff(a, b); shifted = shift(b, diff, 0.5)
    (LINEAR, 5.0, 2.0, 0.5, 3.5, 3.0, 3.5),
    (LINEAR, 5.0, 2.0, 1.5, 0.5, 3.0, 3.5),
    (ANGLE, -3.0, 3.0, 0.5, pytest.approx(math.pi, abs=1e-12), pytest.approx(ARC, abs=1e-12),
     pytest.approx(3.0 + ARC / 2, abs=1e-12)),
    (ANGLE, 0.5, 0.25, 0.5, 0.375, 0.25, 0.375),
    (STEP, "red", "blue", 0.5, "red", 0, "blue"),
    (STEP, "red", "blue", 1.0, "blue", 0, "blue"),
    (STEP, "red", "blue", 1.5, "blue", 0, "blue"),  # never extrapolated: the latest
])
def test_fields(kind: Field, a: Any, b: Any, t: float, blended: Any, diff: Any,
                shifted: Any) -> None:
    assert kind.lerp(a, b, t) == blended
    assert kind.diff(a, b) == diff
    assert kind.shift(b, kind.diff(a, b), 0.5) == shifted


def test_angle_shift_wraps() -> None:
    assert ANGLE.shift(3.0, 1.0, 0.5) == pytest.approx(3.5 - math.tau, abs=1e-12)


@pytest.mark.parametrize(("interval", "jitter", "expected"), [
    (0.0625, 0.0, 0.1875),  # three intervals
    (0.0625, 0.03125, 0.25),  # plus twice the jitter
    (0.01, 0.0, 0.05),  # the minimum
    (0.25, 0.125, 0.5),  # the maximum
])
def test_adaptive_delay(interval: float, jitter: float, expected: float) -> None:
    assert adaptive_delay(interval, jitter, DelayBounds()) == expected


@pytest.mark.parametrize(("minimum", "maximum"), [(0.5, 0.25), (-0.125, 0.25)])
def test_delay_bounds_refused(minimum: float, maximum: float) -> None:
    with pytest.raises(ValueError, match="minimum <= maximum"):
        DelayBounds(minimum=minimum, maximum=maximum)


def test_capacity_refused() -> None:
    with pytest.raises(ValueError, match="two snapshots"):
        Interpolator(LAYOUT, interval=0.5, capacity=1)


def _buffer(*snapshots: tuple[float, dict[str, dict[str, Any]]], **options: Any
            ) -> Interpolator[str]:
    """Snapshots received at their own server time (offset 0), rendered 0.25 s behind."""
    interpolator: Interpolator[str] = Interpolator(LAYOUT, interval=0.5, bounds=FIXED, **options)
    for t, entities in snapshots:
        assert interpolator.push(t, entities, t)
    return interpolator


A = (1.0, {"a": {"x": 0.0, "angle": 3.0, "hp": 10}, "gone": {"x": 1.0}})
B = (1.5, {"a": {"x": 4.0, "angle": -3.0, "hp": 9}, "new": {"x": 7.0}})
C = (2.0, {"a": {"x": 6.0, "angle": -3.0, "hp": 9}, "new": {"x": 7.5}})


@pytest.mark.parametrize(("now", "entities", "depth"), [
    (1.0, A[1], 3),  # before the oldest: shown as it is while the buffer fills
    (1.25, {"a": {"x": 0.0, "angle": 3.0, "hp": 10}, "new": {"x": 7.0}}, 2),
    (1.5, {"a": {"x": 2.0, "angle": pytest.approx(math.pi, abs=1e-12), "hp": 10},
           "new": {"x": 7.0}}, 2),
    (2.0, {"a": {"x": 5.0, "angle": -3.0, "hp": 9}, "new": {"x": 7.25}}, 1),
])
def test_bracketing(now: float, entities: dict[str, Any], depth: int) -> None:
    """Between two snapshots each field blends by its kind; an entity only in the newer
    one is shown from it (it appeared), one only in the older is gone."""
    frame = _buffer(A, B, C).sample(now)
    assert (frame.time, frame.entities, frame.mode, frame.depth, frame.delay) == (
        now - 0.25, entities, "interpolated", depth, 0.25)


@pytest.mark.parametrize(("now", "x", "angle", "mode"), [
    (2.25, 1.0, 0.5, "extrapolated"),  # at the newest
    (2.375, 1.125, 0.5625, "extrapolated"),
    (2.5, 1.25, 0.625, "extrapolated"),  # the cap, 0.25 s past the newest
    (2.75, 1.25, 0.625, "frozen"),  # held at the cap
    (9.0, 1.25, 0.625, "frozen"),
])
def test_extrapolation_capped(now: float, x: float, angle: float, mode: str) -> None:
    old = (1.0, {"p": {"x": 0.0, "angle": 0.0, "hp": 3}, "left": {"x": 0.0}})
    new = (2.0, {"p": {"x": 1.0, "angle": 0.5, "hp": 2}, "came": {"x": 9.0}})
    frame = _buffer(old, new).sample(now)
    assert (frame.time, frame.mode, frame.depth) == (now - 0.25, mode, 0)
    assert frame.entities == {"p": {"x": x, "angle": angle, "hp": 2}, "came": {"x": 9.0}}


@pytest.mark.parametrize(("extrapolate", "now", "mode"), [
    (0.0, 2.25, "extrapolated"), (0.0, 2.375, "frozen"), (0.5, 2.625, "extrapolated")])
def test_extrapolation_cap_is_configurable(extrapolate: float, now: float, mode: str) -> None:
    frame = _buffer((1.0, {"p": {"x": 0.0}}), (2.0, {"p": {"x": 1.0}}),
                    extrapolate=extrapolate).sample(now)
    assert frame.mode == mode
    assert frame.entities["p"]["x"] == 1.0 + min(now - 0.25 - 2.0, extrapolate)


@pytest.mark.parametrize(("now", "mode"), [(1.25, "extrapolated"), (1.5, "extrapolated"),
                                           (1.625, "frozen")])
def test_single_snapshot_is_held(now: float, mode: str) -> None:
    frame = _buffer((1.0, {"p": {"x": 2.0}})).sample(now)
    assert (frame.entities, frame.mode, frame.depth) == ({"p": {"x": 2.0}}, mode, 0)


def test_empty() -> None:
    frame = _buffer().sample(3.0)
    assert (frame.entities, frame.mode, frame.depth) == ({}, "empty", 0)


def test_stale_and_duplicate_snapshots_ignored() -> None:
    interpolator = _buffer((1.0, {"p": {"x": 0.0}}), (2.0, {"p": {"x": 2.0}}))
    jitter = interpolator.jitter
    assert not interpolator.push(1.5, {"p": {"x": 99.0}}, 7.0)  # overtaken on the way
    assert not interpolator.push(2.0, {"p": {"x": 99.0}}, 9.0)  # a duplicate
    assert interpolator.jitter == jitter
    assert interpolator.sample(1.75).entities == {"p": {"x": 1.0}}


def test_capacity_bounds_the_buffer() -> None:
    snapshots = [(float(t), {"p": {"x": float(t)}}) for t in range(1, 6)]
    frame = _buffer(*snapshots, capacity=3).sample(0.0)  # before them all
    assert (frame.entities, frame.depth) == ({"p": {"x": 3.0}}, 3)


def test_pushed_entities_are_copied() -> None:
    entities = {"p": {"x": 1.0}}
    interpolator = _buffer((1.0, entities))
    entities["p"]["x"] = 5.0
    assert interpolator.sample(1.0).entities == {"p": {"x": 1.0}}


def test_clock_offset_from_the_fastest_arrival() -> None:
    interpolator: Interpolator[str] = Interpolator(LAYOUT, interval=0.5, bounds=FIXED)
    for t, transit in [(1.0, 0.5), (2.0, 0.25), (3.0, 0.75)]:
        interpolator.push(100 + t, {}, t + transit)
    assert interpolator.sample(4.0).time == 4.0 + 100 - 0.25 - 0.25


def test_render_time_waits_when_the_offset_falls() -> None:
    """The fastest snapshot ages out of the 2 s window: the offset falls by 0.5 s, and
    the render time holds rather than going back."""
    interpolator: Interpolator[str] = Interpolator(LAYOUT, interval=0.5, bounds=FIXED)
    interpolator.push(1.0, {}, 1.0)
    interpolator.push(2.0, {}, 2.5)
    held = interpolator.sample(2.75).time
    assert held == 2.75 - 0.25
    interpolator.push(3.5, {}, 4.0)  # received 2 s after the fastest one: it ages out
    assert interpolator.sample(3.0).time == held
    assert interpolator.sample(3.625).time == 3.625 - 0.5 - 0.25


def _jittery(transits: list[float], *, interval: float = 0.0625,
             bounds: DelayBounds = DelayBounds()) -> Interpolator[str]:
    interpolator: Interpolator[str] = Interpolator(LAYOUT, interval=interval, bounds=bounds)
    for t, transit in enumerate(transits, start=1):
        interpolator.push(float(t), {}, t + transit)
    return interpolator


def test_jitter_estimate() -> None:
    """RFC 3550 §6.4.1: J += (|D| - J) / 16, D the change in transit time."""
    assert _jittery([0.25]).jitter == 0.0
    assert _jittery([0.25, 0.75]).jitter == 0.5 / 16
    assert _jittery([0.25, 0.75, 0.75]).jitter == 0.5 / 16 * 15 / 16


def test_delay_adapts_to_jitter_slewed() -> None:
    interpolator = _jittery([0.25, 0.75])
    assert interpolator.delay == 0.1875  # three intervals: no jitter measured yet
    assert interpolator.target_delay == 0.1875 + 2 * 0.5 / 16
    times = [interpolator.sample(now).time for now in (10.0, 10.125, 11.0)]
    assert interpolator.delay == 0.25
    assert times == sorted(times)
    interpolator = _jittery([0.25, 0.75])
    interpolator.sample(10.0)
    interpolator.sample(10.125)
    assert interpolator.delay == 0.1875 + DELAY_SLEW * 0.125


@pytest.mark.parametrize(("interval", "transits", "delay"), [
    (0.0625, [0.0, 100.0] * 4, 0.5),  # huge jitter: the maximum
    (0.001, [0.0] * 8, 0.05),  # fast, steady snapshots: the minimum
    (0.0625, [0.0] * 8, 0.1875),
])
def test_delay_stays_within_bounds(interval: float, transits: list[float], delay: float
                                   ) -> None:
    interpolator = _jittery(transits, interval=interval)
    for now in range(200, 210):
        interpolator.sample(float(now))
        assert DelayBounds().minimum <= interpolator.delay <= DelayBounds().maximum
    assert interpolator.delay == delay


def test_render_time_never_goes_back_when_the_delay_grows() -> None:
    """The target jumps from 0.1875 s to 0.5 s between two frames 10 ms apart: the delay
    grows by DELAY_SLEW * 10 ms, so the render time still moves forward."""
    interpolator: Interpolator[str] = Interpolator(LAYOUT, interval=0.0625)
    for t, received in [(1.0, 1.0), (2.0, 3.0), (3.0, 3.0)]:
        interpolator.push(t, {}, received)
    before = interpolator.sample(5.0)
    for t, received in [(4.0, 5.0), (5.0, 5.0)]:
        interpolator.push(t, {}, received)
    assert interpolator.target_delay == 0.5
    after = interpolator.sample(5.0 + 1 / 128)
    assert after.delay == before.delay + DELAY_SLEW / 128
    assert after.time > before.time
