"""Server CPU per delivered ``room.message``: the gateway (both transports) beside a bare broadcast.

``MEMBERS`` connections and a publisher join one room; the publisher sends ``room.publish`` as a
notification, waits until every member has the ``room.message``, and sends the
next (closed loop). The server runs pinned to one core, the client (picows on
uvloop, one process) to the other; the server's CPU time comes from
``/proc/PID/stat`` over the measured window, divided by the deliveries.

The baseline is ``benchmarks/bare_rooms.py``: the same two calls on bare
``websockets``, the message encoded once and written with
``websockets.broadcast``. Rounds alternate servers; the table shows medians.

    .venv/bin/python benchmarks/fanout_cpu.py --members 1000 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
import uvloop
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from rtctl.tokens import issue_token

ROOT = Path(__file__).resolve().parent.parent
SECRET = "fanout-bench-secret-0123456789abcdef0123"
CLK = os.sysconf("SC_CLK_TCK")
PUBLISH = orjson.dumps({"jsonrpc": "2.0", "method": "room.publish",
                        "params": {"room": "fan", "data": {"seq": 1, "text": "x" * 48}}})


def server_commands() -> dict[str, list[str]]:
    rtctl = [sys.executable, "-m", "rtctl", "serve", "--port", "0", "--jwt-secret", SECRET,
             "--max-connections-per-user", "100000", "--log-level", "warning"]
    return {
        "bare websockets broadcast": [sys.executable, str(ROOT / "benchmarks" / "bare_rooms.py")],
        "rtctl websockets": [*rtctl, "--transport", "websockets"],
        "rtctl picows": [*rtctl, "--transport", "picows"],
    }


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


class Member(WSListener):  # type: ignore[misc]
    """Counts ``room.message`` notifications; answers arrive as replies with an id."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.transport: WSTransport | None = None
        self.replied: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type != WSMsgType.TEXT:
            return
        payload = frame.get_payload_as_bytes()
        if b'"room.message"' in payload:
            self.tally.delivered()
        elif not self.replied.done():
            self.replied.set_result(None)


@dataclass
class Tally:
    expected: int = 0
    got: int = 0
    done: asyncio.Future[None] | None = None

    def delivered(self) -> None:
        self.got += 1
        if self.got == self.expected and self.done is not None and not self.done.done():
            self.done.set_result(None)


@dataclass
class Result:
    server: str
    deliveries: int
    seconds: float
    cpu_us_per_delivery: float
    deliveries_per_s: float


async def measure(name: str, command: list[str], members: int, duration: float,
                  warmup: float) -> Result:
    proc = await asyncio.create_subprocess_exec(
        "taskset", "-c", "1", *command, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        url = (await proc.stdout.readline()).decode().split()[-1]
        token = issue_token(SECRET, sub="fan", ttl=3600)
        headers = {"Authorization": f"Bearer {token}"}
        tally = Tally()
        listeners: list[Member] = []
        join = orjson.dumps({"jsonrpc": "2.0", "method": "room.join",
                             "params": {"room": "fan"}, "id": 1})
        for _ in range(members + 1):  # the last one publishes (a member, as rtctl requires)
            _, member = await ws_connect(lambda: Member(tally), url, extra_headers=headers)
            member.transport.send(WSMsgType.TEXT, join)
            await member.replied
            listeners.append(member)
        publisher = listeners[-1].transport
        assert publisher is not None
        loop = asyncio.get_running_loop()

        async def one_round() -> None:
            tally.expected, tally.got, tally.done = members, 0, loop.create_future()
            publisher.send(WSMsgType.TEXT, PUBLISH)
            await asyncio.wait_for(tally.done, 30)

        until = time.perf_counter() + warmup
        while time.perf_counter() < until:
            await one_round()
        rounds, cpu0, started = 0, cpu_seconds(proc.pid), time.perf_counter()
        while time.perf_counter() - started < duration:
            await one_round()
            rounds += 1
        seconds, cpu = time.perf_counter() - started, cpu_seconds(proc.pid) - cpu0
        for member in listeners:
            assert member.transport is not None
            member.transport.disconnect()
            await member.transport.wait_disconnected()
        deliveries = rounds * members
        return Result(name, deliveries, seconds, 1e6 * cpu / deliveries, deliveries / seconds)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    results: dict[str, list[Result]] = {}
    for _ in range(args.rounds):
        for name, command in server_commands().items():
            result = uvloop.run(measure(name, command, args.members, args.duration, args.warmup))
            results.setdefault(name, []).append(result)
            print(f"  {name}: {result.cpu_us_per_delivery:.2f} µs CPU/delivery, "
                  f"{result.deliveries_per_s:,.0f} deliveries/s", flush=True)
    base = statistics.median(r.cpu_us_per_delivery for r in results["bare websockets broadcast"])
    print(f"\n| server | CPU µs per delivery (median of {args.rounds}) | × bare | deliveries/s |")
    print("|---|---|---|---|")
    for name, runs in results.items():
        cpu = statistics.median(r.cpu_us_per_delivery for r in runs)
        rate = statistics.median(r.deliveries_per_s for r in runs)
        print(f"| {name} | {cpu:.2f} | {cpu / base:.2f}× | {rate:,.0f} |")


if __name__ == "__main__":
    main()
