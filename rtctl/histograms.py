"""Histogram bucket counts kept as plain integers: cheap to bump, read as Prometheus reads them.

The gateway's RPC latencies and every lane's queue waits (gateway and client
SDK alike) are counted this way; the Prometheus families are built from them
only when ``/metrics`` is scraped. No I/O, no imports beyond the standard
library: the client SDK uses it too.
"""

from __future__ import annotations

from bisect import bisect_left

__all__ = ["BucketCounts"]


class BucketCounts:
    """Cumulative-on-read bucket counts, as Prometheus histograms expose them."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        # bisect_left: a value equal to a bound belongs to that bucket (le="bound").
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def quantile(self, q: float) -> float | None:
        """The upper bound of the bucket holding quantile ``q`` (the most a bucket can say
        for sure; :meth:`interpolated` estimates within it); None while empty, inf past
        the last bound."""
        total = self.count
        if not total:
            return None
        rank, running = q * total, 0
        for index, count in enumerate(self.counts):
            running += count
            if running >= rank and count:
                return self.bounds[index] if index < len(self.bounds) else float("inf")
        return float("inf")

    def interpolated(self, q: float) -> float | None:
        """Quantile ``q`` as Prometheus' ``histogram_quantile()`` estimates it: linear
        inside the bucket holding the rank, from 0 in the first; the highest finite
        bound when the rank falls in +Inf; None with nothing counted."""
        total = self.count
        if not total:
            return None
        rank, below, lower = q * total, 0, 0.0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            if below + count >= rank and count:
                return lower + (bound - lower) * (rank - below) / count
            below, lower = below + count, bound
        return self.bounds[-1] if self.bounds else None

    def add(self, other: BucketCounts) -> None:
        """Count ``other``'s observations too (one with other bounds cannot be: left out)."""
        if self.bounds == other.bounds:
            self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
            self.total += other.total

    def cumulative(self) -> list[tuple[str, int]]:
        running, out = 0, []
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out
