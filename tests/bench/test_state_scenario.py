"""The ``state`` scenario against a real gateway with ``drift`` rooms: what it counts adds up."""

from __future__ import annotations

import time
from typing import Any

import pytest

from rtctl.bench.plan import Plan, TokenPlan
from rtctl.bench.results import LOST, BenchResult, Recorder
from rtctl.bench.runner import run_worker
from rtctl.bench.scenario import Context
from rtctl.bench.state_counts import RoomCost, StateTotals
from rtctl.bench.state_scenario import NoRoomType, StateSync, SyncClient
from rtctl.client import Client
from rtctl.gateway.server import Gateway
from rtctl.services import builtin_services
from rtctl.services.drift import DriftRoom, StampedArena
from rtctl.state import Encoder
from tests.conftest import SECRET, GatewayFactory, make_token
from tests.simulator.test_proxy import ProxyFactory, start_proxy  # noqa: F401  (fixture)

RATE = 50  # ticks/s: a window of DURATION holds RATE * DURATION versions
DURATION = 1.0
WARMUP = 0.2


@pytest.fixture
async def gateway(start_gateway: GatewayFactory) -> Gateway:
    gw: Gateway = await start_gateway(services=builtin_services(room_types={"drift": DriftRoom}))
    return gw


def _plan(url: str, **fields: Any) -> Plan:
    fields = {"tokens": TokenPlan(secret=SECRET), "duration": DURATION, **fields}
    return Plan(scenario="state", url=url, rate=RATE, warmup=WARMUP, entities=10, **fields)


async def _run(plan: Plan) -> BenchResult:
    return BenchResult.merge([await run_worker(plan)], scenario="state", clients=plan.clients,
                             rate=plan.rate, duration_s=plan.duration)


async def test_every_version_reaches_every_client_and_is_counted(gateway: Gateway) -> None:
    result = await _run(_plan(gateway.url, clients=4, encoding="mixed"))
    assert not result.errors  # loopback: no version skipped, none lost
    assert result.latency_ms()["p50"] is not None
    state = result.state
    assert state is not None
    assert state.early == 0  # one clock: nothing was applied before its stamp
    cost = state.server
    assert cost is not None
    assert cost.members == 4
    assert cost.versions == cost.patches == cost.ticks  # a stamped room changes every tick
    assert cost.ticks == pytest.approx(RATE * DURATION, abs=3)
    assert cost.encode_us_per_patch is not None
    assert cost.encode_us_per_patch > 0
    assert set(state.clients) == {"binary", "json"}
    for counts in state.clients.values():
        assert counts.clients == 2
        assert counts.gaps == counts.resyncs == counts.stale == counts.dropped == 0
        assert counts.patches == counts.versions == pytest.approx(2 * cost.versions, abs=4)
        assert counts.wire_bytes > counts.bytes  # the frame or the notification around each
    binary, json_ = state.clients["binary"].to_json(), state.clients["json"].to_json()
    # Binary clients get the encoder's patches as they are: the room's own mean size.
    assert binary["bytes_per_tick"] == pytest.approx(cost.bytes_per_patch, rel=0.1)
    assert json_["bytes_per_tick"] > 2 * binary["bytes_per_tick"]
    # One delivery per version per client, each counted once: completed versions are the
    # versions the stores advanced (give or take those in flight at the window's edges).
    assert result.messages == pytest.approx(4 * cost.versions, abs=8)


async def test_a_lossy_link_shows_as_gaps_resyncs_and_lost_versions(
        gateway: Gateway, start_proxy: ProxyFactory) -> None:  # noqa: F811
    proxy = await start_proxy(gateway.url.removesuffix("/ws"), seed=7, down_loss="10%")
    result = await _run(_plan(f"{proxy.url}/ws", clients=2))
    state = result.state
    assert state is not None
    counts = state.clients["binary"]
    assert counts.gaps > 0
    assert 0 < counts.resyncs <= counts.gaps  # a resync mends a gap; none without one
    # Versions skipped while resyncing were expected and never applied one by one: lost,
    # at most every version of the window and no more.
    assert 0 < result.errors[LOST] < result.expected
    assert set(result.errors) == {LOST}
    assert result.messages + result.errors[LOST] == result.expected


