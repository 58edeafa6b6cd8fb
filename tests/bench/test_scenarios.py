"""Every scenario against a real gateway on loopback: counts add up, nothing is lost."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from rtctl.bench.plan import Plan, TokenPlan
from rtctl.bench.results import LOST, BenchResult
from rtctl.bench.runner import run_worker
from rtctl.bench.scenarios import scenario_for
from rtctl.exceptions import ConfigError
from rtctl.gateway.server import Gateway
from tests.conftest import SECRET, GatewayFactory, make_token
from tests.simulator.test_proxy import ProxyFactory, start_proxy  # noqa: F401  (fixture)

DURATION = 0.6
WARMUP = 0.11  # the window's edges fall between scheduled sends: no ties to break


async def _run(gateway: Gateway, scenario: str, url: str | None = None,
               **plan: Any) -> BenchResult:
    plan.setdefault("tokens", TokenPlan(secret=SECRET))
    the_plan = Plan(scenario=scenario, url=url or gateway.url, duration=DURATION, warmup=WARMUP,
                    **plan)
    part = await run_worker(the_plan)
    return BenchResult.merge([part], scenario=scenario, clients=the_plan.clients,
                             rate=the_plan.rate, duration_s=the_plan.duration)


@pytest.mark.parametrize("scenario", ["echo", "fanout", "rooms", "presence-churn"])
async def test_closed_loop_runs_clean(gateway: Gateway, scenario: str) -> None:
    result = await _run(gateway, scenario, clients=6, room_size=3)
    assert result.messages > 0
    assert not result.errors
    assert result.expected == result.messages


async def test_fanout_delivers_every_publish_to_every_subscriber(gateway: Gateway) -> None:
    result = await _run(gateway, "fanout", clients=8, rate=50)
    assert not result.errors
    assert result.messages == round(50 * DURATION) * 7  # 7 subscribers, 50 publishes/s


async def test_fanout_over_a_slow_link_waits_for_what_is_in_flight(
        gateway: Gateway, start_proxy: ProxyFactory) -> None:  # noqa: F811
    # Each delivery takes 2 × 250 ms and they come 250 ms apart, both longer than the
    # quiet time: the last ones must be awaited, not counted lost.
    proxy = await start_proxy(gateway.url.removesuffix("/ws"), latency="250ms")
    result = await _run(gateway, "fanout", url=f"{proxy.url}/ws", clients=3, rate=4)
    assert not result.errors
    assert result.messages == round(4 * DURATION) * 2


async def test_rooms_count_deliveries_per_room(gateway: Gateway) -> None:
    result = await _run(gateway, "rooms", clients=7, room_size=3, rate=70)  # rooms 3, 3, 1
    assert not result.errors
    # Each client publishes 10/s; members of a room of 3 reach 2 others, the lone one none.
    assert result.messages == round(10 * DURATION) * (6 * 2)


async def test_refused_connections_are_errors_by_class(start_gateway: GatewayFactory) -> None:
    gateway = await start_gateway()
    plan = Plan(scenario="presence-churn", url=gateway.url, clients=2, duration=0.3,
                warmup=0, tokens=TokenPlan(token="not-a-jwt"))
    result = BenchResult.merge([await run_worker(plan)], scenario=plan.scenario,
                               clients=2, rate=None, duration_s=0.3)
    assert result.messages == 0
    assert set(result.errors) == {"http 401"}
    assert LOST not in result.errors


async def test_one_token_is_one_user_a_secret_mints_one_each(gateway: Gateway) -> None:
    # The gateway's per-user limit is 8: with one token, the 9th and 10th are refused.
    shared = await _run(gateway, "echo", clients=10, tokens=TokenPlan(token=make_token("al")))
    assert (shared.connects, shared.errors["http 429"]) == (10, 2)
    assert shared.messages > 0
    minted = await _run(gateway, "echo", clients=10)
    assert (minted.connects, minted.errors) == (10, Counter())


@pytest.mark.parametrize(("fields", "message"), [
    ({"scenario": "nope"}, "unknown scenario"),
    ({"clients": 0}, "at least 1"),
    ({"workers": 3, "clients": 2}, "workers for 2 clients"),
    ({"rate": 0.0}, "--rate"),
    ({"scenario": "fanout", "clients": 1}, "fanout needs 2"),
    ({"scenario": "state"}, "ticks --rate times a second"),  # --closed, or no default
    ({"scenario": "state", "rate": 20.5}, "a whole number from 1 to 120"),
    ({"scenario": "state", "rate": 121.0}, "a whole number from 1 to 120"),
    ({"scenario": "state", "rate": 20.0, "entities": 10_001}, "--entities must be from 0"),
    ({"scenario": "state", "rate": 20.0, "movers": -1}, "--movers must be from 0"),
    ({"scenario": "state", "rate": 20.0, "encoding": "xml"}, "--encoding must be one of"),
    ({"scenario": "reconnect-storm", "clients": 1}, "reconnect-storm needs 2"),
    ({"scenario": "reconnect-storm", "room_size": 1}, "a publisher and a subscriber"),
    ({"scenario": "reconnect-storm", "publish_rate": 0.0}, "publish rate must be above 0"),
    ({"scenario": "reconnect-storm", "publish_rate": 5000.0}, "at most 1000"),
])
def test_bad_plans_are_refused(fields: dict[str, Any], message: str) -> None:
    plan: dict[str, Any] = {"scenario": "echo", "url": "ws://127.0.0.1:1/ws", "clients": 2}
    with pytest.raises(ConfigError, match=message):
        scenario_for(Plan(**(plan | fields)))
