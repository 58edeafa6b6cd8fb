"""A dashboard's panels as one PNG: what the docs show for people without a Grafana.

Each panel of a :class:`~rtctl.observability.dashboards.Dashboard` becomes one plot of a
grid, its queries' series drawn over time as Grafana would: one line per series, named by
the query's legendFormat (``{{label}}`` replaced by the series' label), the y axis in the
panel's unit. The series come from a function the caller passes (a Prometheus
``query_range`` over a recorded run, or synthetic data in a test), so this module does no
I/O but the file it writes. Times are drawn as seconds since ``start``, and ``events``
(time, what happened) as numbered vertical lines named below the grid, so the reader can
match a change in a panel to what caused it. NaN points (a ratio of zero rates, a
quantile of no samples) are gaps, as in Grafana. A panel may draw dozens of series (one
per backend operation): each gets its own colour and line style, and the legend names them
by decreasing peak, the ones it has no room for counted as "+N more". matplotlib runs on
its Agg backend: no display is needed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rtctl.observability.dashboards import Dashboard, Panel
from rtctl.observability.prometheus import Series

__all__ = ["COLUMNS", "DPI", "PANEL_SIZE", "Fetch", "draw_panel", "legend", "render_dashboard"]

Fetch = Callable[[str], Sequence[Series]]  # a panel query's expression → its series
COLUMNS = 3
PANEL_SIZE = (5.0, 3.0)  # inches per panel
DPI = 80
_LEGEND_VARIABLE = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_MAX_LEGEND = 8  # series named; the rest are one "+N more" entry
# tab20's ten dark shades, then its ten light ones (a dark and a light of one hue are
# neighbours in tab20), each solid, then dashed, dotted, dash-dotted: 80 distinct looks,
# more than a panel's bounded label values give; only an 81st series would repeat one.
_LINE_STYLES = ("-", "--", ":", "-.")


def legend(format_: str, labels: Mapping[str, str]) -> str:
    """Grafana's legendFormat: ``{{name}}`` is the series' label ``name`` (empty if absent)."""
    return _LEGEND_VARIABLE.sub(lambda m: labels.get(m[1], ""), format_).strip()


def _labels(labels: Mapping[str, str]) -> str:
    """Grafana's name for a series whose legendFormat says nothing: its labels."""
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def _escape(text: str) -> str:
    """Text as matplotlib shows it literally: ``$`` would start mathtext."""
    return text.replace("$", r"\$")


def _looks(count: int) -> list[tuple[Any, str]]:
    """A (colour, line style) for each of ``count`` series, in order of prominence."""
    from matplotlib import colormaps

    tab20 = colormaps["tab20"]  # an int picks the colour of that index, not a blend
    colours = [tab20(i) for i in (*range(0, 20, 2), *range(1, 20, 2))]
    return [(colours[i % len(colours)], _LINE_STYLES[i // len(colours) % len(_LINE_STYLES)])
            for i in range(count)]


def _peak(series: Series) -> float:
    return max((v for _, v in series.points if math.isfinite(v)), default=-math.inf)


def _formatter(unit: str) -> Any:
    """A tick formatter for a Grafana unit id; an unknown one counts plainly (``short``)."""
    from matplotlib.ticker import EngFormatter, PercentFormatter, ScalarFormatter

    if unit == "percentunit":  # Grafana's 0..1 shown as 0..100 %
        return PercentFormatter(xmax=1.0)
    suffix = {"s": "s", "bytes": "B", "Bps": "B/s", "reqps": "/s"}.get(unit)
    return ScalarFormatter() if suffix is None else EngFormatter(unit=suffix)


def render_dashboard(dashboard: Dashboard, fetch: Fetch, path: Path, *, start: float,
                     events: Sequence[tuple[float, str]] = (),
                     columns: int = COLUMNS) -> None:
    """Draw every panel of ``dashboard`` with the series ``fetch`` gives for each of its
    queries, ``columns`` panels a row, and write the PNG to ``path``: ``columns`` ×
    :data:`PANEL_SIZE` inches a row at :data:`DPI`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = math.ceil(len(dashboard.panels) / columns)
    width, height = PANEL_SIZE
    figure, axes = plt.subplots(rows, columns, figsize=(columns * width, rows * height),
                                squeeze=False)
    cells = [axis for row in axes for axis in row]
    for axis, panel in zip(cells, dashboard.panels, strict=False):
        draw_panel(axis, panel, fetch, start, events)
    for axis in cells[len(dashboard.panels):]:
        axis.set_visible(False)
    figure.suptitle(f"{dashboard.title}: {dashboard.description}", fontsize="large")
    # The events are numbered on the panels and named once, below them: names on every
    # panel would cover the lines and the legends.
    key = "   ".join(f"{i}: {_escape(what)} ({when - start:.0f} s)"
                     for i, (when, what) in enumerate(events, 1))
    figure.text(0.5, 0.005, key, ha="center", va="bottom", fontsize="small")
    figure.tight_layout(rect=(0, 0.02 if events else 0, 1, 1))
    figure.savefig(path, dpi=DPI)
    plt.close(figure)


def draw_panel(axis: Any, panel: Panel, fetch: Fetch, start: float,
               events: Sequence[tuple[float, str]] = ()) -> None:
    """One panel on the matplotlib ``axis``: its series, highest peak first (the first
    colours and the legend go to the lines that stand out), and the ``events``."""
    named = [(_escape(legend(query.legend, series.labels) or _labels(series.labels)), series)
             for query in panel.queries for series in fetch(query.expr)]
    named.sort(key=lambda pair: _peak(pair[1]), reverse=True)  # stable: ties keep query order
    largest = 0.0
    for (label, series), (colour, style) in zip(named, _looks(len(named)), strict=True):
        values = [v for _, v in series.points]
        axis.plot([t - start for t, _ in series.points], values, label=label, color=colour,
                  linestyle=style, linewidth=1.2)
        largest = max([largest, *(abs(v) for v in values if math.isfinite(v))])
    if named and largest == 0:  # all zero: 0 and 1, not matplotlib's ±0.05 in milli-units
        axis.set_ylim(0, 1)
        axis.set_yticks([0, 1])
    axis.set_title(panel.title, fontsize="medium", pad=12)  # room for the event numbers
    axis.yaxis.set_major_formatter(_formatter(panel.unit))
    axis.set_xlabel("s since start", fontsize="small")
    axis.tick_params(labelsize="small")
    axis.grid(True, alpha=0.3)
    for number, (when, _) in enumerate(events, 1):
        axis.axvline(when - start, color="grey", linestyle=":", linewidth=1)
        axis.annotate(str(number), (when - start, 1.0), xycoords=("data", "axes fraction"),
                      va="bottom", ha="center", fontsize="x-small", color="grey")
    if not named:
        axis.text(0.5, 0.5, "no data", transform=axis.transAxes, ha="center",
                  va="center", color="grey")
        return
    from matplotlib.lines import Line2D

    handles, labels = axis.get_legend_handles_labels()
    if len(handles) > _MAX_LEGEND:  # one entry, without a line, for the lines not named
        handles[_MAX_LEGEND:] = [Line2D([], [], linestyle="none")]
        labels[_MAX_LEGEND:] = [f"+{len(labels) - _MAX_LEGEND} more"]
    # "best": the corner where the legend covers the fewest points of the lines.
    axis.legend(handles, labels, fontsize="x-small", loc="best")
