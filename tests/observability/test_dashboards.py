"""The dashboard definitions, the Grafana JSON generated from them, and the provisioning
files that load it (deploy/grafana)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from rtctl.observability import grafana
from rtctl.observability.dashboards import DASHBOARDS, concrete
from rtctl.observability.grafana import DASHBOARD_DIR, DATASOURCE, generate

GRAFANA = DASHBOARD_DIR.parent
# deploy/grafana is mounted as Grafana's provisioning directory (deploy/grafana/README.md).
MOUNTED_AT = Path("/etc/grafana/provisioning")
INSTANCE_MATCHER = 'instance=~"$instance"'
UNITS = {"s", "reqps", "Bps", "bytes", "short", "percentunit"}
PANELS = [pytest.param(panel, id=f"{dashboard.uid}/{panel.title}")
          for dashboard in DASHBOARDS for panel in dashboard.panels]


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def test_the_committed_json_is_a_fresh_generation() -> None:
    committed = {path.name: path.read_text() for path in DASHBOARD_DIR.glob("*.json")}
    assert committed == generate(), "run: python -m rtctl.observability.grafana"


def test_check_finds_a_changed_missing_or_extra_file_and_writing_repairs_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(grafana, "DASHBOARD_DIR", tmp_path)
    assert grafana.main(["--check"]) == 1  # nothing written yet
    assert grafana.main([]) == 0
    assert grafana.main(["--check"]) == 0
    (tmp_path / "rtctl-rpc.json").write_text("{}")
    (tmp_path / "rtctl-overview.json").unlink()
    (tmp_path / "old.json").write_text("{}")
    assert grafana.main(["--check"]) == 1
    assert "old.json, rtctl-overview.json, rtctl-rpc.json" in capsys.readouterr().err
    assert grafana.main([]) == 0
    assert {path.name: path.read_text() for path in tmp_path.iterdir()} == generate()


def test_the_five_dashboards_have_unique_uids() -> None:
    assert [dashboard.uid for dashboard in DASHBOARDS] == [
        "rtctl-overview", "rtctl-rpc", "rtctl-connections", "rtctl-cluster", "rtctl-simulator"]


@pytest.mark.parametrize("panel", PANELS)
def test_every_panel_has_a_unit_and_a_query(panel: Any) -> None:
    assert panel.unit in UNITS
    assert panel.queries
    assert panel.description


@pytest.mark.parametrize("panel", PANELS)
def test_expressions_use_only_the_instance_and_rate_interval_variables(panel: Any) -> None:
    for query in panel.queries:
        assert set(re.findall(r"\$\w+", query.expr)) <= {"$__rate_interval", "$instance"}
        # $instance only ever as the whole matcher, so "All" (.*) selects every instance.
        assert query.expr.count("$instance") == query.expr.count(INSTANCE_MATCHER) > 0


def test_concrete_substitutes_grafanas_variables() -> None:
    expr = 'sum(rate(x_total{instance=~"$instance"}[$__rate_interval]))'
    assert concrete(expr) == 'sum(rate(x_total{instance=~".*"}[1m]))'
    assert concrete(expr, rate_interval="30s", instance="a:1|b:2") == \
        'sum(rate(x_total{instance=~"a:1|b:2"}[30s]))'


def test_the_datasource_is_provisioned_under_the_uid_the_panels_name() -> None:
    (source,) = load(GRAFANA / "datasources" / "prometheus.yml")["datasources"]
    assert (source["type"], source["uid"]) == (DATASOURCE.type_val, DATASOURCE.uid)
    for path in DASHBOARD_DIR.glob("*.json"):
        dashboard = json.loads(path.read_text())
        refs = [panel["datasource"] for panel in dashboard["panels"]]
        refs += [variable["datasource"] for variable in dashboard["templating"]["list"]]
        assert refs
        assert all(ref == {"type": source["type"], "uid": source["uid"]} for ref in refs)


def test_the_dashboard_provider_loads_the_generated_folder() -> None:
    (provider,) = load(GRAFANA / "dashboards" / "rtctl.yml")["providers"]
    assert provider["type"] == "file"
    assert provider["folder"] == "rtctl"
    assert Path(provider["options"]["path"]) == MOUNTED_AT / DASHBOARD_DIR.relative_to(GRAFANA)


def test_panels_keep_their_queries_and_units_in_the_json() -> None:
    for dashboard in DASHBOARDS:
        built = json.loads((DASHBOARD_DIR / f"{dashboard.uid}.json").read_text())
        assert built["uid"] == dashboard.uid
        assert [(panel["title"], panel["fieldConfig"]["defaults"]["unit"],
                 [(target["expr"], target["legendFormat"]) for target in panel["targets"]])
                for panel in built["panels"]] == [
            (panel.title, panel.unit, [(query.expr, query.legend) for query in panel.queries])
            for panel in dashboard.panels]
        (variable,) = built["templating"]["list"]
        assert (variable["name"], variable["allValue"]) == ("instance", ".*")
