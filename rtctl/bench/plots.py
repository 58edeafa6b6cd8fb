"""``--plot``: the percentile spectrum and the throughput timeline, as one PNG.

For the ``arena`` scenario a second PNG beside it (``out-netcode.png`` for
``out.png``, :func:`netcode_path`) draws the netcode numbers second by second:
prediction error, remote players' error with and without interpolation, input
delay with and without prediction, snapshot age, frames re-simulated per
reconciliation (p50 and p99 each), and corrections per second.

The spectrum puts the percentile on a log axis of ``1 / (1 - p)`` (as
HdrHistogram's plots do), so p99, p99.9 and p99.99 are evenly spaced and the
tail is as readable as the median. A second with nothing completed has no p99
(a gap in the line, not a 0). matplotlib runs on its Agg backend: no display
is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rtctl.bench.netcode_counts import Series
from rtctl.bench.report import unit
from rtctl.bench.results import BenchResult, percentile_ms

__all__ = ["SPECTRUM", "draw", "netcode_path"]

SPECTRUM = (50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 99.999)


def netcode_path(path: Path) -> Path:
    """Where the arena's netcode figure goes, beside ``path``."""
    return path.with_name(f"{path.stem}-netcode{path.suffix}")


def draw(result: BenchResult, path: Path) -> None:
    """Write the two panels to ``path`` (PNG), and for the arena its netcode figure to
    :func:`netcode_path`."""
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
    if result.netcode is not None:
        _draw_netcode(result, netcode_path(path))


def _draw_netcode(result: BenchResult, path: Path) -> None:
    import matplotlib.pyplot as plt

    netcode = result.netcode
    assert netcode is not None
    seconds = len(result.timeline)
    x = list(range(seconds))
    figure, axes = plt.subplots(3, 2, figsize=(12, 11), sharex=True)
    (prediction, remotes), (delay, age), (corrections, rollback) = axes
    _series(prediction, x, seconds, ((netcode.prediction_error, "", "tab:blue"),))
    prediction.set_title("own player: predicted vs the server's (world units)")
    _series(remotes, x, seconds, ((netcode.interpolation_error, "interpolated ", "tab:green"),
                                  (netcode.latest_error, "newest snapshot ", "tab:red")))
    remotes.set_title("remote players: drawn vs the server's at that time (world units)")
    _series(delay, x, seconds, ((netcode.input_delay, "predicted ", "tab:blue"),
                                (netcode.ack_delay, "unpredicted ", "tab:red")))
    delay.set_title("input delay: made to seen on screen (ms)")
    _percentiles(age, x, [percentile_ms(s, 50) for s in result.timeline],
                 [percentile_ms(s, 99) for s in result.timeline], "", "tab:purple")
    age.set_title("snapshot age (ms)")
    _series(rollback, x, seconds, ((netcode.rollback_frames, "", "tab:brown"),))
    rollback.set_title("frames re-simulated per reconciliation")
    corrections.bar(x, netcode.corrections.counts(seconds), color="tab:orange", alpha=0.7)
    corrections.set_title("corrections per second (all bots)")
    for axis in (corrections, rollback):
        axis.set_xlabel("second of the measured window")
    for axis in (prediction, remotes, delay, age, rollback):
        axis.legend(loc="upper right", fontsize="small")
    for axis in (prediction, remotes, delay, age, corrections, rollback):
        axis.grid(True, alpha=0.3)
    profile = f" through {netcode.profile}" if netcode.profile else ""
    figure.suptitle(f"arena: {result.clients} bots{profile}")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _series(axis: Any, x: list[int], seconds: int,
            lines: tuple[tuple[Series, str, str], ...]) -> None:
    """p50 and p99 of each (series, label prefix, colour), second by second."""
    for series, label, color in lines:
        _percentiles(axis, x, series.timeline(seconds, 50), series.timeline(seconds, 99),
                     label, color)


def _percentiles(axis: Any, x: list[int], p50: list[float | None], p99: list[float | None],
                 label: str, color: str) -> None:
    axis.plot(x, [_gap(v) for v in p50], color=color, marker=".", label=f"{label}p50")
    axis.plot(x, [_gap(v) for v in p99], color=color, linestyle="--", label=f"{label}p99")


def _gap(value: float | None) -> float:
    """NaN for a percentile of nothing: matplotlib leaves a gap there."""
    return float("nan") if value is None else value
