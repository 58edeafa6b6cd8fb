"""The examples the README points at keep working."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from websockets.asyncio.client import ClientConnection

from rtctl.cli.serve import load_router
from tests.conftest import GatewayFactory, client, make_token, rpc


@asynccontextmanager
async def serving(start_gateway: GatewayFactory, spec: str,
                  user: str = "ann") -> AsyncIterator[ClientConnection]:
    """``rtctl serve --router SPEC``, in process on a free port, and one client of it."""
    gateway = await start_gateway(load_router(spec))
    async with client(gateway.url, make_token(user)) as ws:
        yield ws


async def test_game_rpc_example_serves_as_documented(start_gateway: GatewayFactory) -> None:
    async with serving(start_gateway, "examples.game_rpc:router") as ws:
        assert (await rpc(ws, "subtract", [42, 23]))["result"] == 19
        bought = await rpc(ws, "shop.buy", {"item": "sword", "qty": 2})
        assert bought["result"] == {"user": "ann", "item": "sword", "qty": 2, "basket": 1}
        refused = await rpc(ws, "shop.buy", {"item": "sword", "qty": 20})
        assert refused["error"] == {"code": 4001, "message": "Too many at once",
                                    "data": {"max": 10}}
