"""permessage-deflate on vs off: bytes on the wire and CPU, on chat-like and state-like traffic.

Each run starts ``rtctl serve`` afresh (``--compression`` or not, the default
level and threshold unless given) on 127.0.0.1, and connects ``websockets``
clients that all *offer* deflate, as browsers do: the gateway decides.

``chat``
    ``--members`` members and a publisher in one room; the publisher sends
    ``--messages`` ``room.publish`` notifications of 100-300 B of seeded text
    (words from a small vocabulary, a user name), each once every member has
    the one before (closed loop).
``state``
    ``--members`` JSON (``rtctl.v1``) members of one ``drift`` room
    (``--entities``, ``--movers`` per tick, 20 Hz): each ``state.patch`` is a
    JSON delta of a few KB with repeated keys and numbers; the window lasts
    until every member has ``--patches`` more.

Measured over the window, per 1,000 delivered messages: the bytes the clients
read off their sockets (frames as the gateway sent them, before TCP/IP
headers), the gateway's CPU seconds (``/proc/PID/stat``) and the
clients' (this process, ``time.process_time``). Then the gateway's RSS growth
per connection after ``--idle`` connections each echoed one state-sized
message. Runs alternate on/off, the order flipped each round; the table shows
medians of ``--rounds``.

    .venv/bin/python benchmarks/compression.py --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import astuple, dataclass
from pathlib import Path

import orjson
from fanout_cpu import cpu_seconds
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from rtctl.protocol.upgrade import SUBPROTOCOL
from rtctl.tokens import issue_token

ROOT = Path(__file__).resolve().parent.parent
SECRET = "compression-bench-secret-0123456789abcdef"
WORDS = ("gg", "push", "mid", "left", "right", "heal", "me", "now", "wait", "for", "the", "boss",
         "team", "go", "ready", "nice", "shot", "one", "more", "round", "rush", "base", "defend",
         "flag", "spawn", "camping", "lol", "anyone", "want", "to", "trade", "sword", "potion",
         "is", "a", "you", "i", "it", "that", "was", "on", "with", "they", "at", "be", "this",
         "have", "from", "or", "had", "by", "but", "what", "some", "we", "can", "out", "other",
         "were", "all", "there", "when", "up", "use", "your", "how", "said", "an", "each",
         "which", "she", "do", "their", "time", "if", "will", "way", "about", "many", "then",
         "them", "would", "write", "like", "so", "these", "her", "long", "make", "thing", "see",
         "him", "two", "has", "look", "could", "people", "my", "than", "first", "water",
         "been", "call", "who", "oil", "its", "find", "day", "did", "get", "come", "made",
         "may", "part", "dragon", "north", "gate", "loot", "armor", "tank", "pull", "aggro")
MODES = ("off", "on")


def chat_lines(count: int, seed: int = 7) -> list[bytes]:
    """``room.publish`` notifications whose ``text`` is 100-300 chars of chat words."""
    rng = random.Random(seed)
    lines = []
    for _ in range(count):
        target, words = rng.randint(100, 300), list[str]()
        while sum(len(w) + 1 for w in words) < target:
            words.append(rng.choice(WORDS))
        data = {"from": f"player{rng.randint(1, 500)}", "text": " ".join(words)[:target]}
        lines.append(orjson.dumps({"jsonrpc": "2.0", "method": "room.publish",
                                   "params": {"room": "chat", "data": data}}))
    return lines


class Counted(ClientConnection):
    """A client connection that adds up the bytes it reads off its socket: frames as the
    gateway sent them (compressed or not, headers included), before TCP/IP's own."""

    received = 0  # over every connection of this process

    def data_received(self, data: bytes) -> None:
        Counted.received += len(data)
        super().data_received(data)


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return 1024 * int(next(line for line in status if line.startswith("VmRSS:")).split()[1])


@dataclass
class Sample:
    deliveries: int
    wire_bytes: int
    payload_bytes: int  # what the clients read, uncompressed
    server_cpu: float
    client_cpu: float

    def per_thousand(self, value: float) -> float:
        return 1000 * value / self.deliveries


