"""Sizing inputs that are memory, bytes and counts, not rates (docs/sizing.md).

Rates (messages per core-second) are taken from docs/performance.md, whose medians were
measured with more care than a 2-minute run on a shared machine can give. What this script
measures is what does not move with the machine's load:

* gateway RSS per idle connection, on each transport, with ``--connections`` clients
  (one user each) on one node backed by a real ``redis-server`` and ``nats-server``;
* Redis memory (``INFO memory`` ``used_memory``) and commands (``INFO stats``
  ``total_commands_processed``) per connect, per room membership, per presence watch,
  per ``room.publish`` (kept in the room's history) and per disconnect, and what an
  offline user leaves behind (presence with ``last_seen``, kept 30 days), and per
  connected player per second while nothing happens (the session renewals);
* CPU per operation of the gateway (``/proc/PID/stat``, 10 ms ticks) and of Redis
  (``INFO cpu``): the load client shares the machine, so these are rough, but Redis' own
  CPU per operation does not depend on how fast the client drives it;
* ``MEMORY USAGE`` of one key of each kind a player makes;
* a full room history: one player alone in a room publishes ``FULL`` messages (more than
  the default ``--history-size``, 1,000), each with an ``idempotency_key`` as the Python
  SDK sends them (room.publish keeps its keys in the room's history, not as kept
  replies); the stream then holds what a busy room keeps (the history TTL is an
  idle timer, reset by every message), and its bytes per kept message are what room
  history costs (a stream of 5 messages costs far more per message: its first node);
* gateway CPU per presence message the node reads from NATS and drops (no watcher):
  every node reads every presence change, so this cost grows with the number of nodes
  (the NATS totals printed at the end include these ``DROPPED`` messages);
* NATS messages and bytes per connect, join, publish and disconnect, counted by a
  subscriber on ``rtctl.>`` (the node publishes once; nats-server delivers a copy to every
  node subscribed, so out = in x the nodes with a member).

Each phase waits for its replies, for what it writes to be in Redis (counted keys) and
then until NATS has been quiet for 0.5 s (a node broadcasts after its Redis write). Redis
bytes leave out ``mem_clients_normal``: the node's connection pool grows with concurrent
calls, and its buffers are not the players' data. The background commands (readiness
pings, heartbeats) are a few per second: at 1,000 connections they add under 0.05
commands per operation.

    .venv/bin/python benchmarks/sizing.py [--connections 1000] [--json FILE]   # about 2 min
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import nats
import orjson
from nats.aio.client import Client as NATS
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from large_room import raise_open_files, rss_bytes  # noqa: E402
from loadgen import process_cpu_seconds  # noqa: E402

from rtctl.bench.cluster import GatewayNode, start_backends, start_gateways  # noqa: E402
from rtctl.tokens import issue_token  # noqa: E402

T = TypeVar("T")
ROOM_SIZE = 10  # players per room
WATCHES = 20  # users in each player's presence watch list
PUBLISHES = 5  # room.publish per room, 100 bytes of data each
PAYLOAD = "x" * 100
FULL = 1200  # messages into one room: more than the default history size, 1,000
DROPPED = 5000  # presence messages for a user nobody watches
# Calls at once: 100 connects or joins at once overran the node's Redis pool (100 sockets,
# 1 s wait) on this machine; the calls refused made the node resynchronise, re-announcing
# every user, which a per-operation count must not include.
BATCH = 20
IDLE = 21  # s: one session renewal (every session TTL / 3 = 20 s) falls in it
QUIET = 0.5  # s without a NATS message that ends a phase
WAIT = 60.0  # s: the longest any phase may take before the run fails


class Traffic:
    """NATS messages and bytes seen on ``rtctl.>``, by the subject's second word."""

    def __init__(self) -> None:
        self.messages: Counter[str] = Counter()
        self.bytes: Counter[str] = Counter()

    async def on_message(self, msg: Any) -> None:
        kind = msg.subject.split(".")[1]
        self.messages[kind] += 1
        self.bytes[kind] += len(msg.data)


