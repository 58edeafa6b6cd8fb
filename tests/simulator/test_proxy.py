"""Through a real proxy on port 0: RTT added, loss counted, order kept, auth, live changes."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import InvalidStatus

from rtctl.gateway.server import Gateway
from simulator.base import ShapingProxy
from simulator.control import ControlServer, request
from simulator.proxy import WebSocketProxy
from simulator.scenario import Conditions, Outage
from simulator.spec import LinkSpec, apply_settings
from simulator.stream import TcpProxy
from tests.conftest import TIMING, GatewayFactory, client, make_token, rpc

ProxyFactory = Callable[..., Awaitable[ShapingProxy]]


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


@pytest.fixture
async def echo_url() -> AsyncIterator[str]:
    async with serve(echo, "127.0.0.1", 0, compression=None) as server:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"


@pytest.fixture
async def start_proxy() -> AsyncIterator[ProxyFactory]:
    started: list[ShapingProxy] = []

    async def start(upstream: str, mode: str = "ws", seed: int | None = 1,
                    outages: list[Outage] | None = None, **settings: Any) -> ShapingProxy:
        conditions = Conditions(apply_settings(LinkSpec(), settings), outages=outages or [])
        cls = WebSocketProxy if mode == "ws" else TcpProxy
        proxy = cls(upstream, conditions, seed=seed)
        await proxy.start()
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        await proxy.stop()


async def round_trip(ws: Any, message: str = "ping") -> float:
    start = time.perf_counter()
    await ws.send(message)
    assert await ws.recv() == message
    return time.perf_counter() - start


@pytest.mark.parametrize("mode", ["ws", "tcp"])
async def test_latency_adds_twice_to_the_round_trip(
        echo_url: str, start_proxy: ProxyFactory, mode: str) -> None:
    proxy = await start_proxy(echo_url, mode=mode, latency="50ms")
    async with connect(proxy.url, compression=None) as ws:
        rtts = [await round_trip(ws, f"m{i}") for i in range(5)]
    assert min(rtts) >= 0.100
    assert max(rtts) <= 0.100 + 0.05 * TIMING


async def test_loss_is_counted_and_order_kept(echo_url: str, start_proxy: ProxyFactory) -> None:
    proxy = await start_proxy(echo_url, up_loss="10%", jitter="5ms", latency="5ms")
    n = 1000
    async with connect(proxy.url, compression=None) as ws:
        for i in range(n):
            await ws.send(str(i))
        await ws.send("end")  # a sentinel; retried until it passes the lossy link
        received: list[int] = []
        async with asyncio.timeout(5 * TIMING):
            while (message := await ws.recv()) != "end":
                received.append(int(message))
                if len(received) + proxy.metrics.dropped["up", "loss"] >= n:
                    break
    dropped = proxy.metrics.dropped["up", "loss"]
    assert len(received) + dropped == n
    assert dropped / n == pytest.approx(0.10, abs=0.04)
    assert received == sorted(received)  # jitter without --reorder keeps order


async def test_tcp_mode_loses_no_bytes(echo_url: str, start_proxy: ProxyFactory) -> None:
    proxy = await start_proxy(echo_url, mode="tcp", loss="30%")
    async with connect(proxy.url, compression=None, ping_interval=None) as ws:
        for i in range(200):
            await ws.send(str(i))
        async with asyncio.timeout(10 * TIMING):
            got = [int(await ws.recv()) for _ in range(200)]
            rtts = [await round_trip(ws, str(i)) for i in range(8)]  # one read each way
    assert got == list(range(200))
    retransmits = sum(proxy.metrics.retransmits.values())
    assert retransmits > 0
    assert max(rtts) >= 0.2  # a stall is at least one RTO


async def test_handshake_and_auth_pass_through_to_the_gateway(
        start_gateway: GatewayFactory, start_proxy: ProxyFactory) -> None:
    gateway: Gateway = await start_gateway()
    proxy = await start_proxy(gateway.url.removesuffix("/ws"), latency="1ms")
    async with client(proxy.url + "/ws", token=make_token("carol"),
                      subprotocols=["rtctl.v1"]) as ws:
        assert ws.subprotocol == "rtctl.v1"
        reply = await rpc(ws, "session.info")
        assert reply["result"]["user"] == "carol"
    async with connect(f"{proxy.url}/ws?token={make_token('dave')}") as ws:
        assert (await rpc(ws, "session.info"))["result"]["user"] == "dave"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(proxy.url + "/ws", additional_headers={"Authorization": "Bearer x"}):
            pass
    assert refused.value.response.status_code == 401
    assert json.loads(refused.value.response.body)["reason"] == "malformed"


async def test_live_change_applies_without_dropping_the_connection(
        echo_url: str, start_proxy: ProxyFactory) -> None:
    proxy = await start_proxy(echo_url)
    api = ControlServer(proxy)
    await api.start()
    try:
        async with connect(proxy.url, compression=None) as ws:
            assert await round_trip(ws) < 0.05 * TIMING
            state = await asyncio.to_thread(request, api.url, "PATCH", "/impairments",
                                            {"latency": "60ms"})
            assert state["base"]["up"]["latency"] == 0.06
            assert await round_trip(ws) >= 0.120
            await asyncio.to_thread(request, api.url, "PUT", "/rules",
                                    [{"address": "127.0.0.1", "settings": {"latency": "0ms"}}])
            assert await round_trip(ws) < 0.05 * TIMING
            await asyncio.to_thread(request, api.url, "PUT", "/impairments", {})
            metrics = await asyncio.to_thread(_get, api.url + "/metrics")
        assert 'rtctl_sim_messages_total{direction="up"} 3.0' in metrics
        assert proxy.metrics.connections_opened == 1
    finally:
        await api.stop()


def _get(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


async def test_reset_outage_cuts_connections_and_refuses_new_ones(
        echo_url: str, start_proxy: ProxyFactory) -> None:
    proxy = await start_proxy(echo_url)
    async with connect(proxy.url, compression=None) as ws:
        await round_trip(ws)
        proxy.add_outage(Outage(proxy.elapsed(), 0.5 * TIMING, "reset"))
        async with asyncio.timeout(2 * TIMING):
            await ws.wait_closed()
    with pytest.raises(InvalidStatus) as refused:
        async with connect(proxy.url):
            pass
    assert refused.value.response.status_code == 503
    assert proxy.metrics.resets == 1
