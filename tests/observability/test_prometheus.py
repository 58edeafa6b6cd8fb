"""rtctl.observability.prometheus: the configuration it writes, its API client, its process.

The API client is checked against a small HTTP server on 127.0.0.1 that answers as the
Prometheus HTTP API documents (``status``/``data``, ``errorType``/``error`` on 400); the
process against the real ``prometheus`` (tests/deploy/test_prometheus_live.py uses both
against real gateways).
"""

from __future__ import annotations

import json
import math
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from rtctl.bench.embedded import StartFailed
from rtctl.observability.dashboards import GATEWAY_JOB, SIMULATOR_JOB
from rtctl.observability.prometheus import (
    PrometheusAPI,
    PrometheusError,
    PrometheusProcess,
    PrometheusUnavailable,
    Target,
)
from tests.conftest import TIMING, require_program

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "prometheus.yml"
RELEASE = threading.Event()  # lets the fake's "slow" answer go, once its client gave up


def test_the_jobs_are_those_of_the_deployed_configuration() -> None:
    """The alerts select on the job (``up{job="rtctl"}``): the harness must use its names."""
    deployed = yaml.safe_load(DEPLOY.read_text())
    assert [job["job_name"] for job in deployed["scrape_configs"]] == [GATEWAY_JOB,
                                                                       SIMULATOR_JOB]


def test_the_configuration_names_targets_intervals_and_rules(tmp_path: Path) -> None:
    rules = tmp_path / "alerts.yml"
    process = PrometheusProcess(jobs={GATEWAY_JOB: ["127.0.0.1:1", "127.0.0.1:2"]},
                                names={"127.0.0.1:2": "gw-2"}, rule_files=[rules],
                                scrape_interval=0.5, evaluation_interval=2,
                                workdir=tmp_path, path="prometheus", request_timeout=3)
    assert process.api.timeout == 3
    assert process.settings == {
        "global": {"scrape_interval": "0.5s", "scrape_timeout": "0.5s",
                   "evaluation_interval": "2s"},
        "rule_files": [str(rules)],
        "scrape_configs": [{"job_name": GATEWAY_JOB, "static_configs": [
            {"targets": ["127.0.0.1:1"]},
            {"targets": ["127.0.0.1:2"], "labels": {"instance": "gw-2"}}]}],
    }


class FakePrometheus(BaseHTTPRequestHandler):
    """Answers queries with what the form asked (so the test sees what was sent)."""

    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path == "/api/v1/alerts":
            self._answer(200, {"status": "success", "data": {"alerts": [
                {"labels": {"alertname": "RtctlGatewayDown", "instance": "a"},
                 "state": "firing"},
                {"labels": {"alertname": "RtctlGatewayDown", "instance": "b"},
                 "state": "pending"}]}})
        elif path == "/api/v1/targets":
            self._answer(200, {"status": "success", "data": {"activeTargets": [
                {"labels": {"job": "rtctl", "instance": "a"}, "health": "up",
                 "lastScrape": "2026-01-01T00:00:01.250000123Z", "lastError": ""},
                {"labels": {"job": "rtctl", "instance": "b"}, "health": "unknown",
                 "lastScrape": "0001-01-01T00:00:00Z", "lastError": ""}]}})
        elif path == "/-/ready":  # another Prometheus, ready, on a port ours wanted
            self._answer(200, "Prometheus Server is Ready.")
        else:  # the query endpoints refuse GET here: the client must POST them
            self._answer(405, {"status": "error", "errorType": "method", "error": "GET"})

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        expr = form["query"]
        if expr == "drop":  # the connection closed with no answer: RemoteDisconnected
            self.close_connection = True
        elif expr == "slow":
            RELEASE.wait(30)
        elif expr == "starting":  # plain text while Prometheus starts or stops
            self._answer(503, "Service Unavailable")
        elif expr == "html":  # 200, but not the API's JSON (a proxy's page, say)
            self._answer(200, "<html>busy</html>")
        elif expr == "list":
            self._answer(200, [1])
        elif expr == "bad(":
            self._answer(400, {"status": "error", "errorType": "bad_data",
                               "error": "1:5: parse error: unclosed left parenthesis"})
        elif expr == '"text"':
            self._answer(200, {"status": "success", "data": {
                "resultType": "string", "result": [float(form["time"]), "text"]}})
        elif expr == "scalar":
            self._answer(200, {"status": "success", "data": {
                "resultType": "scalar", "result": [float(form["time"]), "NaN"]}})
        elif self.path == "/api/v1/query":
            self._answer(200, {"status": "success", "data": {"resultType": "vector", "result": [
                {"metric": {"expr": expr}, "value": [float(form["time"]), "+Inf"]}]}})
        else:
            points = [[float(form["start"]) + float(form["step"]) * i, str(i)] for i in range(3)]
            self._answer(200, {"status": "success", "data": {"resultType": "matrix", "result": [
                {"metric": {"expr": expr, "end": form["end"]}, "values": points}]}})

    def _answer(self, status: int, body: dict[str, Any] | list[int] | str) -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def api() -> Iterator[PrometheusAPI]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakePrometheus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    RELEASE.clear()
    yield PrometheusAPI(f"http://127.0.0.1:{server.server_address[1]}/")
    RELEASE.set()
    server.shutdown()
    server.server_close()
    thread.join()


