"""The bench is honest: against a server whose behaviour is known, it reports that behaviour.

The server answers every JSON-RPC request after a fixed ``DELAY`` (each
request on its own timer, so requests never queue behind each other). Then:

* closed loop: p50 is ``DELAY`` plus the loopback/CPU overhead (at most
  ``OVERHEAD``), and Little's law holds: throughput = clients / mean latency
  within ``LITTLE``;
* open loop: throughput is the asked rate within ``RATE`` and p50 is ``DELAY``
  plus at most ``OVERHEAD``;
* no coordinated omission: when the one event loop (server *and* generator)
  is blocked for ``STALL``, the requests meant to be sent during the stall count
  their wait, so about rate x (STALL/2 + 2 DELAY) of them show more than STALL/2;
  a generator timing from the actual send would show none.

Tolerances are wide enough for a shared 2-core machine and scale with TIMING.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from rtctl.bench.plan import Plan
from rtctl.bench.results import BenchResult
from rtctl.bench.runner import run_worker
from tests.conftest import TIMING

DELAY = 0.020
OVERHEAD = 0.005 * TIMING
LITTLE = 0.05
RATE = 0.05
STALL = 0.2


class DelayServer:
    """A JSON-RPC echo that answers after DELAY; ``stall_at`` blocks its loop once."""

    def __init__(self) -> None:
        self.stall_at: int | None = None
        self.requests = 0

    async def handler(self, ws: ServerConnection) -> None:
        async for message in ws:
            request = json.loads(message)
            self.requests += 1
            if self.requests == self.stall_at:
                time.sleep(STALL)  # noqa: ASYNC251  (on purpose: the generator's sender stalls too)
            asyncio.get_running_loop().call_later(DELAY, self._answer, ws, request)

    @staticmethod
    def _answer(ws: ServerConnection, request: dict[str, Any]) -> None:
        reply = {"jsonrpc": "2.0", "result": request.get("params"), "id": request["id"]}
        asyncio.get_running_loop().create_task(ws.send(json.dumps(reply)))


@pytest.fixture
async def delay_server() -> AsyncIterator[tuple[DelayServer, str]]:
    server = DelayServer()
    async with serve(server.handler, "127.0.0.1", 0, compression=None) as ws_server:
        port = ws_server.sockets[0].getsockname()[1]
        yield server, f"ws://127.0.0.1:{port}/ws"


async def _run(url: str, **plan: Any) -> BenchResult:
    the_plan = Plan(scenario="echo", url=url, warmup=0.2, **plan)
    part = await run_worker(the_plan)
    return BenchResult.merge([part], scenario="echo", clients=the_plan.clients,
                             rate=the_plan.rate, duration_s=the_plan.duration)


async def test_closed_loop_latency_and_littles_law(
        delay_server: tuple[DelayServer, str]) -> None:
    result = await _run(delay_server[1], clients=10, duration=1.5)
    latency = result.latency_ms()
    assert not result.errors
    assert DELAY * 1e3 <= latency["p50"] <= (DELAY + OVERHEAD) * 1e3
    little = result.clients / (latency["mean"] / 1e3)
    assert result.throughput == pytest.approx(little, rel=LITTLE)
    assert result.throughput == pytest.approx(10 / DELAY, rel=0.25 * TIMING)


async def test_open_loop_keeps_the_rate_and_measures_the_delay(
        delay_server: tuple[DelayServer, str]) -> None:
    result = await _run(delay_server[1], clients=10, rate=400, duration=1.5)
    assert not result.errors
    assert result.throughput == pytest.approx(400, rel=RATE)
    assert DELAY * 1e3 <= result.latency_ms()["p50"] <= (DELAY + OVERHEAD) * 1e3


async def test_a_stall_is_not_hidden(delay_server: tuple[DelayServer, str]) -> None:
    server, url = delay_server
    rate = 400
    server.stall_at = int(rate * 0.7)  # inside the measured window (after 0.2 s warm-up)
    result = await _run(url, clients=10, rate=rate, duration=1.5)
    histogram = result.histogram
    assert histogram.max >= STALL * 1e9
    waited = sum(count for low, _, count in histogram.buckets() if low > STALL / 2 * 1e9)
    # Over STALL/2: requests meant for the stall's first half plus DELAY (they are sent
    # when it ends and answered DELAY later), and those sent in the DELAY before it
    # (their answers' timers fire only when it ends).
    assert waited == pytest.approx(rate * (STALL / 2 + 2 * DELAY), rel=0.25)
