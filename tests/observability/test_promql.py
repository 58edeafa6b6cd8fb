"""Every PromQL expression of the dashboards and the alert rules parses, and selects only
metrics the system really exposes: a live gateway on Redis and NATS, the simulator, and
Prometheus' own ``up``. A typo in a metric name would otherwise show as an empty panel or
an alert that can never fire, and nothing would say so.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import promql_parser
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from rtctl.backends import connect_backends
from rtctl.observability.dashboards import DASHBOARDS, concrete
from simulator.metrics import ProxyMetrics
from tests.conftest import GatewayFactory
from tests.gateway.test_server import aget
from tests.servers import ServerProcess, unique_prefix

ALERTS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"
# The series Prometheus adds for each target it scrapes (Prometheus docs, "Jobs and
# instances"): the only one the rules use is `up`.
PROMETHEUS_SERIES = frozenset({"up"})
# The sample names a family of each type is exposed under (OpenMetrics §"Metric types");
# gauges and untyped families keep their own name.
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
            "summary": ("", "_sum", "_count")}


def selectors(expr: str) -> list[promql_parser.VectorSelector]:
    """The expression's series selectors, wherever they sit (function arguments,
    aggregations, both sides of binary operators, subqueries); raises ``ValueError`` if the
    expression does not parse."""
    found: list[promql_parser.VectorSelector] = []

    def visit(node: promql_parser.Expr) -> None:
        # A MatrixSelector's VectorSelector is visited too, so ranges need no case.
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def selected_metrics(expr: str) -> set[str]:
    """The metric names the expression's selectors name; raises ``ValueError`` if the
    expression does not parse or a selector names no metric."""
    names: set[str] = set()
    for selector in selectors(expr):
        if selector.name is None:
            raise ValueError(f"{expr!r}: a selector without a metric name cannot be checked")
        names.add(selector.name)
    return names


def unknown_metrics(exprs: Iterable[str], exposed: frozenset[str]) -> list[str]:
    """One line per expression that does not parse or names a metric not exposed."""
    problems = []
    for expr in exprs:
        try:
            missing = selected_metrics(expr) - exposed
        except ValueError as exc:
            problems.append(f"does not parse ({exc}): {expr}")
            continue
        if missing:
            problems.append(f"not exposed {sorted(missing)}: {expr}")
    return problems


def exposed_names(text: str) -> set[str]:
    """The sample names a scrape exposes, including those of families with no sample yet."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


@pytest.fixture
async def exposed(redis_server: ServerProcess, nats_server: ServerProcess,
                  start_gateway: GatewayFactory) -> frozenset[str]:
    """What a freshly started gateway on Redis and NATS exposes before any traffic (every
    family must be there from start-up), plus the simulator's and Prometheus' own."""
    gateway = await start_gateway(backends=connect_backends(
        redis_url=redis_server.url, nats_url=nats_server.url, prefix=unique_prefix()))
    status, body = await aget(gateway, "/metrics")
    assert status == 200
    return frozenset(exposed_names(body.decode()) | exposed_names(ProxyMetrics().render()
                                                                  .decode())
                     | PROMETHEUS_SERIES)


def dashboard_exprs() -> list[str]:
    return [concrete(query.expr) for dashboard in DASHBOARDS for panel in dashboard.panels
            for query in panel.queries]


def alert_exprs() -> list[str]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


@pytest.mark.parametrize(("expr", "names"), [
    ('up{job="rtctl"} == 0', {"up"}),
    ("rate(a_total[5m])", {"a_total"}),
    ("histogram_quantile(0.99, sum by (le) (rate(b_bucket[1m])))", {"b_bucket"}),
    ("sum(rate(c_total[1m])) / on() group_left sum(d)", {"c_total", "d"}),
    ("-e > 1 and f offset 5m unless (g)", {"e", "f", "g"}),
    ("max_over_time(rate(h_total[1m])[10m:1m])", {"h_total"}),
    ("vector(1)", set()),
])
def test_the_walker_finds_every_selector(expr: str, names: set[str]) -> None:
    assert selected_metrics(expr) == names


def test_the_checker_reports_a_misspelt_name_and_an_unparsable_expression() -> None:
    exposed = frozenset({"rtctl_connections", "rtctl_rpc_calls_total"})
    problems = unknown_metrics(["sum(rtctl_connections)",
                                "rate(rtctl_rpc_call_total[1m]) / rtctl_connections",
                                "sum(rate(rtctl_rpc_calls_total[1m])"], exposed)
    assert len(problems) == 2
    assert problems[0].startswith("not exposed ['rtctl_rpc_call_total']")
    assert problems[1].startswith("does not parse")


def test_a_selector_by_regex_alone_is_refused() -> None:
    with pytest.raises(ValueError, match="without a metric name"):
        selected_metrics('{__name__=~"rtctl_.*"}')


def test_exposed_names_expand_families_that_have_no_sample_yet() -> None:
    text = ("# TYPE a_total counter\n# TYPE h histogram\n# TYPE g gauge\n"
            'h_bucket{le="+Inf"} 0\nh_count 0\nh_sum 0\n')
    assert exposed_names(text) == {"a_total", "h_bucket", "h_sum", "h_count", "g"}


async def test_dashboards_select_only_exposed_metrics(exposed: frozenset[str]) -> None:
    # The series the $instance lists come from must be there too.
    variable_sources = [dashboard.instance_source for dashboard in DASHBOARDS]
    problems = unknown_metrics(dashboard_exprs() + variable_sources, exposed)
    assert not problems, "\n".join(problems)


async def test_alert_rules_select_only_exposed_metrics(exposed: frozenset[str]) -> None:
    exprs = alert_exprs()
    assert exprs, f"no rules in {ALERTS}"
    problems = unknown_metrics(exprs, exposed)
    assert not problems, "\n".join(problems)
