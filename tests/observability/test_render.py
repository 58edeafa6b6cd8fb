"""rtctl.observability.render: a dashboard's panels drawn from query_range results.

No Prometheus here: the series are synthetic, shaped as PrometheusAPI.query_range
returns them.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from pathlib import Path

from rtctl.observability.dashboards import DASHBOARDS, Dashboard, Panel, Query
from rtctl.observability.prometheus import Series
from rtctl.observability.render import COLUMNS, DPI, PANEL_SIZE, legend, render_dashboard

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
