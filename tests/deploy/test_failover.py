"""The failover drill (rtctl.bench.failover) on a real cluster: 300 players lose nothing.

300 SDK clients in 30 rooms of 10 connect through HAProxy to three gateways; one
member of each room publishes numbered messages as requests. Mid-stream: a gateway
is SIGKILLed, or SIGTERMed (drain), or NATS blips, or Redis restarts empty. Every member must then
have every acknowledged message exactly once, in order by number and by offset, and
each affected player must have recovered (or, after Redis lost the history, been told
so with ``epoch_changed``), within the drill's bound: no hang.
"""

from __future__ import annotations

from rtctl.bench.cluster import Cluster
from rtctl.bench.failover import Drill, DrillResult, Fault, run_drill
from rtctl.bench.recovery_counts import MessageCounts
from tests.conftest import TIMING
from tests.deploy.conftest import DRAIN, HEALTH_BUDGET

CLIENTS, ROOM_SIZE = 300, 10
MEMBERS = CLIENTS - CLIENTS // ROOM_SIZE  # everyone but each room's publisher


async def drill(deployed: Cluster, fault: Fault) -> DrillResult:
    return await run_drill(deployed, Drill(fault=fault, clients=CLIENTS, room_size=ROOM_SIZE,
                                           timeout=20 * TIMING))


def assert_delivered_exactly_once(result: DrillResult) -> None:
    assert result.timed_out is None, result.summary()
    expected = result.messages.expected
    assert expected > 0  # messages did flow
    assert result.messages == MessageCounts(expected=expected, delivered=expected), \
        result.summary()  # none lost, duplicated, reordered, skipped by a reset or late
    assert result.unacked == 0, result.summary()
    assert result.resent == 0, result.summary()  # the gateway sent no offset twice


def assert_taken_out_and_every_player_resumed_and_recovered(result: DrillResult) -> None:
    assert result.taken_out is not None
    assert result.taken_out < HEALTH_BUDGET * TIMING  # HAProxy sends it nobody new
    assert result.dropped == result.on_victim > 0, result.summary()
    assert result.publishers_dropped > 0  # some acknowledgements were lost on the way
    assert result.resumed == result.recovered == result.dropped, result.summary()
    assert not result.resets, result.summary()
    assert result.replayed > 0  # they missed messages, and got them


async def test_sigkill_loses_nothing(deployed: Cluster) -> None:
    result = await drill(deployed, Fault.KILL)
    assert_delivered_exactly_once(result)
    assert_taken_out_and_every_player_resumed_and_recovered(result)


async def test_sigterm_drains_then_loses_nothing(deployed: Cluster) -> None:
    result = await drill(deployed, Fault.DRAIN)
    assert_delivered_exactly_once(result)
    assert_taken_out_and_every_player_resumed_and_recovered(result)
    assert result.recovery.min >= DRAIN * 1e9  # kept until the gateway's own 1001


async def test_a_nats_blip_loses_nothing(deployed: Cluster) -> None:
    result = await drill(deployed, Fault.NATS)
    assert_delivered_exactly_once(result)  # what missed the bus came from history
    assert result.dropped == 0
    assert not result.resets
    assert result.refused > 0, result.summary()  # the blip did refuse publishes


async def test_a_redis_restart_resets_every_room_cleanly(deployed: Cluster) -> None:
    result = await drill(deployed, Fault.REDIS)
    assert_delivered_exactly_once(result)
    assert result.dropped == 0  # nobody's connection depends on Redis
    assert result.resets == {"epoch_changed": MEMBERS}, result.summary()
    assert result.recovered == 0
