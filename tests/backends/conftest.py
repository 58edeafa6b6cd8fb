"""Backend bundles for the contract tests: memory, or the real servers of ``tests.servers``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from rtctl.backends import Backends, connect_backends, memory_backends
from tests.servers import ServerProcess, unique_prefix


async def _bundle(request: pytest.FixtureRequest, server: str, flag: str
                  ) -> AsyncIterator[Backends]:
    """Memory, or the named real server for one part of the bundle."""
    if request.param == "memory":
        yield memory_backends(node_id="n1")
        return
    process: ServerProcess = request.getfixturevalue(server)
    backends = connect_backends(**{flag: process.url}, node_id="n1", prefix=unique_prefix())
    await backends.start()
    yield backends
    await backends.close()


@pytest.fixture(params=["memory", "redis"])
async def stores(request: pytest.FixtureRequest) -> AsyncIterator[Backends]:
    """A bundle whose stores are memory or Redis (the bus stays in memory)."""
    async for backends in _bundle(request, "redis_server", "redis_url"):
        yield backends


@pytest.fixture(params=["memory", "nats"])
async def bus_backends(request: pytest.FixtureRequest) -> AsyncIterator[Backends]:
    """A bundle whose bus is in memory or on NATS (the stores stay in memory)."""
    async for backends in _bundle(request, "nats_server", "nats_url"):
        yield backends
