"""Redis and NATS going away and coming back, with real servers stopped and restarted.

Clients keep their connections; calls that need the missing backend fail fast
with -32050; ``/readyz`` says which backend is failing; afterwards the bus
reconnects and presence is resynchronised (the restarted Redis is empty).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from rtctl.backends import BackendUnavailable, connect_backends
from rtctl.gateway.server import Gateway
from rtctl.protocol import jsonrpc
from tests.conftest import TIMING, GatewayFactory
from tests.gateway.test_server import aget
from tests.servers import ServerProcess, free_port


@pytest.fixture
def own_servers() -> Iterator[tuple[ServerProcess, ServerProcess]]:
    redis, nats = ServerProcess("redis-server").start(), ServerProcess("nats-server").start()
    yield redis, nats
    redis.stop()
    nats.stop()


async def readiness(gateway: Gateway, want: int) -> dict[str, Any]:
    """Poll ``/readyz`` until it answers ``want`` (the monitor's next probe)."""
    deadline = time.monotonic() + 10 * TIMING
    while True:
        status, body = await aget(gateway, "/readyz")
        if status == want:
            return dict(jsonrpc.loads(body))
        assert time.monotonic() < deadline, (status, body)
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("flag", ["redis_url", "nats_url"])
async def test_a_backend_down_at_start_fails_fast(flag: str, redis_server: ServerProcess
                                                 ) -> None:
    scheme = "redis" if flag == "redis_url" else "nats"
    # NATS needs Redis: a live one beside it, so the failure is the one under test
    urls = {"redis_url": redis_server.url, flag: f"{scheme}://127.0.0.1:{free_port()}"}
    backends = connect_backends(**urls)
    started = time.monotonic()
    with pytest.raises(BackendUnavailable) as info:
        await backends.start()
    assert info.value.backend == scheme
    assert time.monotonic() - started < 3 * TIMING


async def test_redis_and_nats_outages_fail_fast_and_recover(
    own_servers: tuple[ServerProcess, ServerProcess], start_gateway: GatewayFactory,
    connect_player: Any,
) -> None:
    redis, nats = own_servers
    gateway = await start_gateway(backends=connect_backends(
        redis_url=redis.url, nats_url=nats.url, node_id="n1", node_ttl=2.0))
    async with connect_player(gateway, "alice") as alice, \
            connect_player(gateway, "bob") as bob:
        await alice.result("room.join", {"room": "lobby"})
        await bob.result("room.join", {"room": "lobby"})
        await alice.note("room.joined")
        await alice.result("presence.subscribe", {"users": ["bob"]})

        redis.stop()
        started = time.monotonic()
        error = (await bob.call("presence.get", {"users": ["alice"]}))["error"]
        assert (error["code"], error["data"]) == (-32050, {"backend": "redis"})
        assert time.monotonic() - started < 3 * TIMING  # fails fast, never hangs
        assert (await readiness(gateway, 503))["failing"].keys() == {"redis"}
        error = (await bob.call("presence.set", {"status": "busy"}))["error"]
        assert error["code"] == -32050
        assert await bob.result("sys.echo", [1]) == [1]  # the connection is still fine

        redis.start()  # empty: the node must put its sessions and presence back
        assert (await readiness(gateway, 200))["status"] == "ready"
        # The resync puts sessions, presence and room memberships back one after another:
        # wait for the last of them before asserting on any.
        deadline = time.monotonic() + 10 * TIMING
        while (await bob.result("presence.get", {"users": ["alice"]}))["alice"][
                "status"] != "online" or (
                await bob.result("room.members", {"room": "lobby"}))["total"] != 2:
            assert time.monotonic() < deadline, "presence and rooms were not resynchronised"
            await asyncio.sleep(0.05)
        rejoined = await alice.result("room.join", {"room": "lobby"})
        assert (rejoined["members"], rejoined["total"]) == (["alice", "bob"], 2)

        nats.stop()
        assert (await readiness(gateway, 503))["failing"].keys() == {"nats"}
        error = (await bob.call("room.publish", {"room": "lobby", "data": 1}))["error"]
        assert (error["code"], error["data"]) == (-32050, {"backend": "nats"})
        nats.start()
        await readiness(gateway, 200)
        await bob.result("room.publish", {"room": "lobby", "data": 2})
        message = await alice.note("room.message")  # the restarted Redis's new stream
        assert (message["data"], message["offset"]) == (2, 1)
        assert message["epoch"] != rejoined["epoch"]
        await bob.result("presence.set", {"status": "away"})
        assert (await alice.note("presence.changed"))["status"] == "away"
