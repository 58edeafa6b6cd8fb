"""The HDR histogram against NumPy's exact percentiles, on seeded samples.

Tolerance: a bucket is at most 1/1,024 of its values wide and a percentile is
reported as its bucket's middle, so every percentile is within 0.1 % of
NumPy's nearest-rank (``inverted_cdf``) value; max, min and mean are exact.
"""

from __future__ import annotations

import numpy as np
import pytest

from rtctl.bench.histogram import PERCENTILES, Histogram

RELATIVE = 1e-3  # three significant digits


def _samples(kind: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "lognormal":  # latencies around 1 ms with a long tail, in ns
        return rng.lognormal(mean=np.log(1e6), sigma=1.0, size=50_000).astype(np.int64)
    if kind == "uniform":
        return rng.integers(0, 5_000, size=20_000)
    if kind == "bimodal":  # a fast path and a 20x slower one
        fast = rng.normal(200_000, 10_000, size=30_000)
        slow = rng.normal(4_000_000, 100_000, size=300)
        return np.concatenate([fast, slow]).astype(np.int64)
    if kind == "wide":  # 1 ns to an hour
        return (10 ** rng.uniform(0, 12.5, size=20_000)).astype(np.int64)
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["lognormal", "uniform", "bimodal", "wide"])
@pytest.mark.parametrize("seed", [1, 2])
def test_percentiles_match_numpy(kind: str, seed: int) -> None:
    values = _samples(kind, seed)
    histogram = Histogram()
    histogram.record_all(int(v) for v in values)
    assert histogram.count == len(values)
    assert histogram.max == values.max()
    assert histogram.min == values.min()
    assert histogram.mean == pytest.approx(values.mean(), rel=1e-12)
    for p in (*PERCENTILES, 25.0, 99.999):
        exact = np.percentile(values, p, method="inverted_cdf")
        assert histogram.percentile(p) == pytest.approx(exact, rel=RELATIVE, abs=1), p
    assert histogram.percentile(100) == values.max()


def test_merge_equals_recording_everything_in_one() -> None:
    values = [int(v) for v in _samples("lognormal", 3)]
    parts = [Histogram() for _ in range(3)]
    for i, value in enumerate(values):
        parts[i % 3].record(value)
    whole = Histogram()
    whole.record_all(values)
    merged = Histogram.merged(parts)
    assert merged == whole
    assert [merged.percentile(p) for p in PERCENTILES] == \
        [whole.percentile(p) for p in PERCENTILES]


@pytest.mark.parametrize(("values", "p", "expected"), [
    ([], 50, 0),
    ([7], 99.99, 7),
    ([1, 2, 3, 4], 50, 2),  # nearest rank: ceil(0.5 * 4) = the 2nd value
    ([1, 2, 3, 4], 75.1, 4),
    ([0, 0, 1000], 66.7, 1000),
    ([-5, 3], 50, 0),  # negative values count as 0
])
def test_small_tables(values: list[int], p: float, expected: int) -> None:
    histogram = Histogram()
    histogram.record_all(values)
    assert histogram.percentile(p) == expected


def test_buckets_cover_each_value_once_and_stay_narrow() -> None:
    histogram = Histogram()
    for value in (0, 1, 2047, 2048, 4095, 4096, 10**9, 10**12 + 7):
        histogram.record(value, count=2)
    buckets = list(histogram.buckets())
    assert sum(count for _, _, count in buckets) == histogram.count == 16
    for low, width, _ in buckets:
        assert width == 1 or width / low <= 1 / 1024
    assert [low for low, _, _ in buckets] == sorted(low for low, _, _ in buckets)


@pytest.mark.parametrize("p", [0, -1, 100.5])
def test_percentile_outside_its_range_is_refused(p: float) -> None:
    with pytest.raises(ValueError, match="percentile"):
        Histogram().percentile(p)