async def test_one_token_is_one_user_and_the_rest_are_refused_as_such(
        gateway: Gateway) -> None:
    # The gateway's per-user limit is 8: with one token, the 9th and 10th get HTTP 429.
    result = await _run(_plan(gateway.url, clients=10, duration=0.3,
                              tokens=TokenPlan(token=make_token("al"))))
    assert (result.connects, dict(result.errors)) == (10, {"http 429": 2})
    assert result.messages > 0


async def test_a_gateway_without_drift_rooms_is_refused_before_the_run(
        start_gateway: GatewayFactory) -> None:
    plain = await start_gateway()
    with pytest.raises(NoRoomType, match="start it with `rtctl serve --room-type drift`"):
        await StateSync().prepare(_plan(plain.url, clients=1))


def test_the_rooms_cost_is_the_window_between_two_answers() -> None:
    def info(ticks: int, patches: int, encode_us: float, size: float) -> dict[str, Any]:
        return {"ticks": ticks, "version": ticks, "patches": patches, "members": 3,
                "bytes_per_patch": size, "encode_us_per_patch": encode_us,
                "coalesced": ticks // 10, "catch_ups": 1, "fulls": 3}

    cost = RoomCost.between(info(10, 10, 100.0, 50.0), info(30, 30, 120.0, 60.0))
    # 20 patches took 30 * 120 - 10 * 100 = 2,600 µs and 30 * 60 - 10 * 50 = 1,300 bytes.
    assert cost == RoomCost(ticks=20, versions=20, patches=20, bytes_per_patch=65.0,
                            encode_us_per_patch=130.0, coalesced=2, catch_ups=0, fulls=0,
                            members=3)
    idle = RoomCost.between(info(10, 10, 100.0, 50.0), info(12, 10, 100.0, 50.0))
    assert (idle.bytes_per_patch, idle.encode_us_per_patch) == (None, None)


def test_versions_a_client_skipped_or_never_applied_in_the_window_are_lost() -> None:
    """Synchronously, with stamps placed around a window [-10 s, -5 s) of this clock:
    versions 2-4 are stamped in it, 1 before and 5 after it."""
    recorder = Recorder()
    now = time.monotonic()
    recorder.open_window(now - 10, now - 5)
    ctx = Context(plan=_plan("ws://127.0.0.1:1/ws", clients=3), recorder=recorder,
                  ramp_start=now)
    totals = StateTotals(room="drift:bench", entities=0, movers=0, tick_rate=RATE)
    state = StampedArena()
    encoder = Encoder(state)
    messages = {}
    for version, seconds_ago in ((1, 12), (2, 9), (3, 8), (4, 7), (5, 3)):
        state.sent_at = (time.time() - seconds_ago) * 1000
        messages[version] = encoder.full() if version == 1 else encoder.delta()
    snapshot_5 = encoder.full()
    follows, lags, jumps = (SyncClient(ctx, totals, Client("ws://127.0.0.1:1"), binary=True)
                            for _ in range(3))
    for version in (1, 2, 3, 4, 5):
        follows.store.apply(messages[version])
    for client in (lags, jumps):
        client.store.apply(messages[1])
        client.store.apply(messages[2])
    jumps.store.apply(snapshot_5)  # a resync over versions 3 and 4
    assert totals.end_version == 4  # seen exactly by the one that applied 4, then 5
    assert (follows.unapplied(), lags.unapplied(), jumps.unapplied()) == (0, 2, 2)
    assert [c.after_window.is_set() for c in (follows, lags, jumps)] == [True, False, True]
    recorder.expected += sum(c.unapplied() for c in (follows, lags, jumps))
    assert (recorder.count, recorder.expected) == (3 + 1 + 1, 3 * 3)  # 4 of 9 lost
