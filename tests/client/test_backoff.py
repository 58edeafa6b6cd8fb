"""The backoff schedule: exact numbers from a seeded rng."""

from __future__ import annotations

import random

import pytest

from rtctl.client.backoff import Backoff, BackoffSchedule
from rtctl.exceptions import ConfigError

DEFAULT_NOMINAL = [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]


def test_default_nominal_sequence_is_documented() -> None:
    backoff = Backoff()
    assert [backoff.delay(n) for n in range(1, 10)] == pytest.approx(DEFAULT_NOMINAL)


@pytest.mark.parametrize(("config", "expected"), [
    (Backoff(base=1, multiplier=3, cap=20, jitter=0), [1, 3, 9, 20, 20]),
    (Backoff(base=0.5, multiplier=1, cap=5, jitter=0), [0.5] * 5),
    (Backoff(base=0.01, multiplier=10, cap=0.5, jitter=0), [0.01, 0.1, 0.5, 0.5, 0.5]),
])
def test_nominal_delays_grow_and_stop_at_the_cap(config: Backoff, expected: list[float]) -> None:
    assert [config.delay(n) for n in range(1, 6)] == pytest.approx(expected)


def test_huge_attempt_numbers_stay_at_the_cap() -> None:
    assert Backoff(multiplier=10).delay(100_000) == 5.0


@pytest.mark.parametrize("jitter", [0.0, 0.25, 0.5, 1.0])
def test_jitter_stays_within_the_upper_fraction_of_nominal(jitter: float) -> None:
    backoff = Backoff(jitter=jitter)
    rng = random.Random(7)
    for attempt in range(1, 12):
        nominal = backoff.delay(attempt)
        for _ in range(200):
            delay = backoff.delay(attempt, rng)
            assert nominal * (1 - jitter) <= delay <= nominal


def test_seeded_jitter_is_exact() -> None:
    rng, check = random.Random(42), random.Random(42)
    got = [Backoff().delay(n, rng) for n in range(1, 5)]
    want = [nominal * (1 - 0.5 * check.random()) for nominal in (0.1, 0.2, 0.4, 0.8)]
    assert got == want


def test_max_attempts_ends_the_schedule() -> None:
    schedule = BackoffSchedule(Backoff(max_attempts=3, jitter=0), random.Random(1))
    assert [schedule.next_delay() for _ in range(5)] == [0.1, 0.2, 0.4, None, None]
    assert schedule.attempts == 3
    assert BackoffSchedule(Backoff(max_attempts=0), random.Random(1)).next_delay() is None


@pytest.mark.parametrize(("up_for", "next_delay"), [
    (9.99, 0.4),   # a short-lived connection does not forgive the earlier attempts
    (10.0, 0.1),   # a stable one (reset_after) starts the sequence over
])
def test_a_stable_connection_resets_the_attempts(up_for: float, next_delay: float) -> None:
    schedule = BackoffSchedule(Backoff(jitter=0), random.Random(1))
    schedule.next_delay()
    schedule.next_delay()
    schedule.connected(100.0)
    schedule.disconnected(100.0 + up_for)
    assert schedule.next_delay() == next_delay


def test_reset_starts_over() -> None:
    schedule = BackoffSchedule(Backoff(jitter=0), random.Random(1))
    schedule.next_delay()
    schedule.reset()
    assert (schedule.attempts, schedule.next_delay()) == (0, 0.1)


@pytest.mark.parametrize("kwargs", [
    {"base": 0}, {"base": 6, "cap": 5}, {"multiplier": 0.5}, {"jitter": 1.5},
    {"jitter": -0.1}, {"max_attempts": -1}, {"reset_after": -1},
])
def test_bad_configs_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        Backoff(**kwargs)


def test_attempts_count_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        Backoff().delay(0)