class Window:
    """Counts what each member receives; ``reached(n)`` returns once each has ``n``."""

    def __init__(self, members: int) -> None:
        self.counts = [0] * members
        self.payload = 0
        self.goal = 0
        self.done: asyncio.Event = asyncio.Event()

    def got(self, member: int, size: int) -> None:
        self.counts[member] += 1
        self.payload += size
        if self.goal and min(self.counts) >= self.goal:
            self.done.set()

    async def reached(self, goal: int) -> None:
        self.goal, self.done = goal, asyncio.Event()
        if min(self.counts) < goal:
            await asyncio.wait_for(self.done.wait(), 60)


async def read(ws: ClientConnection, member: int, window: Window, method: str) -> None:
    async for message in ws:
        if isinstance(message, str) and f'"method":"{method}"' in message:
            window.got(member, len(message))


@asynccontextmanager
async def gateway(compression: bool, level: int | None, threshold: str | None
                  ) -> AsyncIterator[tuple[str, int]]:
    """``rtctl serve`` on a free port: its URL and pid; terminated on exit."""
    command = [sys.executable, "-m", "rtctl", "serve", "--host", "127.0.0.1", "--port", "0",
               "--jwt-secret", SECRET, "--room-type", "drift", "--log-level", "warning",
               "--compression" if compression else "--no-compression"]
    if compression and level is not None:
        command += ["--compression-level", str(level)]
    if compression and threshold is not None:
        command += ["--compression-threshold", threshold]
    proc = await asyncio.create_subprocess_exec(*command, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        banner = (await proc.stdout.readline()).decode()
        if not banner.startswith("rtctl gateway listening on "):
            raise SystemExit(f"rtctl serve did not start: {' '.join(command)}")
        yield banner.split()[-1], proc.pid
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)


async def join(url: str, user: str, room: str, options: dict[str, int] | None = None
               ) -> ClientConnection:
    token = issue_token(SECRET, sub=user, ttl=3600)
    ws = await connect(url, additional_headers={"Authorization": f"Bearer {token}"},
                       subprotocols=[Subprotocol(SUBPROTOCOL)], compression="deflate",
                       max_size=None, create_connection=Counted)
    params: dict[str, object] = {"room": room} | ({"options": options} if options else {})
    await ws.send(orjson.dumps({"jsonrpc": "2.0", "method": "room.join", "params": params,
                                "id": 1}).decode())
    reply = orjson.loads(await ws.recv())
    assert "result" in reply, reply
    return ws


def totals(pid: int, window: Window) -> Sample:
    """Everything counted so far, by the members, the sockets and both processes."""
    return Sample(sum(window.counts), Counted.received, window.payload, cpu_seconds(pid),
                  time.process_time())


async def measure(pid: int, window: Window, run: Callable[[], Awaitable[None]]) -> Sample:
    """What ``run`` cost: deliveries, bytes and CPU seconds between its start and end."""
    start = totals(pid, window)
    await run()
    end = totals(pid, window)
    return Sample(*(after - before for after, before in zip(astuple(end), astuple(start),
                                                            strict=True)))


async def chat(url: str, pid: int, args: argparse.Namespace) -> Sample:
    window = Window(args.members)
    members = [await join(url, f"m{i}", "chat") for i in range(args.members)]
    publisher = await join(url, "publisher", "chat")
    readers = [asyncio.create_task(read(ws, i, window, "room.message"))
               for i, ws in enumerate(members)]
    lines = chat_lines(args.messages + 20)

    async def publish(batch: list[bytes]) -> None:
        for line in batch:
            goal = min(window.counts) + 1
            await publisher.send(line.decode())
            await window.reached(goal)

    await publish(lines[:20])  # warm-up: the compressor's window fills
    sample = await measure(pid, window, lambda: publish(lines[20:]))
    for task in readers:
        task.cancel()
    await asyncio.gather(*(ws.close() for ws in [*members, publisher]))
    return sample


async def state(url: str, pid: int, args: argparse.Namespace) -> Sample:
    window = Window(args.members)
    options = {"entities": args.entities, "movers": args.movers, "tick_rate": 20}
    members = [await join(url, f"m{i}", "drift:cmp", options) for i in range(args.members)]
    readers = [asyncio.create_task(read(ws, i, window, "state.patch"))
               for i, ws in enumerate(members)]
    await window.reached(10)  # warm-up
    goal = min(window.counts) + args.patches
    sample = await measure(pid, window, lambda: window.reached(goal))
    for task in readers:
        task.cancel()
    await asyncio.gather(*(ws.close() for ws in members))
    return sample


