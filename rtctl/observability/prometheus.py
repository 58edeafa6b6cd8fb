"""A real Prometheus on 127.0.0.1, and its HTTP API: what the live test and the recorded
dashboard run scrape the gateways with.

:class:`PrometheusProcess` writes its own configuration (the scrape jobs of
``deploy/prometheus/prometheus.yml``, ``rtctl`` and ``rtctl-simulator``, with the caller's
targets, intervals and rule files), runs ``prometheus`` with a TSDB in a scratch directory
and its log in a file, and is ready when ``/-/ready`` answers 200. Its process handling is
:mod:`rtctl.bench.cluster`'s: bounded waits that fail with
:class:`~rtctl.bench.embedded.StartFailed` and the tail of the log.

:class:`PrometheusAPI` is a small client of the HTTP API (Prometheus docs, "HTTP API":
``/api/v1/query``, ``/api/v1/query_range``, ``/api/v1/alerts``, ``/api/v1/targets``) over
urllib. An expression Prometheus refuses comes back as one :class:`PrometheusError` with
Prometheus' own message; a Prometheus that cannot be reached or answers something other
than the API's JSON as :class:`PrometheusUnavailable` (a PrometheusError) naming the URL,
which :meth:`PrometheusProcess.wait` takes for "not yet".
"""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Self

from rtctl.bench.cluster import answers, end_process, find_program, free_port, wait_until
from rtctl.bench.embedded import START_TIMEOUT, StartFailed

__all__ = [
    "Alert",
    "PrometheusAPI",
    "PrometheusError",
    "PrometheusProcess",
    "PrometheusUnavailable",
    "Series",
    "Target",
]

REQUEST_TIMEOUT = 10.0  # s for one API request, unless the caller says otherwise
_POLL = 0.1  # s between two API requests while waiting: each costs Prometheus a query
# How Prometheus says its listen address is taken (its log: ``err="listen tcp
# 127.0.0.1:N: bind: address already in use"``, the text of Linux's EADDRINUSE).
_PORT_TAKEN = b"address already in use"
_READY = b"Server is ready to receive web requests"


class PrometheusError(Exception):
    """Prometheus refused a request (``errorType`` and ``error`` of its answer)."""


class PrometheusUnavailable(PrometheusError):
    """No answer from the API: refused or dropped connection, timeout, or a body that is
    not its JSON. Transient while Prometheus starts or is busy."""


