"""``rtctl bench`` against an independent load client, side by side in one run.

The independent client is the peers kit's ``loadclient.py`` (picows on uvloop,
pre-built frames; none of ours). For each round, each server and each client:
a fresh server pinned to CPU 1, the client pinned to CPU 0 (as the peers kit
runs), 100 connections, closed loop, echo, warm-up then the measured window.
The clients are the loadclient, ``rtctl bench`` with one worker from this tree,
and with ``--before DIR`` the bench of another copy of rtctl (its ``rtctl``
package in DIR, e.g. ``git archive HEAD rtctl | tar -x -C DIR``). The client
order rotates every round, so drift on a shared machine hits every client alike.

Servers: ``c``, the peers kit's picows + uvloop echo (it sends each message
back: a server that can take the load; the loadclient sends its raw 99-byte
message, the bench JSON-RPC ``sys.echo`` requests); ``r``, ``rtctl serve`` from
this tree in its default transport (the loadclient in its JSON-RPC mode with
``sys.echo``, both with one token for a user allowed every connection).

Prints each round's msg/s, the medians, each client's median over the
loadclient's, and the bench's verdict on its own generator; ``--json FILE``
keeps the raw results.

    ../shared/peers/setup.sh /tmp/rtctl-peers
    .venv/bin/python benchmarks/bench_vs_loadclient.py --peers /tmp/rtctl-peers --reps 3
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 100
START_TIMEOUT = 20.0
LOADCLIENT = "loadclient"


@dataclass(frozen=True)
class Server:
    key: str
    label: str
    loadclient_proto: str  # the loadclient's --proto for this server
    token: str | None = None  # for the rtctl gateway

    def command(self, peers: Path, port: int, secret: str) -> list[str]:
        if self.key == "c":
            return [str(peers / "venv/bin/python"), str(peers / "servers/c_picows.py"), str(port)]
        return [sys.executable, "-m", "rtctl", "serve", "--port", str(port), "--jwt-secret",
                secret, "--max-connections-per-user", "100000", "--log-level", "warning"]


@dataclass
class Run:
    server: str
    client: str
    rep: int
    msgs_per_s: float
    p50_ms: float
    p99_ms: float
    client_cpu: float | None = None  # share of a core
    server_cpu: float | None = None  # the same, measured by the loadclient only
    verdict: str = ""
    errors: dict[str, int] = field(default_factory=dict)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not listen")


def _pin(cpu: int, command: list[str], pin: bool) -> list[str]:
    return ["taskset", "-c", str(cpu), *command] if pin else command


@contextmanager
def _serving(server: Server, peers: Path, secret: str, pin: bool) -> Iterator[tuple[int, int]]:
    port = _free_port()
    process = subprocess.Popen(_pin(1, server.command(peers, port, secret), pin), cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port, process)
        time.sleep(0.3)
        yield port, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _loadclient(server: Server, peers: Path, port: int, pid: int, args: argparse.Namespace,
                rep: int) -> Run:
    path = "/" if server.token is None else f"/ws?token={server.token}"
    command = [str(peers / "venv/bin/python"), str(peers / "loadclient.py"), "--url",
               f"ws://127.0.0.1:{port}{path}", "-c", str(CLIENTS), "--duration",
               str(args.duration), "--warmup", str(args.warmup), "--server-pid", str(pid),
               "--proto", server.loadclient_proto]
    done = subprocess.run(_pin(0, command, args.pin), capture_output=True, text=True,
                          check=True, env=dict(os.environ, RPC_METHOD="sys.echo"))
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return Run(server.key, LOADCLIENT, rep, out["msgs_per_s"], out["p50_us"] / 1e3,
               out["p99_us"] / 1e3, out["client_cpu_pct"] / 100, out["server_cpu_pct"] / 100,
               errors={"bad": out["bad"]} if out["bad"] else {})


def _bench(name: str, tree: Path, server: Server, port: int, args: argparse.Namespace,
           rep: int) -> Run:
    with tempfile.TemporaryDirectory() as tmp:
        out_file = Path(tmp) / "result.json"
        command = [sys.executable, "-m", "rtctl", "bench", f"ws://127.0.0.1:{port}",
                   "--scenario", "echo", "--clients", str(CLIENTS), "--duration",
                   f"{args.duration}s", "--warmup", f"{args.warmup}s", "--json", str(out_file)]
        if server.token is not None:
            command += ["--token", server.token]
        # cwd first on sys.path: `-m rtctl` runs the tree's own package
        subprocess.run(_pin(0, command, args.pin), cwd=tree, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=dict(os.environ, PYTHONPATH=str(tree)))
        out = json.loads(out_file.read_text())
    generator = out.get("generator")  # a bench from before the verdict has none
    return Run(server.key, name, rep, out["throughput_per_s"], out["latency_ms"]["p50"],
               out["latency_ms"]["p99"], client_cpu=generator["busy"] if generator else None,
               verdict=generator["verdict"] if generator else "", errors=out["errors"])


def _token(secret: str) -> str:
    return subprocess.run([sys.executable, "-m", "rtctl", "token", "--sub", "bench",
                           "--jwt-secret", secret, "--ttl", "2h"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()


def _table(runs: Sequence[Run], clients: Sequence[str]) -> str:
    lines = ["| server | client | msg/s per round | median msg/s | × loadclient | "
             "p50 / p99 ms (median) | client CPU (median) | server CPU (median) |",
             "|---|---|---|---:|---:|---|---:|---:|"]
    for server in dict.fromkeys(run.server for run in runs):
        base = statistics.median(r.msgs_per_s for r in runs
                                 if r.server == server and r.client == LOADCLIENT)
        for client in clients:
            mine = [r for r in runs if r.server == server and r.client == client]
            if not mine:
                continue
            median = statistics.median(r.msgs_per_s for r in mine)
            cpu = _median_share([r.client_cpu for r in mine])
            server_cpu = _median_share([r.server_cpu for r in mine])
            lines.append(
                f"| {server} | {client} | {' · '.join(f'{r.msgs_per_s:,.0f}' for r in mine)} | "
                f"{median:,.0f} | {median / base:.2f} | "
                f"{statistics.median(r.p50_ms for r in mine):.2f} / "
                f"{statistics.median(r.p99_ms for r in mine):.2f} | {cpu} | {server_cpu} |")
    return "\n".join(lines)


def _median_share(shares: Sequence[float | None]) -> str:
    known = [share for share in shares if share is not None]
    return f"{statistics.median(known):.0%}" if known else "–"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peers", type=Path, default=Path("/tmp/rtctl-peers"),
                        help="the peers kit, set up by ../shared/peers/setup.sh DIR")
    parser.add_argument("--before", type=Path, help="a directory holding another rtctl package")
    parser.add_argument("--servers", default="c,r", help="c (picows echo), r (rtctl serve)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--no-pin", dest="pin", action="store_false")
    parser.add_argument("--json", type=Path, help="write every run here")
    args = parser.parse_args(argv)
    secret = secrets.token_urlsafe(32)
    servers = {"c": Server("c", "picows echo", "raw"),
               "r": Server("r", "rtctl serve", "jsonrpc", token=_token(secret))}
    benches = {"rtctl bench": ROOT} | ({"rtctl bench (before)": args.before.resolve()}
                                       if args.before else {})
    clients = [LOADCLIENT, *benches]
    runs: list[Run] = []
    for rep in range(1, args.reps + 1):
        order = clients[rep - 1:] + clients[:rep - 1]
        for key in args.servers.split(","):
            server = servers[key]
            for client in order:
                with _serving(server, args.peers, secret, args.pin) as (port, pid):
                    run = (_loadclient(server, args.peers, port, pid, args, rep)
                           if client == LOADCLIENT
                           else _bench(client, benches[client], server, port, args, rep))
                runs.append(run)
                print(f"round {rep} {key} {client}: {run.msgs_per_s:,.0f} msg/s "
                      f"{run.verdict}", file=sys.stderr, flush=True)
    print(_table(runs, clients))
    verdicts = [f"- {r.server} round {r.rep}: {r.verdict}" for r in runs if r.verdict]
    print("\nthe bench's verdict on its generator:\n" + "\n".join(verdicts))
    if args.json is not None:
        args.json.write_text(json.dumps([vars(r) for r in runs], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
