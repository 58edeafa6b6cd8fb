"""Grafana dashboard JSON from :data:`rtctl.observability.dashboards.DASHBOARDS`.

The JSON is built with grafana-foundation-sdk (Grafana's own typed builders, a dev
dependency) rather than by hand, so it follows the dashboard schema Grafana loads, and is
committed under deploy/grafana/dashboards/ for Grafana's file provisioning
(deploy/grafana/dashboards/rtctl.yml). Regenerate after changing a dashboard::

    python -m rtctl.observability.grafana          # write deploy/grafana/dashboards/rtctl-*.json
    python -m rtctl.observability.grafana --check  # exit 1 if the files are out of date

Grafana's provider loads every dashboard in that folder, so a team may keep its own there:
the generator writes, removes and checks only its own files (:data:`OWN_FILES`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from grafana_foundation_sdk.builders import common, prometheus, timeseries
from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    LegendDisplayMode,
    LegendPlacement,
    SortOrder,
    TooltipDisplayMode,
)
from grafana_foundation_sdk.models.dashboard import DataSourceRef, VariableRefresh

from rtctl.observability.dashboards import DASHBOARDS, Dashboard, Panel

__all__ = ["DASHBOARD_DIR", "DATASOURCE", "OWN_FILES", "generate", "main", "render"]

DASHBOARD_DIR = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"
# The generator's files (``<uid>.json``, every uid starting ``rtctl-``): a dashboard removed
# from DASHBOARDS leaves one behind to delete; any other file there is someone else's.
OWN_FILES = "rtctl-*.json"
# The uid deploy/grafana/datasources/prometheus.yml gives the Prometheus data source.
DATASOURCE = DataSourceRef(type_val="prometheus", uid="prometheus")
PANEL_WIDTH, PANEL_HEIGHT = 12, 8  # two panels a row on Grafana's 24-column grid


def _panel(panel: Panel) -> timeseries.Panel:
    built = (timeseries.Panel().title(panel.title).description(panel.description)
             .unit(panel.unit).datasource(DATASOURCE).span(PANEL_WIDTH).height(PANEL_HEIGHT)
             .legend(common.VizLegendOptions().show_legend(True)
                     .display_mode(LegendDisplayMode.LIST).placement(LegendPlacement.BOTTOM))
             # Panels compare series (methods, lanes, nodes): show them all, largest first.
             .tooltip(common.VizTooltipOptions().mode(TooltipDisplayMode.MULTI)
                      .sort(SortOrder.DESCENDING)))
    for index, query in enumerate(panel.queries):
        built.with_target(prometheus.Dataquery().expr(query.expr)
                          .legend_format(query.legend).ref_id(chr(ord("A") + index)))
    return built


def _instance_variable(dashboard: Dashboard) -> builders.QueryVariable:
    # "All" stands for the regular expression `.*`, which `instance=~"$instance"` needs: it
    # matches other jobs' instances too, which the panels' own `job` matcher keeps out.
    return (builders.QueryVariable("instance").label("Instance").datasource(DATASOURCE)
            .query(f"label_values({dashboard.instance_source}, instance)")
            .multi(True).include_all(True)
            .all_value(".*").refresh(VariableRefresh.ON_TIME_RANGE_CHANGED))


def render(dashboard: Dashboard) -> str:
    """The dashboard's Grafana JSON, stable from run to run (keys sorted)."""
    built = (builders.Dashboard(dashboard.title).uid(dashboard.uid)
             .description(dashboard.description).tags(["rtctl"]).time("now-1h", "now")
             .refresh("30s").with_variable(_instance_variable(dashboard)))
    for number, panel in enumerate(dashboard.panels, start=1):
        built.with_panel(_panel(panel).id(number))
    return json.dumps(built.build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def generate() -> dict[str, str]:
    """Every dashboard's JSON by file name (``<uid>.json``)."""
    return {f"{dashboard.uid}.json": render(dashboard) for dashboard in DASHBOARDS}


def _stale(directory: Path, files: dict[str, str]) -> list[str]:
    """Files that differ from a fresh generation, are missing, or are the generator's but
    belong to no dashboard."""
    present = {path.name for path in directory.glob(OWN_FILES)}
    differing = [name for name, text in files.items()
                 if name not in present or (directory / name).read_text() != text]
    return sorted(differing + [name for name in present if name not in files])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rtctl.observability.grafana",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if the committed files are out of date")
    args = parser.parse_args(argv)
    files = generate()
    stale = _stale(DASHBOARD_DIR, files)
    if args.check:
        if stale:
            print(f"out of date in {DASHBOARD_DIR}: {', '.join(stale)}; run "
                  "python -m rtctl.observability.grafana", file=sys.stderr)
        return 1 if stale else 0
    DASHBOARD_DIR.mkdir(parents=True, exist_ok=True)
    for name in stale:
        path = DASHBOARD_DIR / name
        if name in files:
            path.write_text(files[name])
        else:
            path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
