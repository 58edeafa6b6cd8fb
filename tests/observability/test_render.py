"""rtctl.observability.render: a dashboard's panels drawn from query_range results.

No Prometheus here: the series are synthetic, shaped as PrometheusAPI.query_range
returns them.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import pytest

from rtctl.observability.dashboards import DASHBOARDS, Dashboard, Panel, Query
from rtctl.observability.prometheus import Series
from rtctl.observability.render import (
    COLUMNS,
    DPI,
    PANEL_SIZE,
    draw_panel,
    legend,
    render_dashboard,
)

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.colors import to_hex

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
START = 1_700_000_000.0


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the IHDR chunk, the first after the signature (PNG §11.2.2)."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE
    assert head[12:16] == b"IHDR"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def ramp(labels: dict[str, str], points: int = 30) -> Series:
    return Series(labels, tuple((START + i, float(i)) for i in range(points)))


def test_legend_substitutes_labels_as_grafana_does() -> None:
    assert legend("{{method}} p99", {"method": "sys.echo"}) == "sys.echo p99"
    assert legend("{{ instance }} {{backend}}", {"instance": "a:1", "backend": "redis"}) \
        == "a:1 redis"
    assert legend("{{missing}} calls", {}) == "calls"


def test_a_dashboard_renders_to_a_png_of_its_grid(tmp_path: Path) -> None:
    dashboard = Dashboard("t", "Test", "synthetic", tuple(
        Panel(f"panel {i}", "", unit, (Query(f"expr_{i}", "{{method}}"),))
        for i, unit in enumerate(("s", "reqps", "Bps", "bytes", "percentunit"))))
    asked: list[str] = []

    def fetch(expr: str) -> Sequence[Series]:
        asked.append(expr)
        return [ramp({"method": "a"}), ramp({"method": "b"})]

    path = tmp_path / "t.png"
    render_dashboard(dashboard, fetch, path, start=START, events=((START + 10, "burst"),))
    rows = math.ceil(len(dashboard.panels) / COLUMNS)
    assert png_size(path) == (round(COLUMNS * PANEL_SIZE[0] * DPI),
                              round(rows * PANEL_SIZE[1] * DPI))
    assert asked == [f"expr_{i}" for i in range(5)]


def test_panels_without_data_and_nan_points_still_render(tmp_path: Path) -> None:
    gaps = Series({}, ((START, 1.0), (START + 1, math.nan), (START + 2, 3.0)))
    dashboard = Dashboard("t", "Test", "", (
        Panel("empty", "", "short", (Query("nothing", "x"),)),
        Panel("gappy", "", "percentunit", (Query("gaps", "ratio"),))))
    path = tmp_path / "t.png"
    render_dashboard(dashboard, lambda expr: [gaps] if expr == "gaps" else [], path,
                     start=START, columns=2)
    assert png_size(path) == (round(2 * PANEL_SIZE[0] * DPI), round(PANEL_SIZE[1] * DPI))


def test_every_real_dashboard_renders(tmp_path: Path) -> None:
    for dashboard in DASHBOARDS:
        path = tmp_path / f"{dashboard.uid}.png"
        render_dashboard(dashboard, lambda expr: [ramp({"instance": "127.0.0.1:1"})], path,
                         start=START)
        assert png_size(path)[0] == round(COLUMNS * PANEL_SIZE[0] * DPI)


OPERATIONS = Panel("Backend errors /s", "", "short",
                   (Query("errors", "{{backend}} {{operation}}"),))


def peaked(count: int) -> list[Series]:
    """``count`` series whose peaks are a permutation of 0..count-1 (7 is prime to 30):
    the order they come in is not the order of their peaks."""
    return [Series({"backend": "redis", "operation": f"op{i}"},
                   ((START, 0.0), (START + 1, float(7 * i % count)))) for i in range(count)]


@pytest.fixture
def axis() -> Iterator[Any]:
    figure, axis = plt.subplots()
    yield axis
    plt.close(figure)


def test_thirty_series_never_share_a_colour_and_style(axis: Any) -> None:
    draw_panel(axis, OPERATIONS, lambda expr: peaked(30), START)
    looks = [(to_hex(line.get_color()), line.get_linestyle()) for line in axis.get_lines()]
    assert len(looks) == 30
    assert len(set(looks)) == 30
    # The first twenty, the most prominent, differ by colour alone (all solid).
    assert len({colour for colour, _ in looks[:20]}) == 20


def test_the_legend_names_the_highest_peaks_and_counts_the_rest(axis: Any) -> None:
    series = peaked(30)
    draw_panel(axis, OPERATIONS, lambda expr: series, START)
    highest = sorted(series, key=lambda s: -s.points[-1][1])[:8]
    named = [text.get_text() for text in axis.get_legend().get_texts()]
    assert named == [f"redis {s.labels['operation']}" for s in highest] + ["+22 more"]
    # Each named entry has its line's look: the legend reads true.
    lines = {line.get_label(): line for line in axis.get_lines()}
    *entries, more = axis.get_legend().get_lines()
    for entry, name in zip(entries, named[:8], strict=True):
        assert (to_hex(entry.get_color()), entry.get_linestyle()) == (
            to_hex(lines[name].get_color()), lines[name].get_linestyle())
    assert more.get_linestyle() == "None"  # "+22 more" stands for no one line


def test_a_legend_with_room_for_every_series_names_them_all(axis: Any) -> None:
    draw_panel(axis, OPERATIONS, lambda expr: peaked(8), START)
    named = [text.get_text() for text in axis.get_legend().get_texts()]
    assert len(named) == 8
    assert not any(name.endswith("more") for name in named)