async def memory(url: str, pid: int, args: argparse.Namespace) -> float:
    """The gateway's RSS growth per connection that echoed one state-sized message."""
    echo = orjson.dumps({"jsonrpc": "2.0", "method": "sys.echo", "id": 1, "params": [
        {"id": f"e{i}", "x": i * 1.5, "y": i * 2.25, "hp": 100} for i in range(60)]}).decode()
    before = rss_bytes(pid)
    opened = []
    for i in range(args.idle):
        token = issue_token(SECRET, sub=f"idle{i}", ttl=3600)
        ws = await connect(url, additional_headers={"Authorization": f"Bearer {token}"},
                           compression="deflate")
        await ws.send(echo)
        await ws.recv()
        opened.append(ws)
    grown = (rss_bytes(pid) - before) / int(args.idle)
    await asyncio.gather(*(ws.close() for ws in opened))
    return grown


SHAPES = {"chat": chat, "state": state}


async def one_round(args: argparse.Namespace, order: tuple[str, ...],
                    results: dict[tuple[str, str], list[Sample]], rss: dict[str, list[float]]
                    ) -> None:
    for shape, body in SHAPES.items():
        for mode in order:
            async with gateway(mode == "on", args.level, args.threshold) as (url, pid):
                sample = await body(url, pid, args)
            results.setdefault((shape, mode), []).append(sample)
            print(f"  {shape} {mode}: {sample.per_thousand(sample.wire_bytes) / 1024:.1f} KiB, "
                  f"server {sample.per_thousand(sample.server_cpu):.3f} s, client "
                  f"{sample.per_thousand(sample.client_cpu):.3f} s per 1,000", flush=True)
    for mode in order:
        async with gateway(mode == "on", args.level, args.threshold) as (url, pid):
            rss.setdefault(mode, []).append(await memory(url, pid, args))


def table(results: dict[tuple[str, str], list[Sample]], rss: dict[str, list[float]],
          rounds: int) -> str:
    def median(runs: list[Sample], value: Callable[[Sample], float]) -> float:
        return statistics.median(r.per_thousand(value(r)) for r in runs)

    lines = [f"Per 1,000 messages delivered, medians of {rounds}:\n",
             "| traffic | deflate | payload KiB | wire KiB | wire ÷ off | gateway CPU s "
             "| × off | clients CPU s | × off |",
             "|---|---|---|---|---|---|---|---|---|"]
    for shape in SHAPES:
        off = results[(shape, "off")]
        for mode in MODES:
            runs = results[(shape, mode)]
            wire, cpu, client = (median(runs, lambda r: r.wire_bytes),
                                 median(runs, lambda r: r.server_cpu),
                                 median(runs, lambda r: r.client_cpu))
            lines.append(
                f"| {shape} | {mode} | {median(runs, lambda r: r.payload_bytes) / 1024:.1f} "
                f"| {wire / 1024:.1f} | {wire / median(off, lambda r: r.wire_bytes):.2f} "
                f"| {cpu:.3f} | {cpu / median(off, lambda r: r.server_cpu):.2f} "
                f"| {client:.3f} | {client / median(off, lambda r: r.client_cpu):.2f} |")
    growth = {mode: statistics.median(values) / 1024 for mode, values in rss.items()}
    lines.append(f"\ngateway RSS per connection (one echo each): off {growth['off']:.1f} KiB, "
                 f"on {growth['on']:.1f} KiB")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--messages", type=int, default=200, help="chat messages measured")
    parser.add_argument("--patches", type=int, default=40, help="state patches measured")
    parser.add_argument("--entities", type=int, default=300)
    parser.add_argument("--movers", type=int, default=60)
    parser.add_argument("--idle", type=int, default=200, help="connections for the RSS figure")
    parser.add_argument("--level", type=int, default=None, help="--compression-level")
    parser.add_argument("--threshold", default=None, help="--compression-threshold")
    args = parser.parse_args()
    results: dict[tuple[str, str], list[Sample]] = {}
    rss: dict[str, list[float]] = {}
    for number in range(args.rounds):
        order = MODES if number % 2 == 0 else MODES[::-1]
        asyncio.run(one_round(args, order, results, rss))
    print(table(results, rss, args.rounds))


if __name__ == "__main__":
    main()
