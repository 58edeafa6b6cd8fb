"""The gateway's sampled stage timings: the pure table, ``GET /profile``, ``rtctl profile``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from rtctl.gateway.dispatch import Timed
from rtctl.gateway.server import Gateway
from rtctl.profiler.report import ProfileFailed, breakdown, fetch
from rtctl.profiler.stages import (
    DEFAULT_EVERY,
    STAGES,
    UNKNOWN_METHOD,
    QueueDepths,
    StageProfiler,
)
from rtctl.protocol.lanes import Lane
from rtctl.router import Router
from tests.cli import test_cli
from tests.cli.test_cli import Served, rtctl
from tests.conftest import GatewayFactory, client, make_token, rpc
from tests.gateway.test_dispatch import Script, harness, request

env = test_cli.env  # the fixture: a fresh state directory, no token in the environment
NO_QUEUES = QueueDepths(connections=0, outboxes=0, queued_messages=0, queued_bytes=0,
                        max_queued_messages=0)


def test_the_table_by_method_and_stage() -> None:
    profiler = StageProfiler(known_methods={"sys.echo"})
    profiler.record("sys.echo", 1_000, 2_000, 3_000, 4_000)
    profiler.record("sys.echo", 1_000, 2_000, 3_000, 6_000)
    profiler.record("made.up", 1, 1, 1, 1)
    document = profiler.snapshot(NO_QUEUES, reset=True)
    assert document["sampled"] == 3
    assert set(document["methods"]) == {"sys.echo", UNKNOWN_METHOD}
    echo = document["methods"]["sys.echo"]
    assert list(echo) == list(STAGES)
    assert echo["write"]["count"] == 2
    assert echo["write"]["mean_us"] == pytest.approx(5.0)
    assert echo["write"]["max_us"] == pytest.approx(6.0)
    assert echo["decode"]["total_us"] == pytest.approx(2.0)
    assert profiler.snapshot(NO_QUEUES)["methods"] == {}  # reset started a new interval


def test_every_is_at_least_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        StageProfiler(every=0)


def _get(gateway: Gateway, token: str | None) -> dict[str, Any]:
    return fetch(f"ws://127.0.0.1:{gateway.port}", token, reset=False)


async def test_profile_needs_an_admin_token(gateway: Gateway) -> None:
    with pytest.raises(ProfileFailed, match="HTTP 401"):
        await asyncio.to_thread(_get, gateway, None)
    with pytest.raises(ProfileFailed, match="HTTP 403: the profile needs a token with the "
                                            "claim role=admin"):
        await asyncio.to_thread(_get, gateway, make_token())


async def test_one_message_in_every_is_timed_sync_and_async(
        start_gateway: GatewayFactory) -> None:
    router = Router()

    @router.method("slow.echo")
    async def slow_echo(value: int) -> int:
        await asyncio.sleep(0)
        return value

    gateway = await start_gateway(router)
    async with client(gateway.url) as ws:
        for i in range(2 * DEFAULT_EVERY):
            await rpc(ws, "sys.echo", [i], id=i)
        for i in range(DEFAULT_EVERY):
            assert (await rpc(ws, "slow.echo", [i], id=i))["result"] == i
        document = await asyncio.to_thread(_get, gateway, make_token(role="admin"))
    assert document["every"] == DEFAULT_EVERY
    assert {m: s["write"]["count"] for m, s in document["methods"].items()} == {
        "sys.echo": 2, "slow.echo": 1}
    for stages in document["methods"].values():
        assert all(stages[stage]["mean_us"] > 0 for stage in STAGES)
    assert document["queues"]["connections"] == 1
    assert document["loop_lag_ms"]["samples"] >= 0
    console = Console(record=True, width=120)
    console.print(breakdown(document))
    shown = console.export_text()
    assert "sys.echo" in shown
    assert "slow.echo" in shown


def test_rtctl_profile_prints_the_breakdown_and_writes_a_chart(
        tmp_path: Path, env: dict[str, str]) -> None:
    served = Served(env=env)
    try:
        chart = tmp_path / "profile.png"
        done = rtctl("profile", served.base_url, "--duration", "0.3s", "--chart", str(chart),
                     env=env, timeout=60)
    finally:
        served.stop()
    assert done.returncode == 0, done.stderr
    assert "where the time goes" in done.stdout
    assert "outbox lanes (all connections)" in done.stdout
    assert all(lane.label in done.stdout for lane in Lane)
    assert chart.read_bytes()[:4] == b"\x89PNG"


def test_profile_of_a_gateway_that_is_not_there(env: dict[str, str]) -> None:
    done = rtctl("profile", "ws://127.0.0.1:9", "--duration", "0s", "--token", "x", env=env)
    assert done.returncode == 1
    assert done.stderr.startswith("rtctl: error: cannot read http://127.0.0.1:9/profile")


def test_first_countdowns_spread_over_one_to_every() -> None:
    profiler = StageProfiler(every=4, seed=1)
    starts = {profiler.first_countdown() for _ in range(200)}
    assert starts == {1, 2, 3, 4}


def test_the_handler_stage_is_rounded_to_the_nanosecond_not_cut(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The handler is timed with the float clock the call metrics use: 3 µs there reads
    # as 2999.99999… ns, which int() cut to 2999.
    assert (1.000003 - 1.0) * 1e9 < 3000
    h = harness(monkeypatch, first=1, every=1, perf=Script(1.0, 1.000003),
                perf_ns=Script(0, 100, 200, 300))
    out = h.dispatcher.receive(h.conn, request("sys.ping"))
    assert isinstance(out, Timed)
    assert out.sample.handler_ns == 3000
