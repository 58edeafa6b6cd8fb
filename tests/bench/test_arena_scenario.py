"""The ``arena`` scenario: bots play a real gateway's arena, straight or through the
simulator, and the netcode numbers add up; its accumulators merge exactly."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from rtctl.bench.arena_scenario import Arena
from rtctl.bench.histogram import Histogram
from rtctl.bench.netcode_counts import NetcodeTotals, Truth
from rtctl.bench.plan import Plan, TokenPlan
from rtctl.bench.plots import draw, netcode_path
from rtctl.bench.report import summary
from rtctl.bench.results import BenchResult
from rtctl.bench.runner import run_worker
from rtctl.bench.state_scenario import NoRoomType
from rtctl.client.interpolation import Frame
from rtctl.client.netcode import CORRECTION_EPSILON
from rtctl.client.prediction import Reconciliation
from rtctl.demo.game import TICK_RATE
from rtctl.demo.networks import unplayable
from rtctl.demo.room import ArenaRoom
from rtctl.exceptions import ConfigError
from rtctl.gateway.server import Gateway
from rtctl.services import builtin_services
from simulator.profiles import load_profile
from simulator.proxy import WebSocketProxy
from tests.conftest import SECRET, GatewayFactory, make_token

BOTS = 3
DURATION = 2.0
WARMUP = 0.5
PROFILE = "lte"  # 50 ms down, 65 ms up, no loss: the ages and delays it adds are known
DOWN, UP = 0.050, 0.065
TOLERANCE = 0.005  # s: the profile's delays are exact; this covers the ticks' own jitter


@pytest.fixture
async def gateway(start_gateway: GatewayFactory) -> Gateway:
    gw: Gateway = await start_gateway(services=builtin_services(room_types={"arena": ArenaRoom}))
    return gw


@pytest.fixture
async def lte(gateway: Gateway) -> AsyncIterator[WebSocketProxy]:
    proxy = WebSocketProxy(gateway.url.removesuffix("/ws"), load_profile(PROFILE).conditions(),
                           seed=3)
    await proxy.start()
    yield proxy
    await proxy.stop()


def _plan(url: str, **fields: Any) -> Plan:
    fields = {"tokens": TokenPlan(secret=SECRET), "clients": BOTS, **fields}
    return Plan(scenario="arena", url=url, duration=DURATION, warmup=WARMUP, **fields)


async def _run(plan: Plan) -> BenchResult:
    return BenchResult.merge([await run_worker(plan)], scenario="arena", clients=plan.clients,
                             rate=plan.rate, duration_s=plan.duration)


def _netcode(result: BenchResult) -> dict[str, Any]:
    netcode: dict[str, Any] = result.to_json()["netcode"]
    return netcode


async def test_bots_play_and_every_netcode_number_is_measured(gateway: Gateway,
                                                              tmp_path: Path) -> None:
    result = await _run(_plan(gateway.url))
    assert not result.errors  # loopback: every tick reached every bot
    ticks = DURATION * TICK_RATE
    # One completion per snapshot per bot (give or take the ticks at the window's edges).
    assert result.messages == pytest.approx(BOTS * ticks, abs=2 * BOTS)
    netcode = _netcode(result)
    assert set(netcode) == {
        "prediction_error", "corrections", "respawns", "interpolation_error", "snapshot_age_ms",
        "extrapolated_ratio", "rollback_frames", "input_loss", "bytes_per_s",
        "input_delay_ms", "interpolation_delay_ms", "without", "frames", "unjudged",
        "profile"}
    assert set(netcode["without"]) == {"interpolation_error", "input_delay_ms"}
    assert set(netcode["prediction_error"]) == set(netcode["rollback_frames"]) == {
        "p50", "p99", "max"}
    assert set(netcode["corrections"]) == {"count", "p99"}
    for key in ("interpolation_error", "snapshot_age_ms", "input_delay_ms",
                "interpolation_delay_ms"):
        assert set(netcode[key]) == {"p50", "p99"}
    assert netcode["profile"] is None
    assert 0 < netcode["snapshot_age_ms"]["p50"] < 100
    assert netcode["snapshot_age_ms"] == {"p50": result.latency_ms()["p50"],
                                          "p99": result.latency_ms()["p99"]}
    for error in (netcode["interpolation_error"], netcode["without"]["interpolation_error"]):
        assert math.isfinite(error["p50"])
        assert error["p99"] >= error["p50"] >= 0
    assert netcode["prediction_error"]["max"] is not None  # a sample per reconciliation
    assert netcode["rollback_frames"]["max"] is not None
    # Each bot rendered a frame with its two rivals at the frame rate through the window.
    assert netcode["frames"] == pytest.approx(BOTS * ticks, abs=2 * BOTS)
    assert 0 <= netcode["extrapolated_ratio"] <= 1
    assert netcode["unjudged"] == 0  # the observer recorded every tick a bot rendered
    # The frame applies the input before it renders: shown at once, but acknowledged only
    # once the server's next tick took it and its snapshot came back.
    assert netcode["input_delay_ms"]["p99"] < netcode["without"]["input_delay_ms"]["p50"]
    assert netcode["without"]["input_delay_ms"]["p50"] > 0
    delay = netcode["interpolation_delay_ms"]
    assert 50 <= delay["p50"] <= delay["p99"] <= 500  # within the default DelayBounds
    loss = netcode["input_loss"]
    assert loss["sent"] == pytest.approx(BOTS * ticks, abs=2 * BOTS)  # one input per frame
    assert (loss["lost"], loss["ratio"]) == (0, 0.0)
    assert netcode["bytes_per_s"]["in"] > 0
    assert netcode["bytes_per_s"]["out"] > 0

    console = Console(width=120, record=True)
    console.print(summary(result))
    text = console.export_text()
    assert "bots playing one arena that ticks 30 times a second" in text
    assert "remote player error p50 / p99" in text
    draw(result, tmp_path / "out.png")
    assert netcode_path(tmp_path / "out.png") == tmp_path / "out-netcode.png"
    assert (tmp_path / "out-netcode.png").read_bytes()[:4] == b"\x89PNG"


async def test_latency_on_the_link_shows_in_snapshot_age_and_input_delay(
        gateway: Gateway, lte: WebSocketProxy) -> None:
    straight = _netcode(await _run(_plan(gateway.url)))
    through = _netcode(await _run(_plan(f"{lte.url}/ws", gateway=gateway.url,
                                        through=PROFILE)))
    assert lte.metrics.connections_opened == BOTS  # the observer went straight to the gateway
    assert through["profile"] == {"name": PROFILE, "unplayable": None}
    age = through["snapshot_age_ms"]["p50"] - straight["snapshot_age_ms"]["p50"]
    assert age >= (DOWN - TOLERANCE) * 1000
    # An input goes up, waits for a tick, and its acknowledgement comes down.
    assert through["without"]["input_delay_ms"]["p50"] >= (DOWN + UP - TOLERANCE) * 1000
    assert through["input_delay_ms"]["p99"] < through["without"]["input_delay_ms"]["p50"]
    assert through["unjudged"] == 0


async def test_a_gateway_without_arena_rooms_is_refused_before_the_run(
        start_gateway: GatewayFactory) -> None:
    plain = await start_gateway()
    with pytest.raises(NoRoomType) as caught:
        await Arena().prepare(_plan(plain.url))
    assert str(caught.value) == ("the gateway has no 'arena' room type: start it with "
                                 "`rtctl serve --room-type arena`")


@pytest.mark.parametrize(("fields", "refused"), [
    ({"rate": 20.0}, "--rate does not apply"),
    ({"tokens": TokenPlan(token=make_token("al"))}, "give --jwt-secret"),
])
def test_a_plan_the_arena_cannot_run_is_refused(fields: dict[str, Any], refused: str) -> None:
    with pytest.raises(ConfigError, match=refused):
        Arena().check(_plan("ws://127.0.0.1:1/ws", **fields))


def _feed(totals: NetcodeTotals, truth: Truth, second: int, base: float) -> None:
    """One worker's samples, all different with ``base``."""
    totals.reconciled(second, Reconciliation(ack=1, error=base, replayed=int(base) % 4,
                                             correction=base + CORRECTION_EPSILON),
                      respawned=False)
    totals.reconciled(second, Reconciliation(ack=2, error=0.0, replayed=0, correction=0.0),
                      respawned=False)
    totals.reconciled(second, Reconciliation(ack=3, error=400.0, replayed=1,
                                             correction=400.0), respawned=True)
    totals.acked(second, shown=[0.0], seen=[base / 10])
    totals.rendered(second, Frame(1.0, {"b": {"x": 0.0, "y": 0.0}}, "extrapolated", 0,
                                  base / 100))
    totals.played(sent=30, lost=int(base), bytes_in_per_s=base * 100, bytes_out_per_s=base)
    truth.judge(totals.interpolation_error, second, 2 / TICK_RATE, {"b": (base, 0.0)})
    truth.judge(totals.latest_error, second, 1.5 / TICK_RATE, {"b": (0.0, base)})


