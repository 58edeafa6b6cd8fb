"""Backend bundles for the contract tests: memory, or the real servers of ``tests.servers``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable

import pytest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from rtctl.backends import Backends, connect_backends, memory_backends
from rtctl.backends.redis import RedisConnection
from rtctl.host import MetricsCollector
from tests.servers import ServerProcess, unique_prefix


@contextlib.asynccontextmanager
async def started(**urls: str) -> AsyncIterator[Backends]:
    """A bundle on the real servers given (``connect_backends`` URL arguments), under a
    prefix no other test uses."""
    backends = connect_backends(**urls, node_id="n1", prefix=unique_prefix())
    await backends.start()
    try:
        yield backends
    finally:
        await backends.close()


async def _bundle(request: pytest.FixtureRequest, servers: dict[str, str]
                  ) -> AsyncIterator[Backends]:
    """Memory, or the real servers named (fixture → ``connect_backends`` URL argument)."""
    if request.param == "memory":
        yield memory_backends(node_id="n1")
        return
    urls = {flag: request.getfixturevalue(server).url for server, flag in servers.items()}
    async with started(**urls) as backends:
        yield backends


@pytest.fixture(params=["memory", "redis"])
async def stores(request: pytest.FixtureRequest) -> AsyncIterator[Backends]:
    """A bundle whose stores are memory or Redis (the bus stays in memory)."""
    async for backends in _bundle(request, {"redis_server": "redis_url"}):
        yield backends


@pytest.fixture(params=["memory", "nats"])
async def bus_backends(request: pytest.FixtureRequest) -> AsyncIterator[Backends]:
    """A bundle whose bus is in memory or on NATS (NATS comes with Redis, as it must)."""
    async for backends in _bundle(request, {"redis_server": "redis_url",
                                            "nats_server": "nats_url"}):
        yield backends


@pytest.fixture
async def redis_stores(redis_server: ServerProcess) -> AsyncIterator[Backends]:
    """A bundle on the shared Redis alone, for what only Redis can suffer (keys lost)."""
    async with started(redis_url=redis_server.url) as backends:
        yield backends


def redis_of(backends: Backends) -> RedisConnection:
    (redis,) = (c for c in backends.connections if isinstance(c, RedisConnection))
    return redis


async def lose_keys(backends: Backends, pattern: str = "*") -> int:
    """Delete the bundle's keys matching ``pattern`` (after its prefix), as a flushed or
    restarted Redis loses them; how many there were."""
    redis = redis_of(backends)
    keys = [key async for key in redis.client.scan_iter(match=f"{redis.prefix}{pattern}")]
    if keys:
        await redis.client.delete(*keys)
    return len(keys)


@pytest.fixture
async def lost_redis() -> AsyncIterator[Backends]:
    """Backends on a Redis of their own, stopped once they have used it."""
    server = ServerProcess("redis-server").start()
    backends = connect_backends(redis_url=server.url, node_id="n1")
    await backends.start()
    try:
        assert await backends.snapshots.own("arena", "n1", ttl=30) == "n1"
        server.stop()
        yield backends
    finally:
        await backends.close()
        server.stop()


class Scrape(Collector):
    """What ``/metrics`` would show of a collector (``Host.add_metrics``'s), read through
    prometheus_client's own registry, as the gateway serves it."""

    def __init__(self, *collectors: MetricsCollector) -> None:
        self._collectors = collectors
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(self)

    def collect(self) -> Iterable[Metric]:
        for collector in self._collectors:
            yield from collector()

    def value(self, name: str, **labels: str) -> float | None:
        """The sample ``name`` (as exposed: ``_total`` on counters) with exactly ``labels``
        now; None if there is none."""
        return self._registry.get_sample_value(name, labels)

    def label_values(self, name: str, label: str) -> set[str]:
        """Every value of ``label`` among the samples named ``name``."""
        return {sample.labels[label] for family in self.collect() for sample in family.samples
                if sample.name == name}

    def families(self) -> set[str]:
        """The family names exposed now (prometheus_client strips ``_total``)."""
        return {family.name for family in self.collect()}
