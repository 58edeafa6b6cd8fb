"""The services' families in ``/metrics``: gauges read from what the services hold, counters
of heartbeats and cleanups; on a fake host and clock, exactly. (Recoveries are counted in
``test_room_recovery``, beside the joins that make them.)"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rtctl.backends import BackendUnavailable, connect_backends, memory_backends
from rtctl.backends.base import SessionRecord
from rtctl.backends.memory import MemorySessionStore
from rtctl.protocol.codes import CloseCode
from rtctl.services.presence import PresenceService
from rtctl.services.room_metrics import RECOVERY_RESULTS
from rtctl.services.rooms import RoomService
from rtctl.services.sessions import HEARTBEAT_RESULTS, SessionService
from tests.conftest import GatewayFactory
from tests.gateway.test_server import aget
from tests.servers import ServerProcess, unique_prefix
from tests.services.fakes import FakeClock, FakeHost, FakePeer, ManualTimer

BEATS = "rtctl_node_heartbeats_total"
AGE = "rtctl_node_heartbeat_age_seconds"


def services(host: FakeHost) -> tuple[SessionService, RoomService]:
    sessions = SessionService(host)
    PresenceService(host, sessions)
    return sessions, RoomService(host, sessions, timer=ManualTimer())


def test_every_family_is_there_from_start_up_with_its_labels_at_zero() -> None:
    host = FakeHost()
    services(host)
    metrics = host.scrape()
    assert metrics.families() == {
        "rtctl_sessions", "rtctl_presence_online_users", "rtctl_rooms", "rtctl_room_members",
        "rtctl_room_recoveries", "rtctl_room_replayed_messages", "rtctl_node_heartbeats",
        "rtctl_node_heartbeat_age_seconds", "rtctl_node_ttl_seconds", "rtctl_node_cleanups",
        "rtctl_node_cleaned_sessions"}
    for name, label, values in (("rtctl_sessions", "state", ("connected", "held")),
                                (BEATS, "result", HEARTBEAT_RESULTS),
                                ("rtctl_room_recoveries_total", "result", RECOVERY_RESULTS)):
        assert metrics.label_values(name, label) == set(values)
        assert {metrics.value(name, **{label: value}) for value in values} == {0}
    assert metrics.value(AGE) is None  # no heartbeat yet
    # Others find the node dead once its heartbeat, renewed every node_ttl / 4, is this old.
    assert metrics.value("rtctl_node_ttl_seconds") == host.backends.node_ttl / 2


async def test_gauges_follow_connections_holds_joins_and_leaves() -> None:
    host = FakeHost()
    host.grace = 30.0  # a dropped connection's session is held
    sessions, rooms = services(host)
    metrics = host.scrape()

    def gauges() -> tuple[float | None, ...]:
        return (metrics.value("rtctl_sessions", state="connected"),
                metrics.value("rtctl_sessions", state="held"),
                metrics.value("rtctl_presence_online_users"),
                metrics.value("rtctl_rooms"), metrics.value("rtctl_room_members"))

    a1, a2, b1 = FakePeer("a1", "alice"), FakePeer("a2", "alice"), FakePeer("b1", "bob")
    try:
        for peer in (a1, a2, b1):
            host.peers[peer.id] = peer
            await sessions._connected(peer)
        assert gauges() == (3, 0, 2, 0, 0)  # alice on two devices is one user online
        for peer, room in ((a1, "lobby"), (b1, "lobby"), (a1, "arena")):
            await rooms.join(peer.context(), room)
        assert gauges() == (3, 0, 2, 2, 3)
        await rooms.leave(a1.context(), "arena")
        assert gauges() == (3, 0, 2, 1, 2)
        del host.peers["a1"]  # its connection drops: held for a resume, out of its rooms here
        await sessions._disconnected(a1, CloseCode.ABNORMAL_CLOSURE, "")
        assert gauges() == (2, 1, 2, 1, 1)
        del host.peers["b1"]  # a normal close: the session ends at once
        await sessions._disconnected(b1, CloseCode.NORMAL, "")
        assert gauges() == (1, 1, 1, 0, 0)
    finally:
        for hook in host.shutdown:
            await hook()


class FlakySessions(MemorySessionStore):
    """Heartbeats fail while ``down``, as an unreachable store's would."""

    down = False

    async def beat(self, node: str, *, ttl: float) -> bool:
        if self.down:
            raise BackendUnavailable("redis", "connection refused")
        return await super().beat(node, ttl=ttl)


