"""Bare ``websockets`` rooms server: the baseline for ``rtctl bench``'s fan-out and churn.

It answers just the JSON-RPC 2.0 calls the scenarios make, with nothing
around them: ``sys.echo``, ``sys.ping``, ``room.join`` and ``room.publish``
(a notification ``room.message`` to every other member, written with
``websockets.broadcast``). No authentication, sessions, presence, metrics
or bus: the gap to the gateway is what those cost.

Run ``python benchmarks/bare_rooms.py --port 0``; like ``bare_echo.py`` it
prints ``listening on ws://HOST:PORT/ws`` once bound and serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import defaultdict
from typing import Any

from bare_echo import main
from websockets.asyncio.server import ServerConnection, broadcast

ROOMS: defaultdict[str, set[ServerConnection]] = defaultdict(set)


def _answer(ws: ServerConnection, request: dict[str, Any]) -> Any:
    method, params = request.get("method"), request.get("params")
    if method == "sys.echo":
        return params
    if method == "sys.ping":
        return {"time": time.time() * 1e3}
    if method == "room.join":
        ROOMS[params["room"]].add(ws)
        return {"members": len(ROOMS[params["room"]])}
    if method == "room.publish":
        message = json.dumps({"jsonrpc": "2.0", "method": "room.message",
                              "params": {"room": params["room"], "data": params.get("data")}})
        broadcast([m for m in ROOMS[params["room"]] if m is not ws], message)
        return None
    raise KeyError(method)


async def rooms(ws: ServerConnection) -> None:
    """Answer each request; a notification (no id) gets no reply."""
    try:
        async for text in ws:
            request = json.loads(text)
            result = _answer(ws, request)
            if "id" in request:
                await ws.send(json.dumps({"jsonrpc": "2.0", "result": result,
                                          "id": request["id"]}))
    finally:
        for members in ROOMS.values():
            members.discard(ws)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="port to bind, 0 picks a free one")
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port, rooms))


if __name__ == "__main__":
    cli()
