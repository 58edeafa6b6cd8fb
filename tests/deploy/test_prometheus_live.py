"""A real Prometheus scraping real gateways under ``rtctl bench`` load (issue 15, "Proved live").

One stack for the module: Redis, NATS, a gateway on the in-memory backends and one with
``--redis --nats``, and ``prometheus`` scraping both every second with
deploy/prometheus/alerts.yml loaded (a copy whose ``for:`` durations are one second; the
expressions are the file's). ``rtctl bench`` (a subprocess, open loop at a fixed rate) loads
the clustered node; then every panel expression of every dashboard is asked of Prometheus as
Grafana would ask it, and the alerts are driven for real: a node stopped, Redis killed.
Before the panels are asked, one connection to the in-memory node does what the load does
not: a call of an unknown method, a refused upgrade, a recovery token that is no good; the
panels counting those must show it as a rise, not merely have a series (their labelled
counters read 0 from start-up). The destructive test runs last (pytest keeps file order).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from websockets.exceptions import InvalidStatus

from rtctl.bench.cluster import GatewayNode, ServerProcess, start_backends, start_gateways
from rtctl.gateway.loop_lag import EVENT_LOOP_PROBE
from rtctl.observability.dashboards import DASHBOARDS, GATEWAY_JOB, Panel, concrete
from rtctl.observability.prometheus import (
    PrometheusAPI,
    PrometheusError,
    PrometheusProcess,
    Series,
)
from rtctl.protocol import jsonrpc
from tests.conftest import SECRET, TIMING, client, require_program, rpc

pytestmark = pytest.mark.slow

ALERTS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"
RATE = 200.0  # bench calls/s, open loop: the same in the warm-up and the measured window
CLIENTS = 20
WARMUP, DURATION = 4.0, 6.0  # s of bench load
# The rate is compared over a window that ends TAIL s before bench exits and lasts WINDOW s.
# Bench's load runs WARMUP + DURATION s and stops when its window closes; after that it only
# waits for the last answers and closes its connections before exiting (well under TAIL s).
# So [exit - TAIL - WINDOW, exit - TAIL] lies inside the load whether bench took a long or a
# short time to start, and an open loop's rate is the same all along it: the two figures
# describe the same calls. Five 1 s scrapes in the window make rate() exact to a few %.
# test_rpc_rate_agrees_with_bench checks the premise: the rate at the window's start and at
# its end agree, else the window slipped out of the load.
TAIL, WINDOW = 3.0, 5.0
SCRAPE = 1.0  # s between two scrapes, and two rule evaluations
RATE_INTERVAL = f"{WINDOW:g}s"
WHOLE_RUN = "1m"  # Grafana's floor for $__rate_interval; the run fits in it
UNCHECKED = {"rtctl-simulator"}  # no simulator runs here: its panels only have to parse


@dataclass
class Stack:
    prometheus: PrometheusProcess
    memory: GatewayNode  # in-memory backends
    clustered: GatewayNode  # --redis --nats, the one bench loads
    redis: ServerProcess
    bench: dict[str, Any]  # bench's --json document
    at: float  # unix time the rate window ends (inside the load)
    end: float  # unix time by when bench and the misbehaviour were scraped twice

    @property
    def api(self) -> PrometheusAPI:
        return self.prometheus.api


def shortened_rules(target: Path) -> Path:
    """alerts.yml with every ``for:`` at one scrape, so an alert fires soon after its cause."""
    rules = yaml.safe_load(ALERTS.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = f"{SCRAPE:g}s"
    target.write_text(yaml.safe_dump(rules, sort_keys=False))
    return target


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("prometheus-live")
    start = 30 * TIMING
    with contextlib.ExitStack() as cleanup:
        redis, nats = start_backends(cleanup, which=require_program, start_timeout=start)
        memory = GatewayNode("gw-memory", secret=SECRET, log=workdir / "gw-memory.log")
        clustered = GatewayNode("gw-redis", secret=SECRET, redis_url=redis.url,
                                nats_url=nats.url, log=workdir / "gw-redis.log")
        prometheus = PrometheusProcess(
            jobs={GATEWAY_JOB: [memory.address, clustered.address]}, workdir=workdir,
            rule_files=[shortened_rules(workdir / "alerts.yml")], scrape_interval=SCRAPE,
            evaluation_interval=SCRAPE, path=require_program("prometheus"),
            start_timeout=start, request_timeout=10 * TIMING)
        cleanup.callback(prometheus.stop)
        prometheus.start()  # first: it scrapes ~5 s after it is ready, time to start these
        start_gateways(cleanup, (memory, clustered), start)
        prometheus.wait_scraped(time.time(), start)  # a scrape before the load: rate()'s start
        document = run_bench(clustered, workdir / "bench.json")
        exited = time.time()
        asyncio.run(misbehave(memory))
        # rate() needs two samples of a series the misbehaviour made: two scrapes after it.
        prometheus.wait_scraped(time.time() + SCRAPE, start)
        yield Stack(prometheus, memory, clustered, redis, document, exited - TAIL, time.time())


def run_bench(node: GatewayNode, out: Path) -> dict[str, Any]:
    argv = [sys.executable, "-m", "rtctl", "bench", f"ws://{node.address}", "--scenario",
            "echo", "--clients", str(CLIENTS), "--rate", f"{RATE:g}", "--warmup",
            f"{WARMUP:g}s", "--duration", f"{DURATION:g}s", "--jwt-secret", SECRET,
            "--json", str(out)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60 * TIMING,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    document: dict[str, Any] = json.loads(out.read_text())
    return document


async def misbehave(node: GatewayNode) -> None:
    url = f"ws://{node.address}/ws"
    async with client(f"{url}?recover=not-a-recovery-token") as ws:
        reply = await rpc(ws, "no.such.method")
    assert reply["error"]["code"] == -32601
    with pytest.raises(InvalidStatus) as refused:
        async with client(url, "not-a-jwt"):
            pass
    assert refused.value.response.status_code == 401


def panel(uid: str, title: str) -> Panel:
    dashboard = next(d for d in DASHBOARDS if d.uid == uid)
    return next(p for p in dashboard.panels if p.title == title)


def ask(stack: Stack, uid: str, title: str, query: int = 0, instance: str = ".*", *,
        whole_run: bool = False) -> list[Series]:
    """A panel's query as Grafana runs it: at the end of the rate window, or with
    ``whole_run`` over the last minute at the end (the misbehaviour included)."""
    expr = concrete(panel(uid, title).queries[query].expr,
                    rate_interval=WHOLE_RUN if whole_run else RATE_INTERVAL,
                    instance=instance)
    return stack.api.query(expr, time=stack.end if whole_run else stack.at)


def values(series: list[Series], label: str) -> Mapping[str, float]:
    return {s.labels.get(label, ""): s.points[-1][1] for s in series}


def risen(stack: Stack, uid: str, title: str, label: str) -> set[str]:
    """The series of a panel (by ``label``) above 0 over the whole run."""
    return {k for k, v in values(ask(stack, uid, title, whole_run=True), label).items() if v > 0}


def calls_per_second(stack: Stack, when: float) -> float:
    """The clustered node's call rate between the last two scrapes before ``when``."""
    expr = (f'sum(irate(rtctl_rpc_calls_total{{instance="{stack.clustered.address}"}}'
            f"[{3 * SCRAPE:g}s]))")
    return values(stack.api.query(expr, time=when), "").get("", 0.0)