def _truth(totals: NetcodeTotals) -> Truth:
    """Player b at x = 0 at tick 1, x = 2 at tick 2."""
    truth = Truth(totals)
    truth.record(1, {"b": (0.0, 0.0)})
    truth.record(2, {"b": (2.0, 0.0)})
    return truth


def test_two_workers_totals_merge_to_one_fed_both() -> None:
    one = NetcodeTotals(profile="wifi")
    one_truth = _truth(one)
    parts = []
    for second, base in ((0, 1.5), (1, 7.25)):
        part = NetcodeTotals(profile="wifi")
        _feed(part, _truth(part), second, base)
        _feed(one, one_truth, second, base)
        parts.append(part)
    merged = NetcodeTotals.merged(parts)
    assert merged == one
    assert merged is not None
    document = merged.to_json({"p50": 1.0, "p99": 2.0})
    # At tick 2 b is at x = 2, so (1.5, 0) is 0.5 away and (7.25, 0) 5.25; at tick 1.5 it
    # is at (1, 0), so (0, 1.5) is hypot(1, 1.5) away and (0, 7.25) further.
    assert document["interpolation_error"]["p99"] == pytest.approx(5.25, rel=1e-3)
    assert document["without"]["interpolation_error"]["p50"] == pytest.approx(
        math.hypot(1.0, 1.5), rel=1e-3)
    assert document["corrections"]["count"] == 2  # the zero ones are no corrections
    assert document["respawns"] == 2  # counted apart, not as errors
    assert document["prediction_error"]["max"] == pytest.approx(7.25, rel=1e-3)
    assert document["extrapolated_ratio"] == 1.0
    assert document["input_loss"] == {"sent": 60, "lost": 8, "ratio": 8 / 60}
    assert document["bytes_per_s"] == {"in": pytest.approx(437.5), "out": pytest.approx(4.375)}
    assert NetcodeTotals.merged([]) is None


