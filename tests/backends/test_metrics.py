"""``rtctl_backend_*``: every call timed by operation, failures counted, a return after an
outage counted as a reconnect; against real Redis and NATS servers killed mid-test."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterator

import pytest

from rtctl.backends import BackendUnavailable, connect_backends, memory_backends
from rtctl.backends.base import Backends, Health
from rtctl.backends.metrics import backend_families
from rtctl.backends.nats import NATS_OPERATIONS, NatsBus
from rtctl.backends.redis import REDIS_OPERATIONS
from tests.backends.conftest import Scrape, redis_of
from tests.backends.test_contract import eventually, record
from tests.conftest import TIMING
from tests.servers import ServerProcess

DURATION = "rtctl_backend_operation_duration_seconds_count"
ERRORS = "rtctl_backend_errors_total"


def scrape(*connections: Health) -> Scrape:
    return Scrape(functools.partial(backend_families, connections))


@pytest.fixture
def own_redis() -> Iterator[ServerProcess]:
    server = ServerProcess("redis-server").start()
    yield server
    server.stop()


@pytest.fixture
def own_nats() -> Iterator[ServerProcess]:
    server = ServerProcess("nats-server").start()
    yield server
    server.stop()


async def recovery(connection: Health, server: ServerProcess) -> None:
    """Start ``server`` again and wait until ``connection`` says it is back."""
    back = asyncio.Event()
    connection.on_recovered(back.set)
    server.start()
    await asyncio.wait_for(back.wait(), 10 * TIMING)


def test_a_memory_only_node_has_no_backend_families() -> None:
    assert list(backend_families(memory_backends(node_id="n1").connections)) == []


async def test_redis_calls_are_timed_failures_counted_and_a_return_is_a_reconnect(
    own_redis: ServerProcess,
) -> None:
    backends = connect_backends(redis_url=own_redis.url, node_id="n1")
    redis = redis_of(backends)
    metrics = scrape(redis)
    assert metrics.families() == {  # from the start, every operation at zero
        "rtctl_backend_up", "rtctl_backend_operation_duration_seconds",
        "rtctl_backend_errors", "rtctl_backend_reconnects"}
    assert metrics.value("rtctl_backend_up", backend="redis") == 0  # not started
    assert metrics.label_values(ERRORS, "operation") == set(REDIS_OPERATIONS)
    assert {metrics.value(ERRORS, backend="redis", operation=op)
            for op in REDIS_OPERATIONS} == {0}
    await backends.start()
    try:
        assert metrics.value("rtctl_backend_up", backend="redis") == 1
        # A first connect is not a reconnect.
        assert metrics.value("rtctl_backend_reconnects_total", backend="redis") == 0
        await backends.sessions.put([record("a1")], ttl=30)
        await backends.rooms.join("lobby", "a1", "alice")
        await backends.history.append("lobby", {"data": 1})
        for op in ("session.put", "rooms.join", "history.append"):
            assert metrics.value(DURATION, backend="redis", operation=op) == 1
        assert metrics.value(DURATION, backend="redis", operation="session.get") == 0
        seconds = metrics.value("rtctl_backend_operation_duration_seconds_sum",
                                backend="redis", operation="session.put")
        assert seconds is not None
        assert 0 < seconds < 1 * TIMING

        own_redis.stop()
        with pytest.raises(BackendUnavailable):
            await backends.sessions.get("a1")
        assert metrics.value(ERRORS, backend="redis", operation="session.get") == 1
        assert metrics.value(DURATION, backend="redis", operation="session.get") == 1
        assert metrics.value(ERRORS, backend="redis", operation="session.put") == 0
        assert metrics.value("rtctl_backend_up", backend="redis") == 0

        await recovery(redis, own_redis)
        assert metrics.value("rtctl_backend_reconnects_total", backend="redis") == 1
        assert metrics.value("rtctl_backend_up", backend="redis") == 1
    finally:
        await backends.close()


async def test_nats_publish_and_subscribe_are_timed_and_a_reconnect_counted(
    own_nats: ServerProcess,
) -> None:
    bus = NatsBus(own_nats.url)
    metrics = scrape(bus)
    assert metrics.label_values(ERRORS, "operation") == set(NATS_OPERATIONS)
    await bus.start()
    try:
        got: asyncio.Queue[dict[str, object]] = asyncio.Queue()
        await bus.subscribe("t.metrics", got.put_nowait)
        await bus.publish("t.metrics", {"n": 1})
        assert await asyncio.wait_for(got.get(), 5 * TIMING) == {"n": 1}
        for op in NATS_OPERATIONS:
            assert metrics.value(DURATION, backend="nats", operation=op) == 1
            assert metrics.value(ERRORS, backend="nats", operation=op) == 0

        own_nats.stop()

        async def down() -> bool:
            return bus.failure() is not None

        await eventually(down)
        assert metrics.value("rtctl_backend_up", backend="nats") == 0
        with pytest.raises(BackendUnavailable):
            await bus.publish("t.metrics", {"n": 2})
        assert metrics.value(ERRORS, backend="nats", operation="publish") == 1
        assert metrics.value(DURATION, backend="nats", operation="publish") == 2

        await recovery(bus, own_nats)
        assert metrics.value("rtctl_backend_reconnects_total", backend="nats") == 1
        assert metrics.value("rtctl_backend_up", backend="nats") == 1
    finally:
        await bus.close()


def test_every_configured_connection_is_exposed_under_its_own_name() -> None:
    backends: Backends = connect_backends(redis_url="redis://127.0.0.1:1",
                                          nats_url="nats://127.0.0.1:1", node_id="n1")
    metrics = scrape(*backends.connections)
    assert metrics.label_values("rtctl_backend_up", "backend") == {"redis", "nats"}
    assert metrics.label_values(ERRORS, "backend") == {"redis", "nats"}
