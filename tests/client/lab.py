"""The lab the client tests run in: a game router and a real gateway on loopback.

The gateway can be stopped and started again on the same port, so a client
sees it go away and come back; the clients a test makes are closed after it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

from rtctl import CallContext, Router, RpcError
from rtctl.client import Backoff, Client, ClientState
from rtctl.client.transport import TransportName
from rtctl.gateway.server import Gateway
from rtctl.protocol.codes import CloseCode
from tests.conftest import TIMING, gateway_config, make_token

__all__ = ["FAST", "WAIT", "Lab", "record_states"]

WAIT = 5 * TIMING
FAST = Backoff(base=0.01, cap=0.05)


class Lab:
    """A game router, gateways that restart on one port, and the clients to close."""

    def __init__(self, transport: TransportName) -> None:
        self.transport = transport
        self.recorded: list[Any] = []
        self.release = asyncio.Event()
        self.router = self._router()
        self.gateway: Gateway | None = None
        self.port = 0
        self.clients: list[Client] = []

    def _router(self) -> Router:
        router = Router()

        @router.method("game.record", raw_params=True)
        def record(params: Any) -> None:
            self.recorded.append(params)

        @router.method("game.hang")
        async def hang() -> str:
            await self.release.wait()
            return "released"

        @router.method("game.busy")
        def busy() -> None:
            raise RpcError(4999, "matchmaker busy")

        @router.method("game.kick")
        def kick(ctx: CallContext) -> None:
            assert ctx.peer is not None
            ctx.peer.close(CloseCode.KICKED, "kicked by test")

        @router.method("game.expire")
        def expire(ctx: CallContext) -> None:  # what the gateway's expiry timer does
            assert ctx.peer is not None
            ctx.peer.close(CloseCode.TOKEN_EXPIRED, "token expired")

        @router.method("game.stream")
        def stream(ctx: CallContext, seqs: list[int]) -> str:
            assert ctx.peer is not None
            for seq in seqs:
                ctx.peer.notify("game.seq", {"room": "r1", "seq": seq})
            return "streamed"

        return router

    async def start(self, **config: Any) -> Gateway:
        clock = config.pop("clock", time.time)
        cfg = dataclasses.replace(gateway_config(**config), port=self.port)
        self.gateway = Gateway(cfg, router=self.router, clock=clock)
        await self.gateway.start()
        self.port = self.gateway.port
        return self.gateway

    async def stop(self) -> None:
        if self.gateway is not None:
            await self.gateway.shutdown(drain=0)
            self.gateway = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def client(self, **kwargs: Any) -> Client:
        kwargs.setdefault("token", make_token())
        kwargs.setdefault("backoff", FAST)
        kwargs.setdefault("ping_interval", None)
        client = Client(self.url, transport=self.transport, **kwargs)
        self.clients.append(client)
        return client


def record_states(client: Client) -> list[ClientState]:
    seen: list[ClientState] = []
    client.on_state_change(lambda event: seen.append(event.new))
    return seen