class Probe:
    """Before/after readings of the gateway, Redis and NATS around one phase."""

    def __init__(self, pid: int, redis: Redis, traffic: Traffic) -> None:
        self.pid, self.redis, self.traffic = pid, redis, traffic

    async def reading(self) -> dict[str, float]:
        memory, stats = await self.redis.info("memory"), await self.redis.info("stats")
        cpu = await self.redis.info("cpu")
        # The node's Redis connection pool grows with concurrent calls; its buffers are
        # not the players' data, so they are left out.
        data = memory["used_memory"] - memory["mem_clients_normal"]
        return {"rss": rss_bytes(self.pid), "redis_bytes": data,
                "gateway_cpu_us": process_cpu_seconds(self.pid) * 1e6,
                "redis_cpu_us": (cpu["used_cpu_user"] + cpu["used_cpu_sys"]) * 1e6,
                "redis_commands": stats["total_commands_processed"],
                "nats_messages": sum(self.traffic.messages.values()),
                "nats_bytes": sum(self.traffic.bytes.values())}

    async def settled(self) -> None:
        """Until the NATS count stops moving: a node publishes after its Redis write, so
        the last broadcasts of a phase arrive after what the phase waited for."""
        deadline, seen = time.monotonic() + WAIT, -1
        while seen != (seen := sum(self.traffic.messages.values())):
            if time.monotonic() > deadline:
                raise SystemExit("sizing: NATS traffic did not settle")
            await asyncio.sleep(QUIET)

    async def phase(self, run: Callable[[], Awaitable[None]], per: int) -> dict[str, float]:
        before = await self.reading()
        await run()
        await self.settled()
        after = await self.reading()
        return {key: round((after[key] - before[key]) / per, 2) for key in before}


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll Redis for the phase's effect: the node writes asynchronously to the reply."""
    deadline = time.monotonic() + WAIT
    while not await check():
        if time.monotonic() > deadline:
            raise SystemExit(f"sizing: {what} not seen in Redis within {WAIT:.0f} s")
        await asyncio.sleep(0.05)


async def call(ws: ClientConnection, method: str, params: Any, key: str | None = None
               ) -> None:
    """One call and its reply; ``key``, if given, is its ``idempotency_key`` (§3.4)."""
    await ws.send(orjson.dumps({"jsonrpc": "2.0", "method": method, "params": params,
                                "id": 1, "idempotency_key": key}).decode())
    while orjson.loads(await ws.recv()).get("id") != 1:
        pass


