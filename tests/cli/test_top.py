"""``rtctl top`` as a user runs it, against a live in-process gateway on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
from prometheus_client.core import Metric

from rtctl.gateway.server import Gateway
from tests.cli import test_cli
from tests.cli.test_cli import ROOT, rtctl
from tests.conftest import TIMING, GatewayFactory, client, rpc

env = test_cli.env  # the fixtures: a fresh state directory, no token in the environment

CALLS = 20
# Long enough for CALLS echo calls on loopback (milliseconds) to fall between the two scrapes.
INTERVAL = f"{2 * TIMING}s"


class Scrapes:
    """Counts the gateway's ``/metrics`` scrapes, so a test acts between two of them."""

    def __init__(self, gateway: Gateway) -> None:
        self.count = 0
        self.changed = asyncio.Event()
        gateway.metrics.registry.register(self)

    def collect(self) -> Iterator[Metric]:  # the Collector protocol: called at each scrape
        self.count += 1
        self.changed.set()
        return iter(())

    async def reach(self, count: int) -> None:
        while self.count < count:
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 10 * TIMING)


def _base(gateway: Gateway) -> str:
    return f"http://127.0.0.1:{gateway.port}"


async def test_once_as_json_shows_the_calls_made_between_its_two_scrapes(
        start_gateway: GatewayFactory, env: dict[str, str]) -> None:
    gateway: Gateway = await start_gateway()
    scrapes = Scrapes(gateway)
    async with client(gateway.url) as ws:  # the WebSocket URL, as a developer pastes it
        done = asyncio.create_task(asyncio.to_thread(
            rtctl, "top", gateway.url, "--once", "--json", "--interval", INTERVAL, env=env))
        await scrapes.reach(1)
        for number in range(CALLS):
            assert (await rpc(ws, "sys.echo", [number], id=number))["result"] == [number]
        result = await done
    assert result.returncode == 0, result.stderr
    assert scrapes.count == 2
    view = json.loads(result.stdout)
    assert view["connections"] == 1
    echo = next(row for row in view["methods"] if row["method"] == "sys.echo")
    assert echo["calls_per_s"] * view["seconds"] == pytest.approx(CALLS)
    assert view["messages_in_per_s"] * view["seconds"] == pytest.approx(CALLS)
    assert 0 < echo["p50_s"] <= echo["p99_s"]
    assert [lane["lane"] for lane in view["lanes"]] == [
        "control", "state", "events", "chat", "telemetry"]
    assert view["backends"] == []  # memory-only: no backend families


async def test_once_prints_the_view_for_people(start_gateway: GatewayFactory,
                                               env: dict[str, str]) -> None:
    gateway: Gateway = await start_gateway()
    result = await asyncio.to_thread(rtctl, "top", f"{_base(gateway)}/metrics", "--once",
                                     "--interval", "0.1s", env=env)
    assert result.returncode == 0, result.stderr
    said = result.stdout
    assert f"{_base(gateway)}/metrics" in said
    assert "connections      0 open" in said
    assert "rpc by method" in said
    assert "outbox lanes" in said


async def test_ctrl_c_stops_the_live_view_cleanly(start_gateway: GatewayFactory,
                                                  env: dict[str, str]) -> None:
    gateway: Gateway = await start_gateway()
    scrapes = Scrapes(gateway)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rtctl", "top", _base(gateway), "--interval", "0.1s", cwd=ROOT,
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        await scrapes.reach(3)  # a view drawn, and the next one under way
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 15 * TIMING)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err
    assert err == b""
    assert b"rpc by method" in out


async def test_a_url_that_is_not_a_metrics_endpoint_is_one_line(
        start_gateway: GatewayFactory, env: dict[str, str]) -> None:
    gateway: Gateway = await start_gateway()
    for path, said in (("/healthz", "is not a metrics endpoint: not a Prometheus text "
                                    "exposition"),
                       ("/nowhere", "answered HTTP 404: not a metrics endpoint")):
        result = await asyncio.to_thread(rtctl, "top", f"{_base(gateway)}{path}", "--once",
                                         env=env)
        assert result.returncode == 1
        [line] = result.stderr.splitlines()
        assert line.startswith(f"rtctl: error: {_base(gateway)}{path} ")
        assert said in line


@pytest.mark.parametrize(("args", "code", "said"), [
    (["http://127.0.0.1:1", "--once"], 1, "rtctl: error: cannot read http://127.0.0.1:1/metrics:"),
    (["http://127.0.0.1:1", "--json"], 2, "rtctl: error: --json prints one view: use it with "
                                          "--once"),
    (["http://127.0.0.1:1", "--interval", "0s"], 2, "rtctl: error: --interval '0s' must be "
                                                    "longer than zero"),
    (["ftp://127.0.0.1:1"], 2, "rtctl: error: URL 'ftp://127.0.0.1:1' is not a gateway's"),
])
def test_bad_input_is_one_line_and_its_exit_code(args: list[str], code: int, said: str,
                                                 env: dict[str, str]) -> None:
    result = rtctl("top", *args, env=env)
    assert result.returncode == code
    [line] = result.stderr.splitlines()
    assert line.startswith(said)


def test_help_teaches_with_an_example(env: dict[str, str]) -> None:
    result = rtctl("top", "--help", env=env)
    assert result.returncode == 0
    assert "rtctl top http://127.0.0.1:8765 --interval 2s" in result.stdout
