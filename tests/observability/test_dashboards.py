"""The dashboard definitions, the Grafana JSON generated from them, and the provisioning
files that load it (deploy/grafana)."""

from __future__ import annotations

import json
import re
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from rtctl.observability import grafana
from rtctl.observability.dashboards import (
    DASHBOARDS,
    GATEWAY_JOB,
    SIMULATOR_JOB,
    Panel,
    concrete,
)
from rtctl.observability.grafana import DASHBOARD_DIR, DATASOURCE, OWN_FILES, generate
from tests.observability.test_promql import selectors

GRAFANA = DASHBOARD_DIR.parent
# deploy/grafana is mounted as Grafana's provisioning directory (deploy/grafana/README.md).
MOUNTED_AT = Path("/etc/grafana/provisioning")
INSTANCE_MATCHER = 'instance=~"$instance"'
UNITS = {"s", "reqps", "Bps", "bytes", "short", "percentunit"}
PANELS = [pytest.param(panel, id=f"{dashboard.uid}/{panel.title}")
          for dashboard in DASHBOARDS for panel in dashboard.panels]
# The scrape job (deploy/prometheus/prometheus.yml) each dashboard shows; the rest: gateways.
JOBS = {"rtctl-simulator": SIMULATOR_JOB}


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def find_panel(uid: str, title: str) -> Panel:
    dashboard = next(d for d in DASHBOARDS if d.uid == uid)
    return next(p for p in dashboard.panels if p.title == title)


def test_the_committed_json_is_a_fresh_generation() -> None:
    committed = {path.name: path.read_text() for path in DASHBOARD_DIR.glob(OWN_FILES)}
    assert committed == generate(), "run: python -m rtctl.observability.grafana"


def test_the_generator_owns_every_file_it_writes() -> None:
    # Else a dashboard removed from DASHBOARDS would leave its file behind for good.
    assert all(fnmatch(name, OWN_FILES) for name in generate())


def test_check_finds_a_changed_missing_or_extra_file_and_writing_repairs_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(grafana, "DASHBOARD_DIR", tmp_path)
    assert grafana.main(["--check"]) == 1  # nothing written yet
    assert grafana.main([]) == 0
    assert grafana.main(["--check"]) == 0
    (tmp_path / "rtctl-rpc.json").write_text("{}")
    (tmp_path / "rtctl-overview.json").unlink()
    (tmp_path / "rtctl-old.json").write_text("{}")
    assert grafana.main(["--check"]) == 1
    assert "rtctl-old.json, rtctl-overview.json, rtctl-rpc.json" in capsys.readouterr().err
    assert grafana.main([]) == 0
    assert {path.name: path.read_text() for path in tmp_path.iterdir()} == generate()


def test_a_teams_own_dashboard_in_the_folder_is_kept_and_not_reported(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Grafana's provider loads the whole folder, so a team may keep its dashboards there."""
    monkeypatch.setattr(grafana, "DASHBOARD_DIR", tmp_path)
    ours = tmp_path / "team-matchmaking.json"
    ours.write_text('{"title": "Matchmaking"}')
    assert grafana.main([]) == 0
    assert grafana.main(["--check"]) == 0
    assert ours.read_text() == '{"title": "Matchmaking"}'


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


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda dashboard: dashboard.uid)
def test_every_selector_keeps_to_the_dashboards_scrape_job(dashboard: Any) -> None:
    """``process_*`` and other common names come from nearly every exporter (Prometheus'
    own too): a selector without the job would mix them in with the Instance at "All"."""
    job = JOBS.get(dashboard.uid, GATEWAY_JOB)
    exprs = [dashboard.instance_source] + [
        concrete(query.expr) for panel in dashboard.panels for query in panel.queries]
    for expr in exprs:
        for selector in selectors(expr):
            assert [(matcher.op, matcher.value) for matcher in selector.matchers.matchers
                    if matcher.name == "job"] == [(promql_parser.MatchOp.Equal, job)], expr


def test_each_nodes_heartbeat_age_is_drawn_against_its_own_ttl() -> None:
    """Nodes may run different TTLs (the gauge is half each one's --node-ttl): one TTL line
    for all would show a node's age crossing another node's TTL."""
    age, ttl = find_panel("rtctl-cluster", "Heartbeat age vs TTL").queries
    for query, metric in ((age, "rtctl_node_heartbeat_age_seconds"),
                          (ttl, "rtctl_node_ttl_seconds")):
        expr = concrete(query.expr)
        parsed = promql_parser.parse(expr)
        assert isinstance(parsed, promql_parser.AggregateExpr)
        assert parsed.modifier is not None
        assert parsed.modifier.type == promql_parser.AggModifierType.By
        assert list(parsed.modifier.labels) == ["instance"]
        assert [selector.name for selector in selectors(expr)] == [metric]
        assert "{{instance}}" in query.legend
    assert age.legend != ttl.legend


def test_concrete_substitutes_grafanas_variables() -> None:
    expr = 'sum(rate(x_total{instance=~"$instance"}[$__rate_interval]))'
    assert concrete(expr) == 'sum(rate(x_total{instance=~".*"}[1m]))'
    assert concrete(expr, rate_interval="30s", instance="a:1|b:2") == \
        'sum(rate(x_total{instance=~"a:1|b:2"}[30s]))'


def test_the_datasource_is_provisioned_under_the_uid_the_panels_name() -> None:
    (source,) = load(GRAFANA / "datasources" / "prometheus.yml")["datasources"]
    assert (source["type"], source["uid"]) == (DATASOURCE.type_val, DATASOURCE.uid)
    for path in DASHBOARD_DIR.glob(OWN_FILES):
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
        assert (variable["name"], variable["allValue"], variable["query"]) == (
            "instance", ".*", f"label_values({dashboard.instance_source}, instance)")


def test_the_provisioning_directory_has_every_folder_grafana_reads() -> None:
    """Mounted over /etc/grafana/provisioning, deploy/grafana hides the image's own folders;
    Grafana logs an error at start for each one it cannot open (plugins, alerting)."""
    folders = {path.name for path in GRAFANA.iterdir() if path.is_dir()}
    assert folders >= {"alerting", "dashboards", "datasources", "plugins"}
