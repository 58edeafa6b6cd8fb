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


async def closing_echo(ws: ServerConnection) -> None:
    """Echo, and close with 4000 when asked to."""
    async for message in ws:
        if message == "close":
            await ws.close(4000, "asked to")
            return
        await ws.send(message)


@pytest.mark.parametrize("settings", [{}, {"latency": "5ms"}])
async def test_fragments_pings_and_close_codes_pass_through(
        start_proxy: ProxyFactory, settings: dict[str, str]) -> None:
    async with serve(closing_echo, "127.0.0.1", 0, compression=None) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        proxy = await start_proxy(url, **settings)
        async with connect(proxy.url, compression=None) as ws:
            await ws.send(["frag", "mented"])  # one message in two frames (RFC 6455 §5.4)
            assert await ws.recv() == "fragmented"
            async with asyncio.timeout(TIMING):
                await (await ws.ping(b"end to end"))
            await ws.send("close")
            async with asyncio.timeout(2 * TIMING):
                await ws.wait_closed()
            assert (ws.close_code, ws.close_reason) == (4000, "asked to")
    assert proxy.metrics.messages["up"] == 2
    assert proxy.metrics.bytes["up"] == len("fragmented") + len("close")


async def test_a_live_change_mid_stream_keeps_the_order(
        echo_url: str, start_proxy: ProxyFactory) -> None:
    proxy = await start_proxy(echo_url)
    n = 400
    async with connect(proxy.url, compression=None) as ws:
        for i in range(n):
            await ws.send(str(i))
            if i == n // 2:
                proxy.conditions.update({"latency": "2ms"})
        async with asyncio.timeout(5 * TIMING):
            got = [int(await ws.recv()) for _ in range(n)]
    assert got == list(range(n))
    assert proxy.metrics.delayed["up"] > 0
    assert proxy.metrics.messages["up"] == n


async def test_a_framing_error_fails_the_connection_with_1002(
        echo_url: str, start_proxy: ProxyFactory) -> None:
    proxy = await start_proxy(echo_url)
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 b"Sec-WebSocket-Version: 13\r\n\r\n")
    async with asyncio.timeout(2 * TIMING):
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
        writer.write(b"\x81\x02hi")  # unmasked: clients must mask (RFC 6455 §5.1)
        closing = await reader.read()
    writer.close()
    assert closing[:4] == b"\x88" + bytes([len(closing) - 2]) + (1002).to_bytes(2, "big")


async def test_stopping_the_proxy_closes_with_going_away(
        echo_url: str, start_proxy: ProxyFactory) -> None:
    proxy = await start_proxy(echo_url)
    async with connect(proxy.url, compression=None) as ws:
        await round_trip(ws)
        await proxy.stop()
        async with asyncio.timeout(2 * TIMING):
            await ws.wait_closed()
        assert ws.close_code == 1001
