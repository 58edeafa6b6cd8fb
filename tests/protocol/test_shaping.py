"""The token bucket, with times stepped by hand: refill, burst cap, debt, waits, takes."""

from __future__ import annotations

import random

import pytest

from rtctl.protocol.shaping import Bucket


def test_it_starts_full_and_refills_at_the_rate_up_to_the_burst() -> None:
    bucket = Bucket(rate=100.0, burst=50.0, now=0.0)
    assert bucket.tokens(0.0) == 50.0
    bucket.charge(50.0, 0.0)
    assert bucket.tokens(0.1) == pytest.approx(10.0)
    assert bucket.tokens(10.0) == 50.0  # never above the burst


def test_charge_goes_into_debt_and_wait_says_when_a_token_is_back() -> None:
    bucket = Bucket(rate=100.0, burst=50.0, now=0.0)
    assert bucket.wait(0.0) == 0.0
    bucket.charge(80.0, 0.0)  # a reply: never refused
    assert bucket.tokens(0.0) == pytest.approx(-30.0)
    assert bucket.wait(0.0) == pytest.approx(0.3)
    assert bucket.wait(0.3 + 1e-6) == 0.0


def test_take_takes_all_or_nothing_and_says_when_to_retry() -> None:
    bucket = Bucket(rate=2.0, burst=2.0, now=0.0)
    assert bucket.take(1, 0.0) == 0.0
    assert bucket.take(1, 0.0) == 0.0
    assert bucket.take(1, 0.0) == pytest.approx(0.5)  # refused: one token takes 0.5 s
    assert bucket.tokens(0.0) == pytest.approx(0.0)  # and nothing was taken
    assert bucket.take(1, 0.5) == 0.0


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1.0), (1.0, 0.0), (-1.0, 5.0)])
def test_a_bucket_needs_a_rate_and_a_burst(rate: float, burst: float) -> None:
    with pytest.raises(ValueError, match="above 0"):
        Bucket(rate=rate, burst=burst, now=0.0)


def test_a_sender_that_waits_its_turn_stays_within_the_budget() -> None:
    """Frames of random sizes sent whenever wait() allows, with replies charged in between:
    over T seconds no more than burst + rate * T + one frame (the last one may overdraw)."""
    rng = random.Random(14)
    rate, burst, largest = 32 * 1024.0, 32 * 1024.0, 4096
    bucket = Bucket(rate=rate, burst=burst, now=0.0)
    now, sent = 0.0, 0
    while now < 30.0:
        if rng.random() < 0.1:
            reply = rng.randrange(20, 200)
            bucket.charge(reply, now)
            sent += reply
        wait = bucket.wait(now)
        if wait:
            now += wait
            continue
        frame = rng.randrange(1, largest)
        bucket.charge(frame, now)
        sent += frame
        assert sent <= burst + rate * now + largest
    assert sent >= rate * now * 0.95  # and it does use the budget