async def measure(url: str, node: str, probe: Probe, bus: NATS, n: int, secret: str
                  ) -> dict[str, Any]:
    redis = probe.redis
    clients: list[ClientConnection] = []
    results: dict[str, Any] = {}

    async def sessions() -> int:
        return int(await redis.hlen(f"rtctl:node-sessions:{node}"))

    async def open_all() -> None:
        clients.extend(await batched([partial(connect, url, compression=None, additional_headers={
            "Authorization": f"Bearer {issue_token(secret, sub=f'p{i}', ttl=600)}"})
            for i in range(n)]))
        await until(lambda: _equals(sessions(), n), "every session")

    async def join_all() -> None:
        await batched([partial(call, ws, "room.join", {"room": f"r{i // ROOM_SIZE}"})
                       for i, ws in enumerate(clients)])

    async def watch_all() -> None:
        await batched([partial(call, ws, "presence.subscribe", {
            "users": [f"p{(i + k + 1) % n}" for k in range(WATCHES)]})
            for i, ws in enumerate(clients)])

    async def publish_all() -> None:
        # A round publishes once per room, so no socket has two calls (two recv()) at once.
        for _ in range(PUBLISHES):
            await batched([partial(call, ws, "room.publish", {
                "room": f"r{i // ROOM_SIZE}", "data": PAYLOAD})
                for i, ws in enumerate(clients) if i % ROOM_SIZE == 0])

    async def fill_room() -> None:
        for i in range(FULL):
            await call(clients[0], "room.publish", {"room": "full", "data": PAYLOAD}, f"k{i}")

    async def drop_presence() -> None:
        # Ends with a change to p1, whom clients[0] watches: the node reads its bus in
        # order, so once clients[0] hears of it, every message before it was read.
        for i in range(DROPPED):
            await bus.publish("rtctl.presence", orjson.dumps({
                "user": f"nobody{i}", "status": "online", "last_seen": None, "text": None,
                "version": 1}))
        await bus.publish("rtctl.presence", orjson.dumps({
            "user": "p1", "status": "away", "last_seen": None, "text": "sizing",
            "version": 2**62}))
        async with asyncio.timeout(WAIT):
            while True:
                heard = orjson.loads(await clients[0].recv())
                if heard.get("method") == "presence.changed" \
                        and heard["params"].get("text") == "sizing":
                    return

    async def close_all() -> None:
        await batched([ws.close for ws in clients])
        await until(lambda: _equals(sessions(), 0), "every session's end")

    async def idle() -> None:
        await asyncio.sleep(IDLE)  # the measured thing is what happens over this time

    rooms = -(-n // ROOM_SIZE)
    results["connect"] = await probe.phase(open_all, n)
    results["join"] = await probe.phase(join_all, n)
    results["watch"] = await probe.phase(watch_all, n * WATCHES)
    results["publish"] = await probe.phase(publish_all, rooms * PUBLISHES)
    session_key = await _first(redis, "rtctl:session:*")
    results["keys"] = {kind: await redis.memory_usage(key) for kind, key in {
        "session": session_key, "user-sessions": "rtctl:user-sessions:p0",
        "presence": "rtctl:presence:p0",
        "devices": "rtctl:devices:p0", "room": "rtctl:room:r0",
        "room-counts": "rtctl:room-counts:r0", "room-users": "rtctl:room-users:r0",
        "history (room stream)": "rtctl:history:r0",
        "history-meta": "rtctl:history-meta:r0"}.items()}
    results["idle, per second"] = await probe.phase(idle, n * IDLE)
    await call(clients[0], "room.join", {"room": "full"})
    results["publish, full room"] = await probe.phase(fill_room, FULL)
    kept = await redis.xlen("rtctl:history:full")
    # SAMPLES 0: every node of the stream counted, not an estimate from the first five.
    stream = int(await redis.memory_usage("rtctl:history:full", samples=0) or 0)
    keys = int(await redis.memory_usage("rtctl:history-keys:full", samples=0) or 0)
    results["full room"] = {
        "messages kept": kept, "stream bytes": stream, "keys bytes": keys,
        "bytes per kept message": round((stream + keys) / kept)}
    await call(clients[0], "room.leave", {"room": "full"})
    results["presence dropped"] = await probe.phase(drop_presence, DROPPED)
    results["disconnect"] = await probe.phase(close_all, n)
    return results


async def batched(calls: list[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run ``calls`` BATCH at a time, in order of the list."""
    done: list[T] = []
    for start in range(0, len(calls), BATCH):
        done.extend(await asyncio.gather(*(make() for make in calls[start:start + BATCH])))
    return done


async def _equals(value: Awaitable[int], expected: int) -> bool:
    return await value == expected


async def _first(redis: Redis, pattern: str) -> str:
    async for key in redis.scan_iter(match=pattern, count=1000):
        return str(key)
    raise SystemExit(f"sizing: no key {pattern}")


async def run_transport(transport: str, n: int) -> dict[str, Any]:
    secret = secrets.token_urlsafe(32)
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        redis_server, nats_server = start_backends(stack)
        node = GatewayNode(f"size-{transport}", secret=secret, log=Path(tmp) / "gw.log",
                           redis_url=redis_server.url, nats_url=nats_server.url,
                           flags=["--transport", transport, "--max-connections", str(2 * n)])
        start_gateways(stack, [node])
        assert node.proc is not None
        traffic = Traffic()
        bus = await nats.connect(nats_server.url)
        redis = Redis.from_url(redis_server.url, decode_responses=True)
        try:
            await bus.subscribe("rtctl.>", cb=traffic.on_message)
            await bus.flush()
            probe = Probe(node.proc.pid, redis, traffic)
            result = await measure(f"ws://{node.address}/ws", node.node_id, probe, bus, n,
                                   secret)
            await bus.flush()
            result["nats_by_kind"] = {"messages": dict(traffic.messages),
                                      "bytes": dict(traffic.bytes)}
            # A resync (after a Redis call timed out) re-announces every user: say so.
            result["gateway_log"] = node.log.read_text().splitlines()[-5:]
            return result
        finally:
            await bus.close()
            await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args()
    raise_open_files()
    results = {t: asyncio.run(run_transport(t, args.connections))
               for t in ("websockets", "picows")}
    for transport, result in results.items():
        print(f"== {transport}, {args.connections} connections, rooms of {ROOM_SIZE}, "
              f"{WATCHES} watches each, {PUBLISHES} publishes of {len(PAYLOAD)} B per room")
        for phase in ("connect", "join", "watch", "publish", "idle, per second",
                      "publish, full room", "presence dropped", "disconnect"):
            print(f"  per {phase:<10} " + "  ".join(f"{k} {v:,.2f}"
                                                   for k, v in result[phase].items()))
        print("  MEMORY USAGE bytes: " + ", ".join(f"{k} {v}" for k, v in result["keys"].items()))
        print("  full room: " + ", ".join(f"{k} {v:,}" for k, v in result["full room"].items()))
        print(f"  NATS: {result['nats_by_kind']}")
        print("  gateway log (last lines, warnings and up): " + " | ".join(result["gateway_log"]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
