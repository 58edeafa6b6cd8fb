"""The dashboards as PNGs from a recorded run: docs/img/dashboards/<uid>.png (issue 15).

A real Prometheus (:class:`~rtctl.observability.prometheus.PrometheusProcess`, 1 s scrapes)
records real processes on loopback for about two and a half minutes while the load changes,
then every panel of every dashboard is asked with ``query_range`` as Grafana would ask it
(``$__rate_interval`` = ``--rate-interval``, every ``--step`` s) and drawn by
:func:`~rtctl.observability.render.render_dashboard`, one PNG a dashboard, each phase marked.

Processes: ``redis-server``, ``nats-server``, ``gw-memory`` (in-memory backends),
``gw-redis-1`` and ``gw-redis-2`` (``--redis --nats``, node TTL 5 s), and ``rtctl simulate``
(profile broadband-regional-p50) in front of gw-memory, its control API scraped as job
``rtctl-simulator``. The timeline (seconds from the start, times ``--scale``):

    0-100   ``rtctl bench`` echo on gw-redis-1, open loop, 50 → 100 → 200 → 400 calls/s
    0-100   ``rtctl bench`` rooms on gw-redis-2 (presence, rooms, members, backends)
    0-130   ``rtctl bench`` echo through the simulator at 20 calls/s
    45-55   a misbehaving client on gw-memory: unknown methods, bad params, bad tokens
    90      gw-redis-2 killed under the rooms load (gw-redis-1 ends its sessions after the TTL)
    110-125 Redis stopped, then started again
    150     end

    .venv/bin/python benchmarks/dashboards.py [--out docs/img/dashboards] [--scale 1]

It prints one JSON line: the phases' times and, per dashboard, the panels drawn with data.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import InvalidStatus  # noqa: E402

from rtctl.bench.cluster import (  # noqa: E402
    GatewayNode,
    answers,
    end_process,
    free_port,
    start_backends,
    start_gateways,
    wait_until,
)
from rtctl.observability.dashboards import (  # noqa: E402
    DASHBOARDS,
    GATEWAY_JOB,
    SIMULATOR_JOB,
    concrete,
)
from rtctl.observability.prometheus import PrometheusProcess  # noqa: E402
from rtctl.observability.render import render_dashboard  # noqa: E402
from rtctl.protocol import jsonrpc  # noqa: E402
from rtctl.tokens import issue_token  # noqa: E402

ECHO_STEPS = (50, 100, 200, 400)  # calls/s, 25 s each
BURST = (45.0, 55.0)
NODE_KILL = 90.0
REDIS_DOWN = (110.0, 125.0)
END = 150.0


def bench(node: str, seconds: float, *args: str, secret: str, log: Path) -> None:
    """One ``rtctl bench`` run; its exit status is not checked (a phase may fail its calls
    on purpose)."""
    argv = [sys.executable, "-m", "rtctl", "bench", f"ws://{node}", "--warmup", "0s",
            "--duration", f"{seconds:g}s", "--jwt-secret", secret, *args]
    with log.open("ab") as out:
        subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=seconds + 60,
                       check=False)


async def misbehave(node: str, seconds: float, secret: str) -> None:
    """Calls of an unknown method and with bad params (JSON-RPC -32601, -32602) 20 a
    second, and an upgrade with a bad token (401) every half second; it connects with a
    recovery token that is no good (a resume ``invalid``)."""
    url = f"ws://{node}/ws"
    good = {"Authorization": f"Bearer {issue_token(secret, sub='misbehaving', ttl=600)}"}
    async with connect(f"{url}?recover=not-a-token", additional_headers=good) as ws:
        end, n = time.monotonic() + seconds, 0
        while time.monotonic() < end:
            method, params = ("no.such.method", None) if n % 2 else ("room.join", {"x": 1})
            await ws.send(jsonrpc.dumps(jsonrpc.encode_request(method, params, n)), text=True)
            await ws.recv()
            if n % 10 == 0:
                with contextlib.suppress(InvalidStatus):
                    async with connect(url, additional_headers={
                            "Authorization": "Bearer not-a-jwt"}):
                        pass
            n += 1
            await asyncio.sleep(0.05)


@contextlib.contextmanager
def simulator(upstream: str, log: Path) -> Iterator[tuple[str, str]]:
    """``rtctl simulate`` in front of ``upstream``: (its listening address, its control's)."""
    listen, control = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    argv = [sys.executable, "-m", "rtctl", "simulate", "--listen", listen, "--upstream",
            f"ws://{upstream}", "--control", control, "--profile",
            "broadband-regional-p50", "--seed", "15"]
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: answers(f"http://{control}/metrics"), proc, "rtctl simulate", 30,
                   log)
        yield listen, control
    finally:
        end_process(proc, signal.SIGTERM)


