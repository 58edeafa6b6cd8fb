"""The RPC histogram's quantiles: the bucket bound a quantile falls in."""

from __future__ import annotations

import pytest

from rtctl.histograms import BucketCounts


def test_empty_histogram_has_no_quantile() -> None:
    histogram = BucketCounts((0.001, 0.01))
    assert histogram.count == 0
    assert histogram.quantile(0.5) is None


@pytest.mark.parametrize(
    ("q", "bound"),
    [(0.0, 0.001), (0.25, 0.001), (0.5, 0.001), (0.51, 0.01), (0.75, 0.01), (0.76, float("inf")),
     (1.0, float("inf"))],
)
def test_quantile_is_the_bucket_bound(q: float, bound: float) -> None:
    histogram = BucketCounts((0.001, 0.01))
    for seconds in (0.0005, 0.001, 0.005, 3.0):  # 0.001 sits in its own bucket (le=)
        histogram.observe(seconds)
    assert histogram.count == 4
    assert histogram.quantile(q) == bound
