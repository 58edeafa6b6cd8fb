"""``rtctl top`` as a user runs it, against a live in-process gateway on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import re
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


class Counted:
    """Counts scrapes as they arrive, so a test acts between two of them."""

    def __init__(self) -> None:
        self.count = 0
        self.changed = asyncio.Event()

    def arrived(self) -> int:
        self.count += 1
        self.changed.set()
        return self.count

    async def reach(self, count: int) -> None:
        while self.count < count:
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 10 * TIMING)


class Scrapes(Counted):
    """The gateway's ``/metrics`` scrapes."""

    def __init__(self, gateway: Gateway) -> None:
        super().__init__()
        gateway.metrics.registry.register(self)

    def collect(self) -> Iterator[Metric]:  # the Collector protocol: called at each scrape
        self.arrived()
        return iter(())


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
    assert view["backends"] is None  # memory-only: no backend families


async def test_once_prints_the_view_for_people(start_gateway: GatewayFactory,
                                               env: dict[str, str]) -> None:
    gateway: Gateway = await start_gateway()
    result = await asyncio.to_thread(rtctl, "top", f"{_base(gateway)}/metrics", "--once",
                                     "--interval", "0.1s", env=env)
    assert result.returncode == 0, result.stderr
    said = result.stdout
    assert f"{_base(gateway)}/metrics" in said
    assert "connections     0 open" in said
    assert "rpc by method" in said
    assert "outbox lanes" in said


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


class FlakyMetrics(Counted):
    """A ``/metrics`` on 127.0.0.1 whose answer number ``fail`` fails as ``failure`` says
    (raw bytes, then it hangs up) and whose answer number ``hold`` never comes; the others
    expose ``rtctl_connections`` = their number, so a view tells which scrape it is from."""

    def __init__(self, *, fail: int, failure: bytes, hold: int = 0) -> None:
        super().__init__()
        self.fail, self.failure, self.hold = fail, failure, hold
        self.release = asyncio.Event()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *_: object) -> None:
        self.release.set()
        self.server.close()
        await self.server.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        number = self.arrived()
        if number == self.hold:
            await self.release.wait()
        elif number == self.fail:
            writer.write(self.failure)
        else:
            body = f"# TYPE rtctl_connections gauge\nrtctl_connections {number}\n".encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
        await writer.drain()
        writer.close()


async def _live_until(url: str, scrapes: Counted, count: int, env: dict[str, str]
                      ) -> tuple[int | None, str, bytes]:
    """Run the live view until ``scrapes`` reaches ``count``, then press Ctrl-C: what
    the view showed last (Rich prints it once more as it stops), and stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rtctl", "top", url, "--interval", "0.1s", cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        await scrapes.reach(count)
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 15 * TIMING)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode, out.decode(), err


async def test_ctrl_c_stops_the_live_view_cleanly(start_gateway: GatewayFactory,
                                                  env: dict[str, str]) -> None:
    gateway: Gateway = await start_gateway()
    # Scrape 3: a view drawn, and the next one under way.
    code, out, err = await _live_until(_base(gateway), Scrapes(gateway), 3, env)
    assert (code, err) == (0, b"")
    assert "rpc by method" in out


HTTP_503 = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


@pytest.mark.parametrize(("failure", "reason"), [
    (HTTP_503, "HTTP 503"),  # the end of a drain
    (b"", "Remote end closed connection without response"),  # a restart
    (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n# TYPE", "IncompleteRead"),  # killed
])
async def test_a_failed_scrape_is_shown_above_the_last_view_and_retried(
        failure: bytes, reason: str, env: dict[str, str]) -> None:
    # Scrape 3 fails; scrape 4 is the retry, held until Ctrl-C, so the view still says so.
    metrics = FlakyMetrics(fail=3, failure=failure, hold=4)
    async with metrics as url:
        code, out, err = await _live_until(url, metrics, 4, env)
    assert (code, err) == (0, b"")
    first, *view = out.splitlines()
    assert re.fullmatch(rf"scrape failed \d\d:\d\d:\d\d: {reason}.*; retrying", first.rstrip())
    assert view[0].startswith(f"{url}/metrics ")
    assert "connections     2 open" in out  # the last view: scrapes 1 to 2


async def test_the_live_view_carries_on_from_the_next_good_scrape(env: dict[str, str]) -> None:
    metrics = FlakyMetrics(fail=3, failure=HTTP_503, hold=5)
    async with metrics as url:
        code, out, err = await _live_until(url, metrics, 5, env)
    assert (code, err) == (0, b"")
    assert "scrape failed" not in out
    assert "connections     4 open" in out  # scrapes 2 to 4: the window spans the failure


async def test_once_fails_when_its_second_scrape_fails(env: dict[str, str]) -> None:
    metrics = FlakyMetrics(fail=2, failure=HTTP_503)
    async with metrics as url:
        result = await asyncio.to_thread(rtctl, "top", url, "--once", "--interval", "0.1s",
                                         env=env)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"rtctl: error: {url}/metrics answered HTTP 503: not a metrics")


@pytest.mark.parametrize(("args", "code", "said"), [
    (["http://127.0.0.1:1", "--once"], 1, "rtctl: error: cannot read http://127.0.0.1:1/metrics:"),
    (["http://127.0.0.1:1"], 1, "rtctl: error: cannot read http://127.0.0.1:1/metrics:"),
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
