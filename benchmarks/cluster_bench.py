"""Sessions, presence and rooms: cross-node room.publish latency and connect/disconnect churn.

Two setups, side by side on one machine:

* ``memory``: one ``rtctl serve`` with the embedded backends (sender and
  receiver on the same node);
* ``cluster``: ``redis-server`` and ``nats-server`` on free loopback ports and
  two ``rtctl serve --redis --nats`` nodes (sender on one, receiver on the other).

Latency: one sender publishes to a room, one at a time, and waits for the
receiver's ``room.message``; p50/p99 over ``--messages``. Churn: ``--workers``
clients connect, call ``sys.ping`` and disconnect in a loop (alternating nodes)
for ``--duration`` s; sessions per second. Each session writes a record,
presence and (on disconnect) last_seen, so this is the backends' cost per session.

    .venv/bin/python benchmarks/cluster_bench.py --runs 3 [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parents[1]
SECRET = "cluster-bench-secret-of-at-least-32-bytes"
sys.path.insert(0, str(ROOT))

from rtctl.bench.cluster import free_port  # noqa: E402
from rtctl.protocol import jsonrpc  # noqa: E402
from rtctl.tokens import issue_token  # noqa: E402


def token(user: str) -> str:
    return issue_token(SECRET, sub=user, ttl=3600)


class Processes:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def server(self, argv: list[str], port: int) -> None:
        self.procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL, text=True))
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise SystemExit(f"{argv[0]} did not start")

    def gateway(self, *flags: str) -> str:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rtctl", "serve", "--port", "0", "--jwt-secret", SECRET,
             "--max-connections-per-user", "10000", "--log-level", "warning", *flags],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("rtctl gateway listening on "):
            raise SystemExit(f"rtctl serve failed: {line!r}")
        return line.split()[-1]

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
            proc.wait(15)


async def call(ws: ClientConnection, method: str, params: Any, request_id: int) -> None:
    await ws.send(jsonrpc.dumps(jsonrpc.encode_request(method, params, request_id)), text=True)
    while jsonrpc.loads(await ws.recv()).get("id") != request_id:
        pass


def _headers(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user)}"}


async def publish_latency(sender_url: str, receiver_url: str, messages: int) -> list[float]:
    async with connect(sender_url, additional_headers=_headers("s"), compression=None) as s, \
            connect(receiver_url, additional_headers=_headers("r"), compression=None) as r:
        await call(r, "room.join", {"room": "bench"}, 1)
        await call(s, "room.join", {"room": "bench"}, 1)
        request = jsonrpc.dumps(jsonrpc.encode_notification(
            "room.publish", {"room": "bench", "data": "x" * 32}))
        latencies = []
        for _ in range(messages + 100):
            started = time.perf_counter()
            await s.send(request, text=True)  # a notification: no reply to wait for
            while jsonrpc.loads(await r.recv()).get("method") != "room.message":
                pass
            latencies.append((time.perf_counter() - started) * 1000)
        return latencies[100:]  # warm-up left out


async def churn(urls: list[str], workers: int, duration: float) -> float:
    done = 0
    stop_at = time.perf_counter() + duration

    async def worker(index: int) -> None:
        nonlocal done
        headers = _headers(f"churn-{index}")
        n = 0
        while time.perf_counter() < stop_at:
            url = urls[(index + n) % len(urls)]
            async with connect(url, additional_headers=headers, compression=None) as ws:
                await call(ws, "sys.ping", None, 1)
            done += 1
            n += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(workers)))
    return done / (time.perf_counter() - started)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_setup(kind: str, args: argparse.Namespace) -> dict[str, float]:
    procs = Processes()
    try:
        if kind == "memory":
            urls = [procs.gateway()]
            sender, receiver = urls[0], urls[0]
        else:
            redis_port, nats_port = free_port(), free_port()
            procs.server(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                          "--save", "", "--appendonly", "no"], redis_port)
            procs.server(["nats-server", "-a", "127.0.0.1", "-p", str(nats_port)], nats_port)
            flags = ["--redis", f"redis://127.0.0.1:{redis_port}",
                     "--nats", f"nats://127.0.0.1:{nats_port}"]
            urls = [procs.gateway(*flags, "--node-id", f"bench-{i}") for i in (1, 2)]
            sender, receiver = urls
        latencies = asyncio.run(publish_latency(sender, receiver, args.messages))
        rate = asyncio.run(churn(urls, args.workers, args.duration))
        return {"p50_ms": percentile(latencies, 0.5), "p99_ms": percentile(latencies, 0.99),
                "churn_sessions_per_s": rate}
    finally:
        procs.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=20)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {"memory": [], "cluster": []}
    for run in range(args.runs):
        for kind in results:
            results[kind].append(run_setup(kind, args))
            print(f"run {run + 1} {kind}: {results[kind][-1]}", flush=True)
    print("\n| setup | room.publish p50 (ms) | p99 (ms) | churn (sessions/s) |")
    print("|---|---|---|---|")
    for kind, runs in results.items():
        med = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        label = ("memory, one node" if kind == "memory"
                 else "Redis + NATS, two nodes (cross-node)")
        print(f"| {label} | {med['p50_ms']:.2f} | {med['p99_ms']:.2f} | "
              f"{med['churn_sessions_per_s']:.0f} |")
    if args.json:
        args.json.write_text(json.dumps({"cpus": os.cpu_count(), "args": vars(args) | {
            "json": str(args.json)}, "runs": results}, indent=2))


if __name__ == "__main__":
    main()
