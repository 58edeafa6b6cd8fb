"""Statistical tests of the pure models, seeded, with stated tolerances.

Tolerances are about four standard errors of the estimate, so a correct model
fails a test far less than once in ten thousand seeds; the seeds are fixed, so
in practice the results are exact and repeatable.
"""

from __future__ import annotations

import math
import random
import statistics

import pytest

from simulator.models import (
    BernoulliLoss,
    DelaySampler,
    GilbertElliottLoss,
    TokenBucket,
    unit_quantile,
)

N = 20_000


@pytest.mark.parametrize("p", [0.01, 0.05, 0.3, 1.0])
def test_bernoulli_loss_rate(p: float) -> None:
    model = BernoulliLoss(p, rng=random.Random(1))
    rate = sum(model.lost() for _ in range(N)) / N
    assert rate == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / N) + 1e-9)


def _bursts(losses: list[bool]) -> list[int]:
    runs, run = [], 0
    for lost in losses:
        if lost:
            run += 1
        elif run:
            runs.append(run)
            run = 0
    return runs


@pytest.mark.parametrize(("p", "r"), [(0.01, 0.3), (0.05, 0.5), (0.02, 0.1)])
def test_gilbert_elliott_burst_length_and_rate(p: float, r: float) -> None:
    model = GilbertElliottLoss(p, r, rng=random.Random(2))
    losses = [model.lost() for _ in range(200_000)]
    bursts = _bursts(losses)
    # Burst lengths are geometric with mean 1/r: relative standard error sqrt(1-r)/sqrt(n).
    assert statistics.fmean(bursts) == pytest.approx(1 / r, rel=4 * math.sqrt(1 - r)
                                                     / math.sqrt(len(bursts)))
    assert sum(losses) / len(losses) == pytest.approx(model.stationary_loss, rel=0.15)


def test_gilbert_elliott_loss_in_both_states() -> None:
    model = GilbertElliottLoss(0.1, 0.4, 0.5, 0.02, rng=random.Random(3))
    expected = 0.2 * 0.5 + 0.8 * 0.02
    assert model.stationary_loss == pytest.approx(expected)
    rate = sum(model.lost() for _ in range(100_000)) / 100_000
    assert rate == pytest.approx(expected, rel=0.08)


@pytest.mark.parametrize("distribution", ["uniform", "normal", "pareto", "paretonormal"])
@pytest.mark.parametrize("correlation", [0.0, 0.5])
def test_delay_quantiles_match_the_distribution(distribution: str, correlation: float) -> None:
    latency, jitter = 0.100, 0.020
    sampler = DelaySampler(latency=latency, jitter=jitter, distribution=distribution,
                           correlation=correlation, rng=random.Random(4))
    samples = sorted(sampler.sample() for _ in range(N))
    for q in (0.1, 0.25, 0.5, 0.75, 0.9):
        expected = max(0.0, latency + jitter * unit_quantile(distribution, q))
        measured = samples[int(q * N)]
        # ±1.5 percentile points of probability, converted through the quantile function
        lo = latency + jitter * unit_quantile(distribution, q - 0.015)
        hi = latency + jitter * unit_quantile(distribution, q + 0.015)
        assert lo <= measured <= hi, (q, expected, measured)


def test_normal_and_pareto_have_jitter_as_sigma() -> None:
    for distribution in ("normal", "pareto", "paretonormal"):
        sampler = DelaySampler(latency=1.0, jitter=0.1, distribution=distribution,
                               rng=random.Random(5))
        samples = [sampler.sample() for _ in range(100_000)]
        assert statistics.fmean(samples) == pytest.approx(1.0, abs=0.003)
        assert statistics.stdev(samples) == pytest.approx(0.1, rel=0.1)


@pytest.mark.parametrize("rho", [0.0, 0.25, 0.75])
def test_delay_correlation(rho: float) -> None:
    sampler = DelaySampler(latency=1.0, jitter=0.1, distribution="normal", correlation=rho,
                           rng=random.Random(6))
    samples = [sampler.sample() for _ in range(N)]
    lag1 = statistics.correlation(samples[:-1], samples[1:])
    assert lag1 == pytest.approx(rho, abs=0.03)


def test_delay_is_never_negative_and_constant_without_jitter() -> None:
    sampler = DelaySampler(latency=0.001, jitter=0.1, distribution="normal", rng=random.Random(7))
    assert min(sampler.sample() for _ in range(1000)) == 0.0
    assert DelaySampler(latency=0.05, rng=random.Random(0)).sample() == 0.05


@pytest.mark.parametrize("rate", [256_000, 1_000_000, 10_000_000])
def test_token_bucket_achieves_its_rate(rate: float) -> None:
    bucket = TokenBucket(rate=rate, limit=10**9)
    size, count = 1000, 500
    departures = [bucket.depart(size, 0.0) for _ in range(count)]
    assert all(d is not None for d in departures)
    achieved = (count * size * 8) / max(d for d in departures if d is not None)
    assert achieved == pytest.approx(rate, rel=0.01)  # the first burst passes free


def test_token_bucket_queue_limit_drops_and_queueing_delay() -> None:
    bucket = TokenBucket(rate=80_000, limit=5_000, burst=1000)  # 10 KB/s
    results = [bucket.depart(1000, 0.0) for _ in range(10)]
    kept = [r for r in results if r is not None]
    assert len(kept) == 6  # one through the burst, then five fill the 5 KB queue
    assert kept == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    assert bucket.depart(1000, 0.55) == pytest.approx(0.6)  # the queue drained meanwhile


def test_token_bucket_refills_when_idle() -> None:
    bucket = TokenBucket(rate=8_000, limit=10_000, burst=1500)
    assert bucket.depart(1500, 0.0) == 0.0
    assert bucket.depart(1000, 10.0) == 10.0


def test_unknown_distribution_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown delay distribution"):
        DelaySampler(latency=0.1, jitter=0.01, distribution="cauchy", rng=random.Random(0))