def test_queries_are_posted_and_read_as_series(api: PrometheusAPI) -> None:
    [instant] = api.query('up{job="rtctl"}', time=100.5)
    assert instant.labels == {"expr": 'up{job="rtctl"}'}
    assert instant.points == ((100.5, math.inf),)
    [ranged] = api.query_range("rate(x[1m])", 10, 20, 2.5)
    assert ranged.labels == {"expr": "rate(x[1m])", "end": "20.000"}
    assert ranged.points == ((10.0, 0.0), (12.5, 1.0), (15.0, 2.0))
    [scalar] = api.query("scalar", time=7)
    assert scalar.labels == {}
    assert scalar.points[0][0] == 7
    assert math.isnan(scalar.points[0][1])


def test_a_refused_expression_is_one_error_with_prometheus_reason(api: PrometheusAPI) -> None:
    with pytest.raises(PrometheusError, match="bad_data: 1:5: parse error: unclosed left"):
        api.query("bad(")


def test_a_string_result_is_one_error_not_a_series(api: PrometheusAPI) -> None:
    with pytest.raises(PrometheusError, match="a string result has no series"):
        api.query('"text"', time=1)


@pytest.mark.parametrize(("expr", "raised"), [
    ("drop", "RemoteDisconnected"), ("html", "JSONDecodeError"),
    ("list", "not an API answer"), ("starting", "HTTP 503")])
def test_no_api_answer_is_one_error_naming_the_url(api: PrometheusAPI, expr: str,
                                                   raised: str) -> None:
    with pytest.raises(PrometheusUnavailable, match=raised) as caught:
        api.query(expr)
    assert f"{api.url}/api/v1/query" in str(caught.value)


def test_a_request_times_out_as_the_caller_says(api: PrometheusAPI) -> None:
    slow = PrometheusAPI(api.url, timeout=0.2 * TIMING)
    with pytest.raises(PrometheusUnavailable, match=rf"{slow.url}/api/v1/query: .*timed out"):
        slow.query("slow")


def test_a_refused_connection_is_one_error_naming_the_url() -> None:
    with socket.socket() as closed:  # bound, not listening: connecting is refused
        closed.bind(("127.0.0.1", 0))
        api = PrometheusAPI(f"http://127.0.0.1:{closed.getsockname()[1]}")
        with pytest.raises(PrometheusUnavailable, match=f"{api.url}/api/v1/alerts: .*refused"):
            api.alerts()


def test_alerts_and_targets(api: PrometheusAPI) -> None:
    assert [(a.name, a.state) for a in api.alerts()] == [("RtctlGatewayDown", "firing"),
                                                         ("RtctlGatewayDown", "pending")]
    assert api.firing("RtctlGatewayDown", instance="a")
    assert not api.firing("RtctlGatewayDown", instance="b")  # pending is not firing yet
    assert not api.firing("RtctlBackendUnavailable")
    scraped, never = api.targets()
    assert (scraped.job, scraped.instance, scraped.health) == ("rtctl", "a", "up")
    assert scraped.last_scrape == pytest.approx(1767225601.25)
    assert never.last_scrape == 0


