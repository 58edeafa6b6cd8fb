"""The reconnect storm against a real gateway on loopback: what it counts is what happened.

Six clients in two rooms of three: each room's first member publishes
numbered messages, the other two lose their links at every storm (1 a
second). The window holds two storms: 2 x 4 recoveries. Each subscriber is
away at least the SDK's first backoff (50 ms at the least), so with messages
published every 20 ms (10 ms for the reset) each recovery has some to replay.
"""

from __future__ import annotations

from typing import Any

from rtctl.bench.plan import Plan, TokenPlan
from rtctl.bench.results import BenchResult
from rtctl.bench.runner import run_worker
from rtctl.config import Recovery
from rtctl.gateway.server import Gateway
from tests.conftest import SECRET, GatewayFactory

STORMS = 2  # in the window: at 1.0 s and 2.0 s after the start
SUBSCRIBERS = 4
WINDOW = {"warmup": 0.5, "duration": 2.0}  # the storm at 0 s falls in the warm-up


async def _storm(gateway: Gateway, **plan: Any) -> BenchResult:
    the_plan = Plan(scenario="reconnect-storm", url=gateway.url, clients=6, room_size=3,
                    rate=1.0, tokens=TokenPlan(secret=SECRET), **WINDOW, **plan)
    part = await run_worker(the_plan)
    return BenchResult.merge([part], scenario=the_plan.scenario, clients=the_plan.clients,
                             rate=the_plan.rate, duration_s=the_plan.duration)


async def test_every_storm_is_recovered_with_nothing_lost_or_twice(gateway: Gateway) -> None:
    result = await _storm(gateway, publish_rate=50.0)
    recovery = result.recovery
    assert recovery is not None
    assert not result.errors
    assert result.expected == result.messages == STORMS * SUBSCRIBERS
    assert (recovery.rooms, recovery.members) == (2, 6)
    assert (recovery.attempts, recovery.recovered, recovery.success_rate) == (
        STORMS * SUBSCRIBERS, STORMS * SUBSCRIBERS, 1.0)
    assert (recovery.resumed, recovery.not_resumed, recovery.overlapped) == (
        STORMS * SUBSCRIBERS, {}, 0)
    assert recovery.replayed.count == STORMS * SUBSCRIBERS
    assert recovery.replayed.min > 0  # every recovery had messages to replay
    messages = recovery.messages
    # Each subscriber is handed every message of the window once, in order.
    assert messages.expected == recovery.published * 2 > 0  # two subscribers a room
    assert (messages.delivered, messages.lost, messages.duplicated, messages.reordered,
            messages.skipped, messages.late) == (messages.expected, 0, 0, 0, 0, 0)
    assert recovery.unacked == 0
    latency = result.latency_ms()
    assert latency["p50"] is not None
    assert latency["p50"] >= 50  # the first backoff, at least


async def test_a_reset_is_counted_as_a_reset_and_its_gap_as_skipped(
        start_gateway: GatewayFactory) -> None:
    gateway = await start_gateway(recovery=Recovery(history_size=1))  # one message kept
    result = await _storm(gateway, publish_rate=100.0)
    recovery = result.recovery
    assert recovery is not None
    resets = sum(recovery.resets.values())
    assert (recovery.recovered, resets, recovery.success_rate) == (
        0, STORMS * SUBSCRIBERS, 0.0)
    assert set(recovery.resets) <= {"too_old", "too_many"}
    assert result.errors == {f"reset {reason}": n for reason, n in recovery.resets.items()}
    assert result.messages == 0
    messages = recovery.messages
    assert messages.skipped > 0  # what the resets lost: the clients were told
    assert (messages.lost, messages.duplicated, messages.late) == (0, 0, 0)
    assert messages.delivered == messages.expected
