"""The gateway's side of the tap: its events for connections, and the ``/tap`` stream.

The events and their JSON are :mod:`rtctl.protocol.tap`; the hub that fans them
out to listeners is :mod:`rtctl.tap`. Here: the :class:`Connected` event of a
gateway connection, and :func:`stream`, which sends a subscription's events to
one admin listener until either side closes.
"""

from __future__ import annotations

import asyncio
import contextlib

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from rtctl.gateway.connection import Connection
from rtctl.protocol import jsonrpc
from rtctl.protocol.tap import Connected
from rtctl.tap import Subscription

__all__ = ["connected_event", "stream"]


def connected_event(conn: Connection, *, local: str | None, path: str,
                    t_us: int | None = None) -> Connected:
    """The :class:`Connected` event of ``conn``, by default stamped when it connected."""
    when = int(conn.connected_at * 1_000_000) if t_us is None else t_us
    return Connected(t_us=when, conn=conn.id, user=conn.user,
                     remote=conn.remote_address, local=local, path=path,
                     subprotocol=conn.subprotocol)


async def _pump(ws: ServerConnection, subscription: Subscription) -> None:
    while True:
        events = await subscription.next_batch()
        await ws.send(b"\n".join(jsonrpc.dumps(e.to_json()) for e in events), text=True)


async def stream(ws: ServerConnection, subscription: Subscription) -> None:
    """Send ``subscription``'s events to a listener until either side closes.

    Each WebSocket text message carries one or more events, one JSON object
    per line. A listener has nothing to say; reading is how its close is seen.
    """
    pump = asyncio.get_running_loop().create_task(_pump(ws, subscription))
    try:
        async for _ in ws:
            pass
    except ConnectionClosed:
        pass
    finally:
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
            await pump
