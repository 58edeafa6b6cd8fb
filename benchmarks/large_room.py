"""A join storm into one room on one node: join time, memory per member, loop lag, a bystander.

Starts ``python -m rtctl serve`` (memory backends) from ``--root`` as a
subprocess, opens ``--members`` idle connections (one user each), then sends
``room.join {room: "big"}`` from each at ``--rate`` joins per second without
waiting for replies (an open loop: a slow server cannot slow the storm down).
It reports:

* join time: first join sent to last join reply;
* the gateway's RSS per connection while idle, at its peak during the storm,
  and per member once the room has settled (no notification for ``--quiet``
  s), from ``/proc/PID/status``, each over the RSS before the first connection;
* the event loop's lag p99 and max from the first join until settled, from the
  gateway's own probe (``GET /profile?reset=1`` before, ``GET /profile``
  after; admin token);
* a bystander outside the room calling ``sys.ping`` every 20 ms over the same
  window: p99 RTT;
* notifications the members received, and any heartbeat-lapse log line.

``--root`` lets the same script measure another checkout (a ``git worktree``
of an older commit) with this one's client. The server and the client each
raise their open-file limit to the hard limit.

    .venv/bin/python benchmarks/large_room.py --members 1000 --rate 500 --rounds 3
    .venv/bin/python benchmarks/large_room.py --members 10000 --rate 1000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import uvloop
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from rtctl.tokens import issue_token

ROOT = Path(__file__).resolve().parent.parent
SECRET = "large-room-bench-secret-0123456789abcdef"
JOIN = orjson.dumps({"jsonrpc": "2.0", "method": "room.join", "params": {"room": "big"},
                     "id": 1})
PING_EVERY = 0.02
CONNECT_BATCH = 100


def raise_open_files() -> None:
    """Members + listener sockets exceed the usual soft limit of 1,024 descriptors."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class Member(WSListener):  # type: ignore[misc]
    """One client: its join reply time, and a count of the notifications it got."""

    def __init__(self, stats: Stats) -> None:
        self.stats = stats
        self.transport: WSTransport | None = None
        self.reply: dict[str, object] | None = None
        self.pending: dict[int, float] = {}  # the bystander's pings: id → sent at

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type != WSMsgType.TEXT:
            return
        message = orjson.loads(frame.get_payload_as_bytes())
        now = time.perf_counter()
        if "method" in message:
            self.stats.notifications += 1
            self.stats.last_notification = now
        elif message.get("id") in self.pending:
            self.stats.pings.append(now - self.pending.pop(message["id"]))
        elif self.reply is None:
            self.reply = message
            self.stats.joined(now)


@dataclass
class Stats:
    members: int = 0
    replies: int = 0
    notifications: int = 0
    last_notification: float = 0.0
    last_reply: float = 0.0
    errors: int = 0
    pings: list[float] = field(default_factory=list)
    all_joined: asyncio.Event = field(default_factory=asyncio.Event)

    def joined(self, now: float) -> None:
        self.replies += 1
        self.last_reply = now
        if self.replies == self.members:
            self.all_joined.set()


@dataclass
class Result:
    members: int
    join_s: float
    idle_kib: float
    member_kib: float
    peak_kib: float
    lag_p99_ms: float
    lag_max_ms: float
    ping_p99_ms: float
    notifications: int
    lapses: int

    @property
    def ratio(self) -> float:
        return self.member_kib / self.idle_kib


