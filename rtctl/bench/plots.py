"""``--plot``: the percentile spectrum and the throughput timeline, as one PNG.

The spectrum puts the percentile on a log axis of ``1 / (1 - p)`` (as
HdrHistogram's plots do), so p99, p99.9 and p99.99 are evenly spaced and the
tail is as readable as the median. A second with nothing completed has no p99
(a gap in the line, not a 0). matplotlib runs on its Agg backend: no display
is needed.
"""

from __future__ import annotations

from pathlib import Path

from rtctl.bench.report import unit
from rtctl.bench.results import BenchResult, percentile_ms

__all__ = ["SPECTRUM", "draw"]

SPECTRUM = (50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 99.999)


def draw(result: BenchResult, path: Path) -> None:
    """Write the two panels to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (spectrum, timeline) = plt.subplots(1, 2, figsize=(12, 4.5))
    h = result.histogram
    points = SPECTRUM
    x = [1 / (1 - p / 100) for p in points]
    spectrum.plot(x, [_gap(percentile_ms(h, p)) for p in points], marker="o")
    spectrum.set_xscale("log")
    spectrum.set_xticks(x, [f"{p:g}" for p in points], rotation=45)
    spectrum.minorticks_off()
    spectrum.set_xlabel("percentile")
    spectrum.set_ylabel("latency (ms)")
    spectrum.set_title(f"{result.scenario}: latency by percentile (max {h.max / 1e6:.2f} ms)"
                       if h.count else f"{result.scenario}: nothing completed")
    spectrum.grid(True, alpha=0.3)

    seconds = list(range(len(result.timeline)))
    timeline.bar(seconds, [s.count for s in result.timeline], color="tab:blue", alpha=0.6)
    timeline.set_xlabel("second of the measured window")
    what = unit(result)
    timeline.set_ylabel(f"{what} per second", color="tab:blue")
    timeline.set_title(f"throughput {result.throughput:,.0f} {what}/s, {result.clients} clients")
    p99 = timeline.twinx()
    p99.plot(seconds, [_gap(percentile_ms(s, 99)) for s in result.timeline], color="tab:red",
             marker=".")
    p99.set_ylabel("p99 (ms)", color="tab:red")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _gap(value: float | None) -> float:
    """NaN for a percentile of nothing: matplotlib leaves a gap there."""
    return float("nan") if value is None else value