def test_every_panel_expression_runs_and_the_gateways_panels_have_data(stack: Stack) -> None:
    """Asked at the end over 1m (Grafana's floor for $__rate_interval): the whole run."""
    empty = []
    for dashboard in DASHBOARDS:
        for shown in dashboard.panels:
            for query in shown.queries:
                expr = concrete(query.expr, rate_interval=WHOLE_RUN)
                try:
                    series = stack.api.query(expr, time=stack.end)
                except PrometheusError as exc:
                    pytest.fail(f"{dashboard.uid} / {shown.title}: {expr}: {exc}")
                if not series and dashboard.uid not in UNCHECKED:
                    empty.append(f"{dashboard.uid} / {shown.title} / {query.legend}")
    # Every family is exposed (labelled counters zero-initialised) from start-up, and what
    # only appears when it happens has happened, so an empty panel names a series no
    # gateway has.
    assert not empty, "\n".join(empty)


def test_key_panels_show_the_load(stack: Stack) -> None:
    clustered = stack.clustered.address
    assert values(ask(stack, "rtctl-overview", "Connections open"), "instance") == {
        stack.memory.address: 0, clustered: CLIENTS}
    p99 = values(ask(stack, "rtctl-overview", "RPC latency", query=2, instance=clustered), "")
    assert 0 < p99[""] < 0.25  # an echo's handler takes well under a millisecond
    lag = values(ask(stack, "rtctl-overview", "Event-loop lag", query=2), "")
    assert 0 <= lag[""] < 1
    rss = values(ask(stack, "rtctl-overview", "Resident memory"), "instance")
    assert rss.keys() == {stack.memory.address, clustered}
    assert all(10e6 < v < 2e9 for v in rss.values())
    ready = values(ask(stack, "rtctl-overview", "Ready and backends up"), "instance")
    assert ready == {stack.memory.address: 1, clustered: 1}
    up = values(ask(stack, "rtctl-cluster", "Backends up"), "backend")
    assert up == {"redis": 1, "nats": 1}  # the memory node has no backend families
    sessions = values(ask(stack, "rtctl-cluster", "Sessions by state", instance=clustered),
                      "state")
    assert sessions.get("connected") == CLIENTS


