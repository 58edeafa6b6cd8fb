"""Clients in processes of their own, as real ones are: their work never runs on the gateway's loop.

``python -m tests.fuzz.attacker attack URL TOKEN N`` opens ``N`` connections
and on each sends the largest batch the gateway takes and an over-limit one,
non-stop, until terminated; it prints ``attacking`` once all are open.

``python -m tests.fuzz.attacker ping URL TOKEN COUNT`` calls ``sys.ping``
``COUNT`` times, 5 ms apart, and prints the round trips (seconds) as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from websockets.asyncio.client import ClientConnection, connect

from rtctl.config import DEFAULT_MAX_BATCH
from rtctl.protocol import jsonrpc


def _batch(size: int) -> str:
    return jsonrpc.dumps([jsonrpc.encode_request("sys.echo", [n], n) for n in range(size)]).decode()


def _connect(url: str, token: str) -> connect:
    return connect(url, additional_headers={"Authorization": f"Bearer {token}"},
                   compression=None, max_size=None)


async def attack(url: str, token: str, connections: int) -> None:
    messages = (_batch(DEFAULT_MAX_BATCH), _batch(10 * DEFAULT_MAX_BATCH))
    links = [await _connect(url, token) for _ in range(connections)]
    print("attacking", flush=True)

    async def flood(ws: ClientConnection) -> None:
        while True:
            for text in messages:
                await ws.send(text)
            for _ in messages:
                await ws.recv()

    await asyncio.gather(*(flood(ws) for ws in links))


async def ping(url: str, token: str, count: int) -> None:
    latencies: list[float] = []
    async with _connect(url, token) as ws:
        for n in range(count):
            started = time.perf_counter()
            await ws.send(jsonrpc.dumps(jsonrpc.encode_request("sys.ping", None, n)), text=True)
            reply = jsonrpc.loads(await ws.recv())
            latencies.append(time.perf_counter() - started)
            assert reply["id"] == n, reply
            assert "result" in reply, reply
            await asyncio.sleep(0.005)
    print(json.dumps(latencies), flush=True)


if __name__ == "__main__":
    mode, url, token, number = sys.argv[1:5]
    asyncio.run({"attack": attack, "ping": ping}[mode](url, token, int(number)))