def profile(port: int, admin: str, *, reset: bool) -> dict[str, object]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/profile" + ("?reset=1" * reset),
                                     headers={"Authorization": f"Bearer {admin}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(orjson.loads(response.read()))


async def connect(url: str, user: str, stats: Stats) -> Member:
    headers = {"Authorization": f"Bearer {issue_token(SECRET, sub=user, ttl=3600)}"}
    _, member = await ws_connect(lambda: Member(stats), url, extra_headers=headers,
                                 websocket_handshake_timeout=30)
    assert isinstance(member, Member)
    return member


async def ping_loop(bystander: Member, stop: asyncio.Event) -> None:
    assert bystander.transport is not None
    next_id = 2
    while not stop.is_set():
        bystander.pending[next_id] = time.perf_counter()
        bystander.transport.send(WSMsgType.TEXT, orjson.dumps(
            {"jsonrpc": "2.0", "method": "sys.ping", "id": next_id}))
        next_id += 1
        await asyncio.sleep(PING_EVERY)  # the bystander's pace, not synchronisation


async def peak_rss(pid: int, stop: asyncio.Event, peak: list[int]) -> None:
    """The highest RSS while the storm runs (what is queued shows here, not after)."""
    while not stop.is_set():
        peak[0] = max(peak[0], rss_bytes(pid))
        await asyncio.sleep(0.05)  # a sampling period, not synchronisation


async def settle(stats: Stats, quiet: float, timeout: float) -> None:
    """Until no notification came for ``quiet`` s (what is queued has been delivered)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        idle = time.perf_counter() - max(stats.last_notification, stats.last_reply)
        if idle >= quiet:
            return
        await asyncio.sleep(quiet - idle)


async def measure(root: Path, members: int, rate: float, quiet: float, timeout: float,
                  log: Path | None, transport: str) -> Result:
    command = [sys.executable, "-m", "rtctl", "serve", "--port", "0", "--jwt-secret", SECRET,
               "--max-connections", str(members + 100), "--log-level", "info",
               "--transport", transport]
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    proc = await asyncio.create_subprocess_exec(
        *command, cwd=root, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stderr is not None
    stderr = proc.stderr
    lines: list[str] = []

    async def read_log() -> None:
        while line := await stderr.readline():
            lines.append(line.decode(errors="replace").rstrip())

    log_task = asyncio.create_task(read_log())
    try:
        url = (await proc.stdout.readline()).decode().split()[-1]
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        admin = issue_token(SECRET, sub="admin", ttl=3600, claims={"role": "admin"})
        stats = Stats(members=members)
        bystander = await connect(url, "bystander", Stats())
        before = rss_bytes(proc.pid)
        clients: list[Member] = []
        for start in range(0, members, CONNECT_BATCH):
            clients += await asyncio.gather(*(connect(url, f"m{i:05d}", stats)
                                              for i in range(start,
                                                             min(start + CONNECT_BATCH, members))))
        idle = rss_bytes(proc.pid)
        await asyncio.to_thread(profile, port, admin, reset=True)
        stop = asyncio.Event()
        pinger = asyncio.create_task(ping_loop(bystander, stop))
        peak = [idle]
        sampler = asyncio.create_task(peak_rss(proc.pid, stop, peak))
        started = time.perf_counter()
        for index, client in enumerate(clients):
            delay = started + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)  # the storm's pace
            assert client.transport is not None
            client.transport.send(WSMsgType.TEXT, JOIN)
        try:
            await asyncio.wait_for(stats.all_joined.wait(), timeout)
        except TimeoutError:
            print(f"  only {stats.replies}/{members} join replies within {timeout:g}s",
                  flush=True)
        join_s = (stats.last_reply or time.perf_counter()) - started
        await settle(stats, quiet, timeout)
        snapshot = await asyncio.to_thread(profile, port, admin, reset=False)
        stop.set()
        await pinger
        await sampler
        settled = rss_bytes(proc.pid)
        lag = snapshot["loop_lag_ms"]
        assert isinstance(lag, dict)
        pings = sorted(bystander.stats.pings)
        for client in [*clients, bystander]:
            assert client.transport is not None
            client.transport.disconnect()
        lapses = [line for line in lines if "heartbeat" in line]
        if log is not None:
            await asyncio.to_thread(log.write_text, "\n".join(lines) + "\n")
        for line in lapses[:3]:
            print(f"  log: {line}", flush=True)
        return Result(
            members=members, join_s=join_s, idle_kib=(idle - before) / members / 1024,
            member_kib=(settled - before) / members / 1024,
            peak_kib=(peak[0] - before) / members / 1024, lag_p99_ms=float(lag["p99"]),
            lag_max_ms=float(lag["max"]),
            ping_p99_ms=1000 * pings[min(len(pings) - 1, int(0.99 * len(pings)))]
            if pings else float("nan"),
            notifications=stats.notifications, lapses=len(lapses))
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
        log_task.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, nargs="+", default=[1000])
    parser.add_argument("--rate", type=float, default=500.0, help="joins per second")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="the checkout whose `rtctl serve` is measured")
    parser.add_argument("--quiet", type=float, default=2.0,
                        help="seconds without a notification that count as settled")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--log", type=Path, help="write the gateway's log here")
    parser.add_argument("--transport", default="websockets", choices=["websockets", "picows"])
    args = parser.parse_args()
    raise_open_files()
    print("| members | join s | idle KiB/conn | peak KiB/member | settled KiB/member | × idle "
          "| loop lag p99 / max ms "
          "| bystander ping p99 ms | notifications | heartbeat lines |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for members in args.members:
        runs = []
        for _ in range(args.rounds):
            run = uvloop.run(measure(args.root, members, args.rate, args.quiet, args.timeout,
                                     args.log, args.transport))
            print(f"  run: {run}", file=sys.stderr, flush=True)
            runs.append(run)

        def median(name: str, runs: list[Result] = runs) -> float:
            return statistics.median(getattr(run, name) for run in runs)

        print(f"| {members:,} | {median('join_s'):.1f} | {median('idle_kib'):.1f} "
              f"| {median('peak_kib'):.1f} | {median('member_kib'):.1f} | {median('ratio'):.2f} "
              f"| {median('lag_p99_ms'):.0f} / {median('lag_max_ms'):.0f} "
              f"| {median('ping_p99_ms'):.0f} | {median('notifications'):,.0f} "
              f"| {median('lapses'):.0f} |", flush=True)


if __name__ == "__main__":
    main()
