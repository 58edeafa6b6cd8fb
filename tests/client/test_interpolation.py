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
    LINEAR,
    SLEW,
    STEP,
    DelayBounds,
    Field,
    Interpolator,
    adaptive_delay,
    lerp,
    lerp_angle,
    linear_distance,
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


def test_linear_distance_is_euclidean_over_the_linear_fields_both_hold() -> None:
    layout = {"x": LINEAR, "y": LINEAR, "z": LINEAR, "angle": ANGLE}
    assert linear_distance(layout, {"x": 1.0, "y": 1.0, "z": 0.0, "angle": 0.0},
                           {"x": 4.0, "y": -3.0, "angle": 3.0}) == 5.0


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


RESPAWN = ((1.0, {"p": {"x": 0.0, "angle": 0.0, "hp": 3}, "q": {"x": 0.0}}),
           (1.5, {"p": {"x": 100.0, "angle": 1.0, "hp": 4}, "q": {"x": 4.0}}))


@pytest.mark.parametrize(("snap", "now", "p", "q"), [
    # between the two: p drawn where it was until the newer snapshot's time; q, which
    # moved exactly `snap`, did not teleport and glides
    (4.0, 1.5, {"x": 0.0, "angle": 0.0, "hp": 3}, 2.0),
    (4.0, 1.75, {"x": 100.0, "angle": 1.0, "hp": 4}, 4.0),
    # past the newer: p held where it landed, never extrapolated across the jump
    (4.0, 2.0, {"x": 100.0, "angle": 1.0, "hp": 4}, 6.0),
    (None, 1.5, {"x": 50.0, "angle": 0.5, "hp": 3}, 2.0),  # no snap: the old glide...
    (None, 2.0, {"x": 150.0, "angle": 1.5, "hp": 4}, 6.0),  # ... and the throw off the map
])
def test_a_teleport_is_drawn_as_a_step(snap: float | None, now: float, p: dict[str, Any],
                                       q: float) -> None:
    frame = _buffer(*RESPAWN, snap=snap).sample(now)
    assert frame.entities == {"p": p, "q": {"x": q}}


def test_a_much_older_snapshot_starts_a_new_timeline() -> None:
    """The margin here is 0.5 s (the delay bound 0.25 s plus the extrapolation cap): a
    snapshot older by more is the room made afresh, not one overtaken on the way."""
    interpolator = _buffer((10.0, {"p": {"x": 0.0}}), (10.5, {"p": {"x": 1.0}}))
    assert interpolator.push(11.0, {"p": {"x": 2.0}}, 11.25)  # 0.25 s slower: jitter
    assert interpolator.sample(11.25).time == 11.0
    assert not interpolator.push(10.5, {"p": {"x": 9.0}}, 11.5)  # by the margin: reordered
    assert interpolator.push(0.0, {"p": {"x": 5.0}}, 12.0)
    assert interpolator.jitter == 0.0  # the 11 s change of transit is no jitter
    frame = interpolator.sample(12.0)  # the new clock, and no floor from the old one
    assert (frame.time, frame.entities, frame.depth) == (-0.25, {"p": {"x": 5.0}}, 1)
    assert interpolator.push(0.5, {"p": {"x": 6.0}}, 12.5)
    assert interpolator.sample(12.5).entities == {"p": {"x": 5.5}}


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


def test_a_falling_offset_is_slewed() -> None:
    """The fastest snapshot ages out of the 2 s window: the offset falls by 0.5 s, and
    the render clock runs at 0.75 × real time until it has caught up, not frozen."""
    interpolator: Interpolator[str] = Interpolator(LAYOUT, interval=0.5, bounds=FIXED)
    interpolator.push(1.0, {}, 1.0)
    interpolator.push(2.0, {}, 2.5)
    assert interpolator.sample(2.75).time == 2.75 - 0.25
    interpolator.push(3.5, {}, 4.0)  # received 2 s after the fastest one: it ages out
    assert interpolator.sample(3.0).time == 2.5 + 0.25 * (1 - SLEW)
    assert interpolator.sample(5.0).time == 5.0 - 0.5 - 0.25  # caught up
    assert interpolator.delay == 0.25


def test_a_rising_offset_is_slewed() -> None:
    """The latency drops by 0.5 s: the offset rises at once, the render clock runs at
    1.25 × real time until it has caught up instead of jumping 0.5 s ahead."""
    interpolator: Interpolator[str] = Interpolator(LAYOUT, interval=0.5, bounds=FIXED)
    interpolator.push(1.0, {}, 1.5)
    assert interpolator.sample(1.5).time == 1.5 - 0.5 - 0.25
    interpolator.push(2.0, {}, 2.0)
    frame = interpolator.sample(2.0)
    assert frame.time == 0.75 + 0.5 * (1 + SLEW)
    assert frame.delay == 0.25 + 0.5 - 0.5 * SLEW  # behind the clock by what is left
    assert interpolator.sample(4.0).time == 4.0 - 0.25


def test_another_clock_far_ahead_is_stepped_to() -> None:
    """An offset 98.5 s ahead (more than the margin, 0.5 s here) is no latency change:
    slewing would take minutes."""
    interpolator: Interpolator[str] = Interpolator(LAYOUT, interval=0.5, bounds=FIXED)
    interpolator.push(1.0, {}, 1.0)
    assert interpolator.sample(1.0).time == 0.75
    interpolator.push(100.0, {}, 1.5)
    assert interpolator.sample(1.5).time == 100.0 - 0.25


def test_a_step_back_holds_the_render_time_then_slews() -> None:
    """Rendered ahead of the snapshots (frozen), then the offset falls by 1.5 s: the
    render time holds until the target is within the margin, then runs at 0.75."""
    interpolator: Interpolator[str] = Interpolator(LAYOUT, interval=0.5, bounds=FIXED)
    interpolator.push(1.0, {}, 1.0)
    assert interpolator.sample(3.0).time == 2.75
    interpolator.push(2.0, {}, 3.5)  # transit 1.5 s; the fastest one ages out
    assert [interpolator.sample(now).time for now in (3.5, 4.0)] == [2.75, 2.75]
    assert interpolator.sample(4.5).time == 2.75 + 0.5 * (1 - SLEW)


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
    interpolator = _jittery([0.25])
    interpolator.sample(10.0)
    assert interpolator.delay == 0.1875  # three intervals: no jitter measured yet
    interpolator.push(2.0, {}, 2.75)  # slower: the offset holds, the jitter grows
    assert interpolator.target_delay == 0.1875 + 2 * 0.5 / 16
    times = [interpolator.sample(10.125).time]
    assert interpolator.delay == 0.1875 + SLEW * 0.125
    times.append(interpolator.sample(11.0).time)
    assert interpolator.delay == 0.25
    assert times == sorted(times)


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
    grows by SLEW * 10 ms, so the render time still moves forward."""
    interpolator: Interpolator[str] = Interpolator(LAYOUT, interval=0.0625)
    for t, received in [(1.0, 1.0), (2.0, 3.0), (3.0, 3.0)]:
        interpolator.push(t, {}, received)
    before = interpolator.sample(5.0)
    for t, received in [(4.0, 5.0), (5.0, 5.0)]:
        interpolator.push(t, {}, received)
    assert interpolator.target_delay == 0.5
    after = interpolator.sample(5.0 + 1 / 128)
    assert after.delay == before.delay + SLEW / 128
    assert after.time > before.time
