"""Bare ``websockets`` echo server: the baseline the rtctl gateway is measured against.

It does nothing but ``async for msg in ws: await ws.send(msg)``, with the same
``websockets`` settings the gateway uses (no permessage-deflate, 64 KiB maximum
message size), so any gap between the two is the cost of the gateway's own work:
authentication, JSON-RPC decoding, dispatch and encoding.

Run ``python benchmarks/bare_echo.py --host 127.0.0.1 --port 0``. Once bound it
prints exactly one line, ``listening on ws://HOST:PORT/ws``, on stdout; any request
path is accepted. It serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Awaitable, Callable

from websockets.asyncio.server import ServerConnection, serve

MAX_SIZE = 64 * 1024
Handler = Callable[[ServerConnection], Awaitable[None]]


async def echo(ws: ServerConnection) -> None:
    """Send every message back unchanged, as the same type (text or binary)."""
    async for message in ws:
        await ws.send(message)


async def main(host: str, port: int, handler: Handler = echo) -> None:
    """Serve ``handler`` (the echo) on ``host:port`` until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with serve(handler, host, port, compression=None, max_size=MAX_SIZE) as server:
        bound_host, bound_port = server.sockets[0].getsockname()[:2]
        if ":" in bound_host:  # IPv6 literal
            bound_host = f"[{bound_host}]"
        print(f"listening on ws://{bound_host}:{bound_port}/ws", flush=True)
        await stop.wait()


def cli() -> None:
    """Parse the command line and run the server."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="port to bind, 0 picks a free one")
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))


if __name__ == "__main__":
    cli()
