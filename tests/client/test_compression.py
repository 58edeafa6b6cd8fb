"""``Client(..., compression=True)`` offers permessage-deflate (RFC 7692); off by default."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request

from rtctl.client import Client
from rtctl.client.transport import opener
from rtctl.client.websockets_link import WebsocketsLink
from rtctl.config import Routing
from rtctl.exceptions import ConfigError
from rtctl.protocol.upgrade import SUBPROTOCOL
from tests.conftest import TIMING, GatewayFactory, make_token

BIG = [{"id": f"e{i}", "x": i * 1.5, "y": i * 2.25, "hp": 100} for i in range(60)]


@pytest.fixture
async def offers() -> AsyncIterator[tuple[str, list[str | None]]]:
    """A bare server's URL, and the ``Sec-WebSocket-Extensions`` each upgrade offered."""
    seen: list[str | None] = []

    def note(_ws: ServerConnection, request: Request) -> None:
        seen.append(request.headers.get("Sec-WebSocket-Extensions"))

    async def idle(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async with serve(idle, "127.0.0.1", 0, process_request=note, compression=None) as server:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}", seen


@pytest.mark.parametrize("compression", [False, True])
async def test_the_offer_follows_the_option(offers: tuple[str, list[str | None]],
                                            compression: bool) -> None:
    url, seen = offers
    link = await opener("websockets", compression=compression)(url, None, 5 * TIMING, None,
                                                                  (SUBPROTOCOL,))
    await link.close()
    (offered,) = seen
    assert (offered is not None and offered.startswith("permessage-deflate")) is compression


def test_picows_cannot_offer_it() -> None:
    with pytest.raises(ConfigError, match="permessage-deflate needs the websockets transport"):
        Client("ws://127.0.0.1:1", transport="picows", compression=True)


async def test_a_compressing_gateway_delivers_unchanged(start_gateway: GatewayFactory) -> None:
    gateway = await start_gateway(routing=Routing(compression=True))
    async with Client(gateway.url, token=make_token(), ping_interval=None,
                      compression=True) as client:
        link = client._link
        assert isinstance(link, WebsocketsLink)
        assert link._ws.response is not None
        agreed = link._ws.response.headers.get("Sec-WebSocket-Extensions", "")
        # Agreed, not just offered: else the echo below proves nothing about deflate.
        assert agreed.startswith("permessage-deflate")
        assert await client.call("sys.echo", BIG) == BIG