async def test_heartbeats_count_ok_lapsed_and_error_and_their_age_follows_the_clock() -> None:
    clock = FakeClock()
    store = FlakySessions(clock=clock)
    host = FakeHost(dataclasses.replace(memory_backends(clock=clock, node_id="n1"),
                                        sessions=store), clock=clock)
    sessions = SessionService(host)
    metrics = host.scrape()

    def beats() -> dict[str, float | None]:
        return {result: metrics.value(BEATS, result=result) for result in HEARTBEAT_RESULTS}

    await sessions.housekeeping()
    assert beats() == {"ok": 1, "lapsed": 0, "error": 0}  # a new node's first finds none
    assert metrics.value(AGE) == 0
    clock.now += 2
    assert metrics.value(AGE) == 2  # read at scrape time
    await sessions.housekeeping()
    assert (beats(), metrics.value(AGE)) == ({"ok": 2, "lapsed": 0, "error": 0}, 0)
    clock.now += 16  # the loop held past the heartbeat's 5 s TTL
    await sessions.housekeeping()
    assert (beats(), metrics.value(AGE)) == ({"ok": 2, "lapsed": 1, "error": 0}, 0)
    store.down = True
    clock.now += 3
    with pytest.raises(BackendUnavailable):
        await sessions.housekeeping()
    assert (beats(), metrics.value(AGE)) == ({"ok": 2, "lapsed": 1, "error": 1}, 3)


async def test_a_cleanup_counts_once_complete_and_every_session_it_ended() -> None:
    clock = FakeClock()
    shared = memory_backends(clock=clock, node_id="n1")
    survivor = FakeHost(dataclasses.replace(shared, node_id="n3"), clock=clock)
    sessions = SessionService(survivor)
    store, ttl = shared.sessions, shared.node_ttl
    failing = {"b"}

    async def ended(session: str, user: str) -> None:
        if session in failing:
            raise BackendUnavailable("redis", "timed out")

    sessions.on_ended(ended)
    metrics = survivor.scrape()

    def counts() -> tuple[float | None, float | None]:
        return (metrics.value("rtctl_node_cleanups_total"),
                metrics.value("rtctl_node_cleaned_sessions_total"))

    def record(session: str, node: str) -> SessionRecord:
        return SessionRecord(id=session, user=f"u-{session}", node=node, created_at=clock(),
                             last_seen=clock())

    async def beat_n2() -> None:
        await store.beat("n2", ttl=ttl / 2)

    await store.beat("n1", ttl=ttl / 2)
    await store.put([record(sid, "n1") for sid in ("a", "b", "moved")], ttl=60)
    await store.put([record("moved", "n2")], ttl=60)  # resumed on n2: not n1's to end
    clock.now += ttl  # n1 died; n2 lives on
    await beat_n2()
    await sessions.housekeeping()
    assert counts() == (0, 1)  # "a" ended; "b" failed, so n1 is kept for a retry
    failing.clear()
    clock.now += ttl  # the claim lapses: n1 is cleaned up again
    await beat_n2()
    await sessions.housekeeping()
    assert counts() == (1, 2)
    await sessions.housekeeping()  # nothing left to clean
    assert counts() == (1, 2)


async def test_a_gateway_on_redis_and_nats_serves_them_with_the_backends_families(
    redis_server: ServerProcess, nats_server: ServerProcess, start_gateway: GatewayFactory,
    connect_player: Any,
) -> None:
    gateway = await start_gateway(backends=connect_backends(
        redis_url=redis_server.url, nats_url=nats_server.url, node_id="n1",
        prefix=unique_prefix()))
    async with connect_player(gateway, "alice") as alice:
        await alice.result("room.join", {"room": "lobby"})
        status, body = await aget(gateway, "/metrics")
    assert status == 200
    samples = {(sample.name, tuple(sorted(sample.labels.values()))): sample.value
               for family in text_string_to_metric_families(body.decode())
               for sample in family.samples}
    assert [samples[name, labels] for name, labels in (
        ("rtctl_sessions", ("connected",)), ("rtctl_presence_online_users", ()),
        ("rtctl_rooms", ()), ("rtctl_room_members", ()),
        ("rtctl_backend_up", ("redis",)), ("rtctl_backend_up", ("nats",)))] == [1] * 6
    assert samples["rtctl_node_heartbeats_total", ("ok",)] >= 1  # at start, before the port
    for backend, operation in (("redis", "session.put"), ("redis", "rooms.join"),
                               ("nats", "publish"), ("nats", "subscribe")):
        assert samples["rtctl_backend_operation_duration_seconds_count",
                       (backend, operation)] >= 1
        assert samples["rtctl_backend_errors_total", (backend, operation)] == 0