def test_truth_waits_for_the_tick_a_sample_needs_and_gives_up_on_forgotten_ones() -> None:
    totals = NetcodeTotals()
    truth = Truth(totals, keep=1.0)
    truth.record(10, {"a": (10.0, 0.0)})
    # Shown at tick 10.5, before tick 11 is known: judged when it is.
    truth.judge(totals.latest_error, 0, 10.5 / TICK_RATE, {"a": (12.0, 0.0)})
    assert totals.latest_error.whole().count == 0
    truth.record(11, {"a": (20.0, 0.0)})
    assert totals.latest_error.summary("max") == {"max": pytest.approx(3.0)}  # 15 vs 12
    for tick in range(12, 12 + TICK_RATE + 2):
        truth.record(tick, {"a": (20.0, 0.0)})
    truth.judge(totals.interpolation_error, 0, 10 / TICK_RATE, {"a": (10.0, 0.0)})  # gone
    truth.judge(totals.interpolation_error, 0, 1000 / TICK_RATE, {"a": (0.0, 0.0)})
    truth.finish()  # the last one never came
    assert totals.unjudged == 2
    assert totals.interpolation_error.whole().count == 0


def test_an_unplayable_profile_is_said_under_the_table() -> None:
    verdict = unplayable(load_profile("satellite-geo"))
    assert verdict is not None
    totals = NetcodeTotals(profile="satellite-geo", unplayable=verdict)
    result = BenchResult(scenario="arena", clients=1, workers=1, mode="closed", rate=None,
                         duration_s=1.0, histogram=Histogram(), timeline=[Histogram()],
                         netcode=totals)
    console = Console(width=200, record=True)
    console.print(summary(result))
    lines = [line for line in console.export_text().splitlines() if "not playable" in line]
    assert lines == [f"profile satellite-geo is not playable for a 30 Hz shooter: {verdict}"]
