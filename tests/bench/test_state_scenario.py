"""The ``state`` scenario against a real gateway with ``drift`` rooms: what it counts adds up."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from rtctl.bench.plan import Plan, TokenPlan
from rtctl.bench.results import LOST, BenchResult, Recorder
from rtctl.bench.runner import run_worker
from rtctl.bench.scenario import Context
from rtctl.bench.state_counts import RoomCost, StateTotals
from rtctl.bench.state_scenario import ROOM, NoRoomType, StateSync, SyncClient
from rtctl.client import Client, StateStore, SyncedRoom
from rtctl.gateway.server import Gateway
from rtctl.services import builtin_services
from rtctl.services.drift import DriftRoom, StampedArena
from rtctl.state import Encoder
from simulator.scenario import Outage
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


async def test_a_lone_client_that_jumps_over_the_windows_end_counts_what_it_skipped(
        gateway: Gateway, start_proxy: ProxyFactory) -> None:  # noqa: F811
    """No other client of its worker crosses the end: the end version is estimated from
    the stamps it saw. The room's own versions, as a client on a clean link applies them,
    say how many were stamped in the window; the lone client applied or lost each one."""
    proxy = await start_proxy(gateway.url.removesuffix("/ws"))
    plan = _plan(f"{proxy.url}/ws", clients=1)
    observer = Client(gateway.url, token=make_token("observer"), binary=True)
    store = StateStore(StampedArena)
    stamps: list[float] = []  # each version's stamp, on this machine's monotonic clock
    store.on_change("sent_at", lambda change: stamps.append(
        time.monotonic() - (time.time() - change.value / 1000)))
    await observer.connect()
    await SyncedRoom.join(observer, ROOM, store, options={
        "entities": plan.entities, "movers": plan.movers, "tick_rate": RATE, "stamp": True})
    window: list[float] = []

    async def ready() -> None:  # the worker's load starts as this returns
        start = time.monotonic() + WARMUP
        window[:] = [start, start + DURATION]
        # Nothing passes from 0.1 s before the window's end to 0.1 s after it: the client
        # then finds a gap and resyncs to a version stamped after the end.
        proxy.add_outage(Outage(start=proxy.elapsed() + WARMUP + DURATION - 0.1, duration=0.2))

    try:
        result = BenchResult.merge([await run_worker(plan, ready=ready)], scenario="state",
                                   clients=1, rate=plan.rate, duration_s=plan.duration)
    finally:
        await observer.close()
    assert store.stats.gaps == 0  # the observer saw every version
    stamped = sum(window[0] <= stamp < window[1] for stamp in stamps)
    assert result.errors[LOST] >= 0.1 * RATE - 1  # at least the versions of the dark 0.1 s
    # Each version stamped in the window was applied or lost, within one: the estimate
    # of the window's last version assumes ticks on schedule, and one late tick moves it.
    assert result.expected == pytest.approx(stamped, abs=1)


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


def _timeline(*, tick_rate: float) -> tuple[Context, StateTotals, dict[int, bytes],
                                            dict[int, bytes]]:
    """A room's messages, synchronously: version v is stamped v - 13 s ago, and the window
    is [-10.5 s, -6.5 s) of this clock, so versions 3 to 6 are stamped in it. Returns the
    context, one worker's totals (the room ticking at ``tick_rate``), each version's delta
    (version 1: its full state) and each version's full state."""
    recorder = Recorder()
    now = time.monotonic()
    recorder.open_window(now - 10.5, now - 6.5)
    ctx = Context(plan=_plan("ws://127.0.0.1:1/ws", clients=3), recorder=recorder,
                  ramp_start=now)
    totals = StateTotals(room=ROOM, entities=0, movers=0, tick_rate=tick_rate)
    state = StampedArena()
    encoder = Encoder(state)
    deltas, fulls = {}, {}
    for version in range(1, 10):
        state.sent_at = (time.time() - 13 + version) * 1000
        deltas[version] = encoder.full() if version == 1 else encoder.delta()
        fulls[version] = encoder.full()
    return ctx, totals, deltas, fulls


def _clients(ctx: Context, totals: StateTotals, count: int) -> list[SyncClient]:
    return [SyncClient(ctx, totals, Client("ws://127.0.0.1:1"), binary=True)
            for _ in range(count)]


def _apply(client: SyncClient, messages: dict[int, bytes], versions: range) -> None:
    for version in versions:
        client.store.apply(messages[version])


async def test_a_client_that_jumps_over_the_end_and_closes_first_waits_for_the_end() -> None:
    # The room ticks at 50/s by the totals, not once a second as stamped: an estimate of
    # the end from the rate would put it at 7, the version before the first after the end.
    ctx, totals, deltas, fulls = _timeline(tick_rate=RATE)
    follows, lags, jumps = _clients(ctx, totals, 3)
    _apply(follows, deltas, range(1, 6))
    _apply(lags, deltas, range(1, 5))
    _apply(jumps, deltas, range(1, 4))
    jumps.store.apply(fulls[8])  # a resync over versions 4 to 7, past the end first
    assert jumps.after_window.is_set()
    assert not totals.window.settled.is_set()  # the end is 5, 6 or 7: not known yet
    closing = asyncio.create_task(StateSync().close(ctx, jumps))
    # Runs once the close is waiting (callbacks run in order): version 7 after 6 pins it.
    asyncio.get_running_loop().call_soon(_apply, follows, deltas, range(6, 8))
    await closing
    assert totals.window.settled.is_set()
    assert totals.window.version(RATE) == 6
    assert (follows.unapplied(), lags.unapplied(), jumps.unapplied()) == (0, 2, 3)
    # follows applied 3-6, lags 3-4, jumps 3 of the window's 4; jumps' 4-6 were counted
    # by its close, and lags' 5-6 are counted by its own.
    assert (ctx.recorder.count, ctx.recorder.expected) == (4 + 2 + 1, 4 + 2 + 1 + 3)


def test_a_lone_client_that_jumps_over_the_end_estimates_it_at_the_rooms_rate() -> None:
    for tick_rate, end in ((1.0, 6), (RATE, 7)):
        ctx, totals, deltas, fulls = _timeline(tick_rate=tick_rate)
        gone, jumps = _clients(ctx, totals, 2)
        gone.totals.window.passed(None)  # as StateSync.open does when it could not join
        _apply(jumps, deltas, range(1, 4))
        assert not totals.window.settled.is_set()
        jumps.store.apply(fulls[8])
        assert totals.window.settled.is_set()  # no client can tell more
        # Version 3 was stamped 3.5 s before the end: at one tick a second, 3 more came in
        # the window; at 50 a second, more than the 4 before version 8, the first after it.
        assert totals.window.version(tick_rate) == end
        assert jumps.unapplied() == end - 3