def test_rpc_rate_agrees_with_bench(stack: Stack) -> None:
    bench = stack.bench
    assert bench["errors"] == {}
    assert bench["rate"] == RATE
    calls = values(ask(stack, "rtctl-rpc", "Calls /s by method",
                       instance=stack.clustered.address), "method")
    assert calls.keys() == {"sys.echo", "<unknown>"}  # <unknown> reads 0 from the start
    assert calls["<unknown>"] == 0
    assert math.isclose(calls["sys.echo"], bench["throughput_per_s"], rel_tol=0.10), \
        (calls, bench["throughput_per_s"])
    first, last = (calls_per_second(stack, when) for when in (stack.at - WINDOW, stack.at))
    assert math.isclose(first, last, rel_tol=0.10), (
        f"the rate window slipped out of bench's load: {first:.1f} calls/s at its start, "
        f"{last:.1f} at its end")


def test_traffic_panels_agree_with_the_load(stack: Stack) -> None:
    clustered = stack.clustered.address
    received, sent = (values(ask(stack, "rtctl-overview", "Messages /s", query=q,
                                 instance=clustered), "")[""] for q in (0, 1))
    assert math.isclose(received, stack.bench["throughput_per_s"], rel_tol=0.10), \
        (received, stack.bench["throughput_per_s"])
    assert math.isclose(sent, received, rel_tol=0.10)  # one answer a call
    bytes_in, bytes_out = (values(ask(stack, "rtctl-overview", "Bytes /s", query=q,
                                      instance=clustered), "")[""] for q in (0, 1))
    smallest = len(jsonrpc.dumps(jsonrpc.encode_request("sys.echo", None, 0)))
    assert bytes_in >= smallest * received  # every call at least its bare request
    assert bytes_out > 0
    # The probe wakes every EVENT_LOOP_PROBE s plus its lag (under 1 s, as asked above).
    expr = (f'rate(rtctl_event_loop_lag_seconds_count{{instance="{clustered}"}}'
            f"[{RATE_INTERVAL}])")
    lag_probes = values(stack.api.query(expr, time=stack.at), "instance")[clustered]
    assert 1 / (EVENT_LOOP_PROBE + 1) < lag_probes < 1.1 / EVENT_LOOP_PROBE, lag_probes


def test_the_misbehaviour_shows_as_a_rise(stack: Stack) -> None:
    """One refused upgrade, one bad recovery token, one unknown method: each a rise in its
    panel, and nothing else rose (bench made no errors)."""
    assert risen(stack, "rtctl-connections", "Upgrades /s by outcome", "outcome") == {
        "ok", "401"}
    assert risen(stack, "rtctl-connections", "Upgrades refused /s by reason", "reason") == {
        "malformed"}  # "not-a-jwt" is no JWT
    assert risen(stack, "rtctl-connections", "Session resumes /s by result", "result") == {
        "invalid"}
    assert risen(stack, "rtctl-rpc", "Errors /s by code", "code") == {"-32601"}


def test_a_lone_unknown_method_call_shows_in_the_calls_panels(stack: Stack) -> None:
    expr = f'sum(increase(rtctl_rpc_calls_total{{code="-32601"}}[{WHOLE_RUN}]))'
    assert values(stack.api.query(expr, time=stack.end), "")[""] > 0
    by_method = values(ask(stack, "rtctl-rpc", "Error ratio by method", whole_run=True),
                       "method")
    assert by_method == {"<unknown>": 1.0, "sys.echo": 0.0}


def test_alerts_fire_for_a_stopped_node_and_a_dead_redis(stack: Stack) -> None:
    api, deadline = stack.api, 20 * TIMING
    assert not api.firing("RtctlGatewayDown")
    assert not api.firing("RtctlBackendUnavailable")
    stack.memory.stop()
    stack.prometheus.wait(lambda: api.firing("RtctlGatewayDown", instance=stack.memory.address),
                          deadline, "RtctlGatewayDown firing")
    stack.redis.stop()
    stack.prometheus.wait(
        lambda: api.firing("RtctlBackendUnavailable", instance=stack.clustered.address,
                           backend="redis"),
        deadline, "RtctlBackendUnavailable firing")
    assert not api.firing("RtctlGatewayDown", instance=stack.clustered.address)
