"""A high-dynamic-range histogram of non-negative integers (latencies in nanoseconds).

The bucket layout is HdrHistogram's (Gil Tene): values are grouped by their
power of two, and each power of two is cut into :data:`SUB_BUCKETS` / 2 linear
sub-buckets. With 2,048 sub-buckets a bucket is at most 1/1,024 of the values
it holds wide, so every recorded value is known to three significant decimal
digits (a relative error under 0.1 %), from 1 ns to hours, in a few hundred
buckets. Counts are kept sparsely, so histograms are small to send between
processes and are merged by adding counts: the result is the same as if every
value had been recorded in one histogram.

Percentiles use the nearest-rank definition (the smallest value with at least
``p`` % of the values at or below it, NumPy's ``inverted_cdf``) and report the
middle of that value's bucket; the maximum, minimum and mean are exact.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from math import ceil

__all__ = ["PERCENTILES", "SUB_BUCKETS", "Histogram"]

SUB_BUCKETS = 2048  # 2**ceil(log2(2 * 10**3)): three significant digits
_HALF_BITS = 10  # log2(SUB_BUCKETS // 2)
_SUB_BITS = _HALF_BITS + 1
PERCENTILES = (50.0, 90.0, 99.0, 99.9, 99.99)  # what reports show, beside the max


def _indices(values: list[int]) -> list[int]:
    """The bucket of each value (≥ 0): its top bits, after the power of two it lies in."""
    return [(shift << _HALF_BITS) + (value >> shift)
            if (shift := value.bit_length() - _SUB_BITS) > 0 else value
            for value in values]


def _bounds(index: int) -> tuple[int, int]:
    """The lowest value of bucket ``index`` and its width."""
    shift = max(0, (index >> _HALF_BITS) - 1)
    return (index - (shift << _HALF_BITS)) << shift, 1 << shift


class Histogram:
    """Counts of values in log-linear buckets; ``record_all`` is the fast way in."""

    __slots__ = ("_counts", "count", "max", "min", "total")

    def __init__(self) -> None:
        self._counts: Counter[int] = Counter()
        self.count = 0
        self.total = 0  # exact sum, for the mean
        self.max = 0
        self.min = 0

    def record(self, value: int, count: int = 1) -> None:
        """Add ``count`` occurrences of ``value`` (negative values count as 0)."""
        self.record_all([value] * count)

    def record_all(self, values: Iterable[int]) -> None:
        """Add each of ``values`` (negative values count as 0), in one pass."""
        values = list(values)
        if not values:
            return
        low = min(values)
        if low < 0:
            values = [max(value, 0) for value in values]
            low = 0
        self._counts.update(_indices(values))
        self.min = low if not self.count else min(self.min, low)
        self.max = max(self.max, max(values))
        self.count += len(values)
        self.total += sum(values)

    def merge(self, other: Histogram) -> None:
        """Add ``other``'s counts to this histogram."""
        if not other.count:
            return
        self._counts.update(other._counts)
        self.min = other.min if not self.count else min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.count += other.count
        self.total += other.total

    @classmethod
    def merged(cls, histograms: Iterable[Histogram]) -> Histogram:
        result = cls()
        for histogram in histograms:
            result.merge(histogram)
        return result

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def percentile(self, p: float) -> int:
        """The nearest-rank ``p``-th percentile (0 < p ≤ 100), to 3 significant digits."""
        if not 0 < p <= 100:
            raise ValueError(f"a percentile lies in (0, 100], not {p}")
        if not self.count:
            return 0
        if p == 100:
            return self.max
        rank = max(1, ceil(p / 100 * self.count))
        seen = 0
        for index in sorted(self._counts):
            seen += self._counts[index]
            if seen >= rank:
                low, width = _bounds(index)
                return min(max(low + width // 2, self.min), self.max)
        return self.max  # not reached: the counts add up to self.count

    def buckets(self) -> Iterator[tuple[int, int, int]]:
        """``(lowest value, width, count)`` of every non-empty bucket, in value order."""
        for index in sorted(self._counts):
            low, width = _bounds(index)
            yield low, width, self._counts[index]

    def __len__(self) -> int:
        return self.count

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        return (self._counts, self.count, self.total, self.max, self.min) == (
            other._counts, other.count, other.total, other.max, other.min)

    __hash__ = None  # type: ignore[assignment]