def test_a_rule_file_prometheus_refuses_fails_the_start_with_its_reason(
        tmp_path: Path) -> None:
    rules = tmp_path / "alerts.yml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [
        {"alert": "Broken", "expr": "rate(up[1m]"}]}]}))
    process = PrometheusProcess(jobs={GATEWAY_JOB: []}, rule_files=[rules], workdir=tmp_path,
                                path=require_program("prometheus"),
                                start_timeout=30 * TIMING)
    with pytest.raises(StartFailed, match="prometheus exited with"):
        process.start()
    assert process.proc is None
    assert "alerts.yml" in process.log.read_text()


def test_prometheus_starts_and_stops(tmp_path: Path) -> None:
    with PrometheusProcess(jobs={GATEWAY_JOB: []}, workdir=tmp_path,
                           path=require_program("prometheus"),
                           start_timeout=30 * TIMING) as process:
        assert process.api.alerts() == []
        proc = process.proc
    assert proc is not None
    assert proc.returncode == 0  # SIGTERM: a clean shutdown


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusProcess]:
    with PrometheusProcess(jobs={GATEWAY_JOB: []}, workdir=tmp_path_factory.mktemp("prom"),
                           path=require_program("prometheus"),
                           start_timeout=30 * TIMING) as process:
        yield process


def test_wait_takes_an_unavailable_api_for_not_yet(running: PrometheusProcess) -> None:
    calls = 0

    def condition() -> bool:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise PrometheusUnavailable("http://127.0.0.1:1/api/v1/targets: refused")
        return True

    running.wait(condition, 10 * TIMING, "the third look")
    assert calls == 3


def test_wait_scraped_takes_an_unavailable_api_for_not_yet(
        running: PrometheusProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    real, failures = PrometheusAPI.targets, 2

    def flaky(api: PrometheusAPI) -> list[Target]:
        nonlocal failures
        if failures:
            failures -= 1
            raise PrometheusUnavailable(f"{api.url}/api/v1/targets: RemoteDisconnected")
        return real(api)

    monkeypatch.setattr(PrometheusAPI, "targets", flaky)
    running.wait_scraped(0.0, 10 * TIMING)  # no targets: scraped as soon as it answers
    assert failures == 0


def test_wait_that_runs_out_names_the_last_api_error_and_polls_gently(
        running: PrometheusProcess) -> None:
    calls = 0

    def condition() -> bool:
        nonlocal calls
        calls += 1
        raise PrometheusUnavailable(f"look {calls}")

    timeout = 0.5
    with pytest.raises(StartFailed, match=r"not ready after 0.5 s: .*last API error: look \d+"):
        running.wait(condition, timeout, "never")
    # A look every 0.1 s at most (polling every 20 ms would make some 25).
    assert 2 <= calls <= timeout / 0.1 + 2


def test_wait_raises_a_refused_query_at_once(running: PrometheusProcess) -> None:
    with pytest.raises(PrometheusError, match="parse error") as caught:
        running.wait(lambda: bool(running.api.query("rate(up[1m]")), 10 * TIMING, "never")
    assert not isinstance(caught.value, PrometheusUnavailable)


def test_a_port_taken_before_prometheus_binds_it_is_replaced_once(tmp_path: Path) -> None:
    process = PrometheusProcess(jobs={GATEWAY_JOB: []}, workdir=tmp_path,
                                path=require_program("prometheus"),
                                start_timeout=30 * TIMING)
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        process.port = held.getsockname()[1]  # as if taken since free_port() picked it
        with process:
            assert process.port != held.getsockname()[1]
            assert process.api.alerts() == []
    assert process.log.read_text().count("address already in use") == 1


def test_a_port_another_prometheus_answers_on_is_replaced_too(tmp_path: Path) -> None:
    """Its /-/ready says 200 too: only our own process' log saying so counts."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakePrometheus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    process = PrometheusProcess(jobs={GATEWAY_JOB: []}, workdir=tmp_path,
                                path=require_program("prometheus"),
                                start_timeout=30 * TIMING)
    try:
        process.port = server.server_address[1]
        with process:
            assert process.port != server.server_address[1]
            assert process.api.alerts() == []  # the fake one has two
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
