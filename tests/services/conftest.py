"""Two gateway nodes in this process, and a client that keeps notifications apart.

``two_nodes`` runs over the memory backends (one bundle shared under two node
ids) and over a real Redis and NATS, so every service test crosses nodes on both.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from rtctl.backends import connect_backends, memory_backends
from rtctl.config import TRANSPORTS
from rtctl.gateway.server import Gateway
from rtctl.protocol import jsonrpc
from tests.conftest import TIMING, GatewayFactory, client, make_token
from tests.servers import ServerProcess, unique_prefix


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    """Every test here that starts a gateway runs over each transport driver."""
    return str(request.param)


class Player:
    """A WebSocket client: calls by id, notifications queued by method."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = iter(range(1, 1 << 30))
        self.notes: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def call(self, method: str, params: Any = None) -> Any:
        """The reply object (result or error) of one request."""
        request_id = next(self._ids)
        await self.ws.send(jsonrpc.dumps(jsonrpc.encode_request(method, params, request_id)),
                           text=True)
        while True:
            message = jsonrpc.loads(await asyncio.wait_for(self.ws.recv(), 10 * TIMING))
            if message.get("id") == request_id:
                return message
            self.notes.put_nowait(message)

    async def result(self, method: str, params: Any = None) -> Any:
        reply = await self.call(method, params)
        assert "result" in reply, reply
        return reply["result"]

    async def note(self, method: str) -> Any:
        """The params of the next ``method`` notification; others keep their place.

        Notifications from different subjects (presence, a room) may arrive in
        either order; within one method the order is kept.
        """
        for _ in range(self.notes.qsize()):
            message = self.notes.get_nowait()
            if message.get("method") == method:
                for _ in range(self.notes.qsize()):  # keep the rest in order
                    self.notes.put_nowait(self.notes.get_nowait())
                return message["params"]
            self.notes.put_nowait(message)
        while True:
            message = jsonrpc.loads(await asyncio.wait_for(self.ws.recv(), 10 * TIMING))
            if message.get("method") == method:
                return message["params"]
            self.notes.put_nowait(message)

    async def quiet(self) -> None:
        """Nothing else is pending: a round trip returns no notification first."""
        await self.result("sys.ping")
        assert self.notes.empty(), self.notes.get_nowait()


@pytest.fixture
def connect_player() -> Any:
    """``async with connect_player(gateway_or_url, "alice") as alice:`` yields a Player."""

    class _Connect:
        def __init__(self, target: Gateway | str, user: str) -> None:
            self._cm = client(target if isinstance(target, str) else target.url,
                              make_token(user))

        async def __aenter__(self) -> Player:
            player = Player(await self._cm.__aenter__())
            # The upgrade's 101 comes before the gateway's connect hooks have run (session
            # stored, presence online); its first reply comes after them. From here the
            # player is visible on every node, as a test of another player assumes.
            await player.result("sys.ping")
            return player

        async def __aexit__(self, *exc: object) -> None:
            await self._cm.__aexit__(None, None, None)

    return _Connect


@pytest.fixture(params=["memory", "redis+nats"])
async def two_nodes(request: pytest.FixtureRequest,
                    start_gateway: GatewayFactory) -> tuple[Gateway, Gateway]:
    if request.param == "memory":
        shared = memory_backends(node_id="n1")
        bundles = [shared, dataclasses.replace(shared, node_id="n2")]
    else:
        redis: ServerProcess = request.getfixturevalue("redis_server")
        nats: ServerProcess = request.getfixturevalue("nats_server")
        prefix = unique_prefix()
        bundles = [connect_backends(redis_url=redis.url, nats_url=nats.url, node_id=node,
                                    prefix=prefix) for node in ("n1", "n2")]
    return (await start_gateway(backends=bundles[0]), await start_gateway(backends=bundles[1]))