@contextlib.contextmanager
def stack(workdir: Path) -> Iterator[dict[str, Any]]:
    """Everything running and scraped; stopped on the way out, even on error."""
    secret = secrets.token_urlsafe(32)
    with contextlib.ExitStack() as cleanup:
        redis, nats = start_backends(cleanup)
        memory = GatewayNode("gw-memory", secret=secret, log=workdir / "gw-memory.log")
        clustered = [GatewayNode(f"gw-redis-{i}", secret=secret, redis_url=redis.url,
                                 nats_url=nats.url, log=workdir / f"gw-redis-{i}.log",
                                 flags=("--node-ttl", "5s")) for i in (1, 2)]
        nodes = [memory, *clustered]
        start_gateways(cleanup, nodes)
        listen, control = cleanup.enter_context(simulator(memory.address,
                                                          workdir / "simulate.log"))
        prometheus = PrometheusProcess(
            jobs={GATEWAY_JOB: [n.address for n in nodes], SIMULATOR_JOB: [control]},
            names={n.address: n.node_id for n in nodes} | {control: "simulate"},
            workdir=workdir)
        cleanup.enter_context(prometheus)
        prometheus.wait_scraped(time.time(), 30)
        yield {"secret": secret, "redis": redis, "memory": memory, "clustered": clustered,
               "simulator": listen, "prometheus": prometheus}


def run_load(running: dict[str, Any], workdir: Path, scale: float
             ) -> tuple[float, float, list[tuple[float, str]]]:
    """The timeline of the module docstring: its start, its end and the (unix time, what)
    of each phase between."""
    secret = running["secret"]
    events: list[tuple[float, str]] = []  # list.append is atomic: the echo thread adds too
    gw1, gw2 = (node.address for node in running["clustered"])

    def echo_steps() -> None:
        for rate in ECHO_STEPS:
            events.append((time.time(), f"echo {rate}/s"))
            bench(gw1, 25 * scale, "--clients", "40", "--rate", str(rate), secret=secret,
                  log=workdir / "bench-echo.log")

    loads: list[Callable[[], None]] = [
        echo_steps,
        lambda: bench(gw2, 100 * scale, "--scenario", "rooms", "--clients", "30", "--rate",
                      "30", secret=secret, log=workdir / "bench-rooms.log"),
        lambda: bench(running["simulator"], 130 * scale, "--clients", "10", "--rate", "20",
                      secret=secret, log=workdir / "bench-simulated.log"),
    ]
    threads = [threading.Thread(target=load, daemon=True) for load in loads]
    start = time.time()
    for thread in threads:
        thread.start()

    def at(offset: float, what: str) -> None:
        time.sleep(max(0.0, start + offset * scale - time.time()))  # the schedule's clock
        events.append((time.time(), what))

    at(BURST[0], "misbehaving client")
    asyncio.run(misbehave(running["memory"].address, (BURST[1] - BURST[0]) * scale, secret))
    at(NODE_KILL, "gw-redis-2 killed")
    running["clustered"][1].stop()
    at(REDIS_DOWN[0], "Redis stopped")
    running["redis"].stop()
    at(REDIS_DOWN[1], "Redis back")
    running["redis"].start()
    time.sleep(max(0.0, start + END * scale - time.time()))
    for thread in threads:
        thread.join(60)
    return start, time.time(), sorted(events)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "dashboards")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every time of the timeline (0.2 for a quick look)")
    parser.add_argument("--step", type=float, default=2.0, help="query_range step (s)")
    parser.add_argument("--rate-interval", default="10s",
                        help="$__rate_interval (Grafana: at least 4 scrape intervals)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, stack(Path(tmp)) as running:
        start, end, events = run_load(running, Path(tmp), args.scale)
        prometheus: PrometheusProcess = running["prometheus"]
        prometheus.wait_scraped(end, 30)
        drawn: dict[str, int] = {}
        for dashboard in DASHBOARDS:
            answered: set[str] = set()

            def fetch(expr: str, answered: set[str] = answered) -> Any:
                series = prometheus.api.query_range(
                    concrete(expr, rate_interval=args.rate_interval), start, end, args.step)
                if series:
                    answered.add(expr)
                return series

            render_dashboard(dashboard, fetch, args.out / f"{dashboard.uid}.png",
                             start=start, events=events)
            drawn[dashboard.uid] = sum(any(q.expr in answered for q in p.queries)
                                       for p in dashboard.panels)
    print(json.dumps({"events": [[round(t - start, 1), what] for t, what in events],
                      "panels_with_data": drawn,
                      "panels": {d.uid: len(d.panels) for d in DASHBOARDS}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
