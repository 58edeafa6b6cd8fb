"""Measure the rtctl gateway against a bare ``websockets`` echo server, side by side.

The issue's targets are relative, so both servers are measured in one run on the
same machine, under the same load client (``loadgen.py``, run in this process):

* throughput: JSON-RPC ``sys.echo`` round trips per second at 100 connections,
  gateway >= 0.75 x bare. Both servers run for the whole phase and are measured
  alternately, ``--rounds`` times each, the order flipping every round so drift
  on a shared machine hits both alike; medians are compared.
* memory per idle connection: each server is started afresh, primed with a few
  connections (so one-off costs such as lazy imports are not counted), then its
  RSS (VmRSS in /proc/PID/status) is read before and after ``--idle`` more idle
  connections are opened; (after - before) / idle, gateway <= 1.25 x bare.

The bare server is ``bare_echo.py``. The gateway is ``python -m rtctl serve``
with a fresh random JWT secret, its connection limits raised to what this run
opens (all load comes from one token, i.e. one user), and a token from
``python -m rtctl token``; both commands can be replaced with ``--gateway-cmd``
and ``--token-cmd``. A server command must exec the server itself (its PID is the
one measured) and print a ``ws://`` URL on its first stdout line. Servers' stderr
is kept out of the report and attached to any error.

Prints a markdown table on stdout (progress goes to stderr); ``--json FILE``
writes the raw numbers. Exit status: 0 if both targets pass with no load errors,
1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import secrets
import shlex
import statistics
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlencode

from loadgen import LoadResult, idle_connections, parse_seconds, raise_nofile_limit, run_load
from websockets.version import version as websockets_version

ROOT = Path(__file__).resolve().parent.parent
THROUGHPUT_TARGET = 0.75  # gateway / bare, at least
MEMORY_TARGET = 1.25  # gateway / bare, at most
START_TIMEOUT = 30.0  # seconds for a server to print its URL
STOP_TIMEOUT = 10.0  # seconds for a server to exit after SIGTERM
SETTLE = 1.0  # seconds of quiet between measurements
PRIME_CONNECTIONS = 10  # opened and closed before the memory baseline is read
TAIL_BYTES = 4096  # of a server's stderr, shown when something fails


@dataclass(frozen=True)
class ServerSpec:
    """How to start one server and what to append to its URL."""

    name: str
    command: list[str]
    query: str = ""  # e.g. "token=...", without the "?"


@dataclass(frozen=True)
class Server:
    """A started server process and the URL the load client should use."""

    spec: ServerSpec
    process: asyncio.subprocess.Process
    url: str

    def rss_bytes(self) -> int:
        """The process's resident set size, from VmRSS in /proc/PID/status."""
        with open(f"/proc/{self.process.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError(f"{self.spec.name}: no VmRSS for PID {self.process.pid}")


@dataclass(frozen=True)
class MemoryResult:
    """RSS of one fresh server before and after opening ``connections`` idle connections."""

    connections: int
    rss_before: int
    rss_after: int

    @property
    def per_connection(self) -> float:
        return (self.rss_after - self.rss_before) / self.connections


def bare_spec() -> ServerSpec:
    """The baseline: benchmarks/bare_echo.py on a free port."""
    script = ROOT / "benchmarks" / "bare_echo.py"
    return ServerSpec("bare", [sys.executable, str(script), "--host", "127.0.0.1", "--port", "0"])


async def gateway_spec(
    command: list[str] | None, token_command: list[str] | None, connections: int
) -> ServerSpec:
    """The gateway, by default ``rtctl serve`` with a fresh secret and a token signed with it.

    All load comes from one user (one token), so the default command raises the
    gateway's connection limits to ``connections``. ``command`` replaces the serve
    command; ``token_command`` replaces the token command, and an empty one means
    no token.
    """
    secret = secrets.token_urlsafe(32)
    if command is None:
        command = [sys.executable, "-m", "rtctl", "serve", "--host", "127.0.0.1", "--port", "0"]
        command += ["--jwt-secret", secret, "--max-connections", str(connections)]
        command += ["--max-connections-per-user", str(connections)]
    if token_command is None:
        token_command = [sys.executable, "-m", "rtctl", "token", "--sub", "bench"]
        token_command += ["--jwt-secret", secret]
    if not token_command:
        return ServerSpec("gateway", command)
    process = await asyncio.create_subprocess_exec(
        *token_command, cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    stdout, _ = await process.communicate()
    token = stdout.decode().strip()
    if process.returncode or not token:
        raise RuntimeError(f"token command {shlex.join(token_command)!r} gave no token")
    return ServerSpec("gateway", command, urlencode({"token": token}))


class _Tail:
    """Reads a server's pipe to the end, so it never blocks, keeping the last bytes."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.data = b""
        self.task = asyncio.create_task(self._read(stream))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(65536):
            self.data = (self.data + chunk)[-TAIL_BYTES:]


@asynccontextmanager
async def running(spec: ServerSpec) -> AsyncIterator[Server]:
    """Start ``spec`` as a subprocess, wait for its URL, and stop it on exit.

    The server's stderr is kept out of the report; its end is attached to any
    error raised while the server runs.
    """
    pipe = asyncio.subprocess.PIPE
    process = await asyncio.create_subprocess_exec(
        *spec.command, cwd=ROOT, stdout=pipe, stderr=pipe
    )
    assert process.stdout is not None
    assert process.stderr is not None
    stderr = _Tail(process.stderr)
    stdout: _Tail | None = None
    try:
        try:
            line = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT)
        except TimeoutError:
            line = b""
        match = re.search(r"ws://\S+", line.decode(errors="replace"))
        if match is None:
            raise RuntimeError(
                f"{spec.name}: no ws:// URL on the first stdout line of "
                f"{shlex.join(spec.command)!r} (got {line!r}; waited up to {START_TIMEOUT:g} s)"
            )
        stdout = _Tail(process.stdout)
        url = match.group()
        if spec.query:
            url += ("&" if "?" in url else "?") + spec.query
        yield Server(spec, process, url)
    except Exception as exc:
        with suppress(TimeoutError):  # give a failing server a moment to write its error
            await asyncio.wait_for(asyncio.shield(stderr.task), 1.0)
        if stderr.data:
            exc.add_note(f"{spec.name} stderr ends with:\n{stderr.data.decode(errors='replace')}")
        raise
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                process.kill()
                await process.wait()
        await stderr.task
        if stdout is not None:
            await stdout.task


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def measure_throughput(
    specs: Sequence[ServerSpec], args: argparse.Namespace
) -> dict[str, list[LoadResult]]:
    """Run the load ``args.rounds`` times against each server, alternating the order."""
    results: dict[str, list[LoadResult]] = {spec.name: [] for spec in specs}
    async with AsyncExitStack() as stack:
        servers = [await stack.enter_async_context(running(spec)) for spec in specs]
        for round_number in range(args.rounds):
            for server in servers if round_number % 2 == 0 else servers[::-1]:
                await asyncio.sleep(SETTLE)
                result = await run_load(
                    server.url,
                    connections=args.connections,
                    duration=args.duration,
                    warmup=args.warmup,
                    window=args.window,
                    payload_bytes=args.payload_bytes,
                    server_pid=server.process.pid,
                )
                results[server.spec.name].append(result)
                _log(
                    f"round {round_number + 1}/{args.rounds} {server.spec.name}: "
                    f"{result.messages_per_s:,.0f} msg/s, p99 {result.p99_ms:.1f} ms, "
                    f"client CPU {result.client_cpu:.0%}, server CPU {result.server_cpu:.0%}, "
                    f"errors {result.errors}"
                )
    return results


async def measure_memory(spec: ServerSpec, idle: int) -> MemoryResult:
    """RSS growth of a fresh server for ``idle`` idle connections."""
    async with running(spec) as server:
        async with idle_connections(server.url, PRIME_CONNECTIONS):
            pass
        await asyncio.sleep(SETTLE)
        before = server.rss_bytes()
        async with idle_connections(server.url, idle):
            await asyncio.sleep(SETTLE)
            after = server.rss_bytes()
    result = MemoryResult(idle, before, after)
    _log(f"memory {spec.name}: {result.per_connection / 1024:.1f} KiB per idle connection")
    return result


def _median(results: Sequence[LoadResult], field: str) -> float:
    return statistics.median(float(getattr(result, field)) for result in results)


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("inf")


def summarize(
    throughput: dict[str, list[LoadResult]], memory: dict[str, MemoryResult]
) -> dict[str, float | bool]:
    """The compared numbers, ratios and verdicts."""
    bare_rate = _median(throughput["bare"], "messages_per_s")
    gateway_rate = _median(throughput["gateway"], "messages_per_s")
    throughput_ratio = _ratio(gateway_rate, bare_rate)
    memory_ratio = _ratio(memory["gateway"].per_connection, memory["bare"].per_connection)
    errors = sum(result.errors for results in throughput.values() for result in results)
    return {
        "bare_messages_per_s": bare_rate,
        "gateway_messages_per_s": gateway_rate,
        "throughput_ratio": throughput_ratio,
        "throughput_pass": throughput_ratio >= THROUGHPUT_TARGET,
        "bare_bytes_per_idle_connection": memory["bare"].per_connection,
        "gateway_bytes_per_idle_connection": memory["gateway"].per_connection,
        "memory_ratio": memory_ratio,
        "memory_pass": memory_ratio <= MEMORY_TARGET,
        "load_errors": errors,
    }


def _rounds(results: Sequence[LoadResult]) -> str:
    return ", ".join(f"{r.messages_per_s:,.0f} ({r.server_cpu:.2f})" for r in results)


def render_markdown(
    command: str,
    args: argparse.Namespace,
    throughput: dict[str, list[LoadResult]],
    memory: dict[str, MemoryResult],
    summary: dict[str, float | bool],
) -> str:
    """The report: settings, one table with medians, ratios and verdicts, raw rounds."""
    bare, gateway = throughput["bare"], throughput["gateway"]

    def verdict(passed: float | bool) -> str:
        return "PASS" if passed else "FAIL"

    def row(label: str, field: str, fmt: str) -> str:
        bare_value, gateway_value = _median(bare, field), _median(gateway, field)
        ratio = _ratio(gateway_value, bare_value)
        return f"| {label} | {bare_value:{fmt}} | {gateway_value:{fmt}} | {ratio:.2f} | | |"

    kib = {name: result.per_connection / 1024 for name, result in memory.items()}
    lines = [
        "## Echo: rtctl gateway vs bare websockets",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"websockets {websockets_version}, {platform.platform()}. Load client in the "
        f"same process as this script: {args.connections} connections, window "
        f"{args.window}, {args.payload_bytes}-byte payload, {args.warmup:g} s warm-up + "
        f"{args.duration:g} s measured, {args.rounds} rounds alternating; memory with "
        f"{args.idle} idle connections on fresh servers.",
        "",
        "| metric | bare websockets | rtctl gateway | gateway / bare | target | result |",
        "| --- | ---: | ---: | ---: | --- | --- |",
        f"| throughput, msg/s (median) | {summary['bare_messages_per_s']:,.0f} "
        f"| {summary['gateway_messages_per_s']:,.0f} | {summary['throughput_ratio']:.2f} "
        f"| >= {THROUGHPUT_TARGET} | {verdict(summary['throughput_pass'])} |",
        f"| memory per idle connection, KiB | {kib['bare']:.1f} | {kib['gateway']:.1f} "
        f"| {summary['memory_ratio']:.2f} | <= {MEMORY_TARGET} "
        f"| {verdict(summary['memory_pass'])} |",
        row("latency p50, ms (median)", "p50_ms", ".2f"),
        row("latency p99, ms (median)", "p99_ms", ".2f"),
        row("msg per server CPU-second (median)", "messages_per_server_cpu_s", ",.0f"),
        row("server CPU, cores (median)", "server_cpu", ".2f"),
        row("load client CPU, cores (median)", "client_cpu", ".2f"),
        f"| load errors (total) | {sum(r.errors for r in bare)} "
        f"| {sum(r.errors for r in gateway)} | | 0 | {verdict(not summary['load_errors'])} |",
        "",
        "Rounds, msg/s (server CPU in cores; well under 1.0 means the machine was busy "
        f"with other work): bare {_rounds(bare)}; gateway {_rounds(gateway)}.",
    ]
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Compare the rtctl gateway's JSON-RPC echo with a bare websockets echo."
    )
    parser.add_argument("--rounds", type=int, default=5, help="throughput runs per server, 5")
    parser.add_argument("--connections", type=int, default=100, help="default %(default)s")
    parser.add_argument("--duration", type=parse_seconds, default=5.0, help="measured, 5s")
    parser.add_argument("--warmup", type=parse_seconds, default=1.0, help="per run, 1s")
    parser.add_argument(
        "--window", type=int, default=4, help="outstanding requests per connection, 4"
    )
    parser.add_argument("--payload-bytes", type=int, default=32, help="echoed string, 32")
    parser.add_argument("--idle", type=int, default=2000, help="idle connections, 2000")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the raw numbers here")
    parser.add_argument(
        "--gateway-cmd",
        type=shlex.split,
        metavar="CMD",
        help="gateway command line instead of `python -m rtctl serve ...`",
    )
    parser.add_argument(
        "--token-cmd",
        type=shlex.split,
        metavar="CMD",
        help="prints the token for ?token=, instead of `python -m rtctl token ...`; '' for none",
    )
    return parser.parse_args()


async def main() -> int:
    args = parse_args()
    command = shlex.join(["python", *sys.argv])
    raise_nofile_limit()  # for the idle connections, here and in the servers started later
    most_connections = max(args.connections, args.idle) + PRIME_CONNECTIONS
    gateway = await gateway_spec(args.gateway_cmd, args.token_cmd, most_connections)
    specs = [bare_spec(), gateway]
    throughput = await measure_throughput(specs, args)
    memory = {spec.name: await measure_memory(spec, args.idle) for spec in specs}
    summary = summarize(throughput, memory)
    print(render_markdown(command, args, throughput, memory, summary))
    if args.json is not None:
        raw = {
            "command": command,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "websockets": websockets_version,
            "summary": summary,
            "throughput": {name: [asdict(r) for r in runs] for name, runs in throughput.items()},
            "memory": {
                name: {**asdict(result), "per_connection": result.per_connection}
                for name, result in memory.items()
            },
        }
        args.json.write_text(json.dumps(raw, indent=2) + "\n")
    passed = summary["throughput_pass"] and summary["memory_pass"] and not summary["load_errors"]
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