@dataclass(frozen=True)
class Series:
    """One series of a query's result: its labels and (unix time, value) points. An instant
    query gives one point; a scalar result is a series without labels."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Alert:
    """An alert Prometheus holds: ``pending`` while its ``for:`` runs, then ``firing``."""

    name: str
    state: str
    labels: Mapping[str, str]


@dataclass(frozen=True)
class Target:
    """A scrape target: ``health`` is ``up``, ``down`` or ``unknown`` (not scraped yet)."""

    job: str
    instance: str
    health: str
    last_scrape: float  # unix time the last scrape started; 0 before the first
    last_error: str


class PrometheusAPI:
    """The HTTP API of the Prometheus at ``url`` (``http://127.0.0.1:9090``)."""

    def __init__(self, url: str, *, timeout: float = REQUEST_TIMEOUT) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout  # s for one request

    def query(self, expr: str, *, time: float | None = None) -> list[Series]:
        """An instant query at ``time`` (unix seconds; default: now)."""
        form = {"query": expr} | ({} if time is None else {"time": f"{time:.3f}"})
        return _series(self._call("/api/v1/query", form, method="POST"))

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        """A range query: the expression evaluated every ``step`` s from ``start`` to ``end``."""
        return _series(self._call("/api/v1/query_range", {
            "query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"},
            method="POST"))

    def alerts(self) -> list[Alert]:
        return [Alert(a["labels"]["alertname"], a["state"], a["labels"])
                for a in self._call("/api/v1/alerts")["alerts"]]

    def firing(self, name: str, **labels: str) -> bool:
        """Is the alert ``name`` firing (past its ``for:``), for series with ``labels``?"""
        return any(a.name == name and a.state == "firing"
                   and all(a.labels.get(k) == v for k, v in labels.items())
                   for a in self.alerts())

    def targets(self) -> list[Target]:
        return [Target(t["labels"]["job"], t["labels"]["instance"], t["health"],
                       _unix(t["lastScrape"]), t["lastError"])
                for t in self._call("/api/v1/targets", {"state": "active"})["activeTargets"]]

    def _call(self, path: str, form: Mapping[str, str] | None = None, *,
              method: str = "GET") -> Any:
        """The ``data`` of a JSON answer. Queries go as a form (POST, which the API accepts
        for the query endpoints only) so that long expressions meet no URL length limit."""
        body = urllib.parse.urlencode(form or {})
        if method == "GET":
            request = urllib.request.Request(f"{self.url}{path}?{body}")
        else:
            request = urllib.request.Request(
                f"{self.url}{path}", data=body.encode(), method="POST",
                headers={"Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.load(response)
        except urllib.error.HTTPError as exc:  # 400/422 carry the reason as JSON
            try:
                answer = json.load(exc)
            except ValueError:
                # 503 in plain text while Prometheus starts or stops: not there yet
                kind = PrometheusUnavailable if exc.code >= 500 else PrometheusError
                raise kind(f"{self.url}{path}: HTTP {exc.code}") from None
        # URLError (refused), TimeoutError, RemoteDisconnected (an OSError and an
        # HTTPException), IncompleteRead (an HTTPException), a body that is not JSON.
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise PrometheusUnavailable(f"{self.url}{path}: {exc!r}") from exc
        if not isinstance(answer, dict):
            raise PrometheusUnavailable(f"{self.url}{path}: not an API answer: {answer!r:.80}")
        if answer.get("status") != "success":
            raise PrometheusError(f"{answer.get('errorType')}: {answer.get('error')}")
        return answer["data"]


def _series(data: Mapping[str, Any]) -> list[Series]:
    """A result of any type as series ("Expression query result formats" in the API docs):
    values are strings there (``"NaN"``, ``"+Inf"`` too), which ``float`` reads."""
    kind, result = data["resultType"], data["result"]
    if kind == "matrix":
        return [Series(r["metric"], tuple((float(t), float(v)) for t, v in r["values"]))
                for r in result]
    if kind == "vector":
        return [Series(r["metric"], ((float(r["value"][0]), float(r["value"][1])),))
                for r in result]
    if kind == "scalar":
        return [Series({}, ((float(result[0]), float(result[1])),))]
    raise PrometheusError(f"a {kind} result has no series")  # a string literal


def _unix(stamp: str) -> float:
    """RFC 3339 time of the API as unix seconds; Go's zero time (never scraped) is 0."""
    when = datetime.fromisoformat(stamp)
    return max(0.0, when.timestamp())


class PrometheusProcess:
    """``prometheus`` scraping ``jobs`` (job name → ``host:port`` targets) every
    ``scrape_interval`` s and evaluating ``rule_files`` every ``evaluation_interval`` s; its
    configuration, TSDB and log live in ``workdir``. ``names`` gives targets an ``instance``
    label other than their address (a target label ``instance`` overrides the default,
    Prometheus docs "Jobs and instances"), for a legend that says which node is which.
    ``request_timeout`` bounds each request of :attr:`api`."""

    def __init__(self, *, jobs: Mapping[str, Sequence[str]], workdir: Path,
                 rule_files: Sequence[Path] = (), names: Mapping[str, str] | None = None,
                 scrape_interval: float = 1.0,
                 evaluation_interval: float = 1.0, path: str | None = None,
                 start_timeout: float = START_TIMEOUT,
                 request_timeout: float = REQUEST_TIMEOUT) -> None:
        self.path = path or find_program("prometheus")
        self.port = free_port()
        self.workdir = workdir
        self.config = workdir / "prometheus.yml"
        self.log = workdir / "prometheus.log"
        self.start_timeout = start_timeout
        self.request_timeout = request_timeout
        self.jobs = jobs
        # JSON is YAML (YAML 1.2 §1.3), so no YAML writer is needed. The scrape timeout is
        # given: its default (10 s) must not exceed a short interval.
        interval = f"{scrape_interval:g}s"
        self.settings = {
            "global": {"scrape_interval": interval, "scrape_timeout": interval,
                       "evaluation_interval": f"{evaluation_interval:g}s"},
            "rule_files": [str(p.resolve()) for p in rule_files],
            "scrape_configs": [
                {"job_name": job, "static_configs": [
                    {"targets": [target], "labels": {"instance": (names or {})[target]}}
                    if target in (names or {}) else {"targets": [target]}
                    for target in targets]}
                for job, targets in jobs.items()],
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self._logged = 0  # the log's size when the last launch began

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> PrometheusAPI:
        return PrometheusAPI(self.url, timeout=self.request_timeout)

    def start(self) -> Self:
        """Run Prometheus and wait until it is ready. The port :func:`free_port` picked may
        be taken before Prometheus binds it: then once more on another."""
        self.config.write_text(json.dumps(self.settings, indent=2) + "\n")
        try:
            try:
                self._launch()
            except StartFailed:
                if _PORT_TAKEN not in self._this_launch():
                    raise
                self.port = free_port()
                self._launch()
        except BaseException:
            self.stop()
            raise
        return self

    def _launch(self) -> None:
        argv = [self.path, f"--config.file={self.config}",
                f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}"]
        self._logged = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        # Our own process says so (another one on a port taken meanwhile would answer
        # /-/ready too), and /-/ready agrees (503 while the TSDB loads).
        self.wait(lambda: _READY in self._this_launch() and answers(f"{self.url}/-/ready"),
                  self.start_timeout, "prometheus")

    def _this_launch(self) -> bytes:
        """The log's lines since the last launch (an earlier attempt's are above them)."""
        with self.log.open("rb") as log:
            log.seek(self._logged)
            return log.read()

    def wait(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll ``condition`` until true; StartFailed (with the log's tail and the last
        PrometheusUnavailable, which counts as "not yet") if time runs out or Prometheus
        exits meanwhile. A request Prometheus refuses is raised at once."""
        assert self.proc is not None, "start() first"
        last: list[PrometheusUnavailable] = []  # the latest only

        def ready() -> bool:
            try:
                return condition()
            except PrometheusUnavailable as exc:
                last[:] = [exc]
                return False

        try:
            wait_until(ready, self.proc, what, timeout, self.log, poll=_POLL)
        except StartFailed as exc:
            if not last:
                raise
            raise StartFailed(f"{exc}; last API error: {last[0]}") from last[0]

    def wait_scraped(self, after: float, timeout: float) -> None:
        """Wait until every target was scraped after unix time ``after``: from then on a
        query up to ``after`` sees all there is."""
        api, count = self.api, sum(map(len, self.jobs.values()))

        def scraped() -> bool:  # an empty list: the scrape manager has not started yet
            targets = api.targets()
            return len(targets) == count and all(t.last_scrape > after for t in targets)

        self.wait(scraped, timeout, f"every target scraped after {after:.3f}")

    def stop(self) -> None:
        end_process(self.proc, signal.SIGTERM)  # SIGTERM: a clean shutdown of the TSDB
        self.proc = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
