"""A deliberately cheap WebSocket load client for echo benchmarks.

On a 2-core machine the load client shares the CPU with the server it measures,
so every microsecond it spends per message is taken from the server. This client
therefore skips the ``websockets`` client and speaks just enough RFC 6455 on raw
asyncio Protocols:

* the HTTP upgrade is written by hand (random ``Sec-WebSocket-Key``, a ``101``
  status and the matching ``Sec-WebSocket-Accept`` are checked);
* each connection pre-builds one masked text frame (clients must mask, RFC 6455
  §5.3) holding the JSON-RPC request
  ``{"jsonrpc":"2.0","method":"sys.echo","params":["xxx…"],"id":1}`` and sends
  copies of those bytes, never re-encoding or re-masking;
* server frames are parsed down to header and length only, with the simulator's
  one flat header reader (:func:`simulator.frames.frame_bounds`, stdlib only):
  complete messages are counted, frames split across TCP reads are reassembled,
  pings get a pong and a close frame ends the connection.

The load is a closed loop: each connection keeps ``window`` requests outstanding
and sends one more per response. Responses on one connection come back in order,
so a FIFO of send times gives each message's latency. Only messages received after
the warm-up are counted. Since replies are counted unread, each run first checks
one reply with the ``websockets`` client (an error reply must not pass as speed).

Library use: :func:`run_load` for a throughput run, :func:`idle_connections` to
hold N open, idle connections (to measure a server's memory per connection).
CLI: ``python benchmarks/loadgen.py ws://127.0.0.1:8765/ws --connections 100``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import resource
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from itertools import repeat
from urllib.parse import urlsplit

from websockets.asyncio.client import connect

from simulator.frames import BINARY, CLOSE, PING, PONG, TEXT, encode_frame, frame_bounds

__all__ = [
    "EchoError",
    "HandshakeError",
    "LoadResult",
    "check_echo",
    "idle_connections",
    "parse_seconds",
    "process_cpu_seconds",
    "raise_nofile_limit",
    "request_payload",
    "run_load",
]

_ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_CLOSE_NORMAL = (1000).to_bytes(2, "big")
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_CLOSE_TIMEOUT = 2.0  # seconds to wait for the server's close frame before aborting
_CHECK_TIMEOUT = 10.0  # seconds for check_echo's whole exchange


class HandshakeError(ConnectionError):
    """The server did not accept the WebSocket upgrade."""


class EchoError(RuntimeError):
    """The server's reply to a request does not echo it."""


@dataclass(frozen=True)
class _Target:
    """Where to connect and what to put in the upgrade request."""

    host: str
    port: int
    request: bytes  # the HTTP upgrade request minus the Sec-WebSocket-Key line

    @classmethod
    def from_url(cls, url: str) -> _Target:
        parts = urlsplit(url)
        if parts.scheme != "ws" or not parts.hostname:
            raise ValueError(f"expected a ws://host:port/path URL, got {url!r}")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        ).encode()
        return cls(parts.hostname, parts.port or 80, request)


@dataclass
class _Stats:
    """Counters shared by all connections of one run."""

    recording: bool = False
    messages: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)


def request_payload(payload_bytes: int) -> bytes:
    """The JSON-RPC ``sys.echo`` request whose string parameter is ``payload_bytes`` long."""
    request = {"jsonrpc": "2.0", "method": "sys.echo", "params": ["x" * payload_bytes], "id": 1}
    return json.dumps(request, separators=(",", ":")).encode()


async def check_echo(url: str, payload_bytes: int) -> None:
    """Send one request with the ``websockets`` client and check that the reply echoes it.

    The load counts replies without reading them, so a server answering every
    request with a JSON-RPC error would look fast; this catches that once per run.
    Accepted replies: the request itself (a bare echo) or a JSON-RPC response
    whose result is the request's params. Notifications (no ``id``) are skipped.
    """
    request = request_payload(payload_bytes).decode()
    params = json.loads(request)["params"]
    async with asyncio.timeout(_CHECK_TIMEOUT), connect(url, compression=None) as ws:
        await ws.send(request)
        while True:
            reply = await ws.recv()
            if reply == request:
                return
            message = json.loads(reply)
            if isinstance(message, dict) and "id" in message:
                break
    if message.get("result") != params:
        raise EchoError(f"{url} did not echo the request; it replied {reply[:300]!r}")


class _Connection(asyncio.Protocol):
    """One client WebSocket connection: upgrade, then count and answer server frames."""

    _transport: asyncio.Transport  # set by connection_made, before any other callback

    def __init__(self, target: _Target, stats: _Stats) -> None:
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self._drained: asyncio.Future[None] = loop.create_future()
        self._target = target
        self._stats = stats
        self._key = base64.b64encode(os.urandom(16))
        self._upgraded = False
        self._buffer = b""  # bytes of an incomplete handshake response or frame
        self._frame = b""  # the masked request frame, once start() was called
        self._sent: deque[float] = deque()  # send times of outstanding requests
        self._sending = False
        self._closing = False  # a close frame was sent

    # asyncio.Protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.write(self._target.request + b"Sec-WebSocket-Key: " + self._key + b"\r\n\r\n")

    def data_received(self, data: bytes) -> None:
        if self._upgraded:
            self._frames_received(data)
        else:
            self._handshake_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or HandshakeError("connection closed during upgrade"))
        elif not self._closing:
            self._stats.errors += 1
        for future in (self.closed, self._drained):
            if not future.done():
                future.set_result(None)

    # control from run_load and idle_connections

    def start(self, frame: bytes, window: int) -> None:
        """Send ``window`` copies of ``frame`` and one more for each response after that."""
        self._frame = frame
        self._sending = True
        self._sent.extend(repeat(time.perf_counter(), window))
        self._transport.write(frame * window)

    async def close(self) -> None:
        """Wait for outstanding responses, send a close frame and wait for the server to close.

        Waiting for the responses first lets the server's handler end cleanly in
        ``recv`` rather than fail in ``send``. Either wait is bounded by a timeout,
        after which the connection is aborted.
        """
        self._sending = False
        try:
            async with asyncio.timeout(_CLOSE_TIMEOUT):
                if self._sent:
                    await self._drained
                if not self._closing:
                    self._closing = True
                    self._transport.write(encode_frame(CLOSE, _CLOSE_NORMAL, mask=True))
                await self.closed
        except TimeoutError:
            self._transport.abort()

    # parsing

    def _handshake_received(self, data: bytes) -> None:
        self._buffer += data
        head, sep, rest = self._buffer.partition(b"\r\n\r\n")
        if not sep:
            return
        self._buffer = b""
        lines = head.decode("latin-1").split("\r\n")
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines[1:])
        }
        expected = base64.b64encode(hashlib.sha1(self._key + _ACCEPT_GUID).digest()).decode()
        if lines[0].split(" ", 2)[1:2] != ["101"]:
            error = HandshakeError(f"upgrade refused: {lines[0]!r}")
        elif headers.get("sec-websocket-accept") != expected:
            error = HandshakeError("wrong Sec-WebSocket-Accept in the upgrade response")
        else:
            self._upgraded = True
            self.opened.set_result(None)
            if rest:
                self._frames_received(rest)
            return
        self.opened.set_exception(error)
        self._transport.abort()

    def _frames_received(self, data: bytes) -> None:
        # The hot path: called for every TCP read, so kept flat and free of helpers.
        buf = self._buffer + data if self._buffer else data
        end = len(buf)
        pos = 0
        messages = 0
        while (bounds := frame_bounds(buf, pos)) is not None:
            first, start, stop = bounds
            if stop > end:
                break  # the rest of this frame comes in a later read
            opcode = first & 0x0F
            if opcode <= BINARY:
                messages += first >> 7  # a message ends with its FIN frame
            elif opcode == PING:
                self._transport.write(encode_frame(PONG, buf[start:stop], mask=True))
            elif opcode == CLOSE:
                self._close_received(buf[start : start + 2])
                return
            pos = stop
        self._buffer = buf[pos:] if pos < end else b""
        sent = self._sent
        count = min(messages, len(sent))  # messages the server pushed unasked are ignored
        if not count:
            return
        now = time.perf_counter()
        stats = self._stats
        if stats.recording:
            stats.messages += count
            append = stats.latencies.append
            for _ in range(count):
                append(now - sent.popleft())
        else:
            for _ in range(count):
                sent.popleft()
        if self._sending:
            sent.extend(repeat(now, count))
            self._transport.write(self._frame * count)
        elif not sent and not self._drained.done():
            self._drained.set_result(None)

    def _close_received(self, code: bytes) -> None:
        if not self._closing:  # the server closed first: answer, and count it as an error
            self._closing = True
            self._stats.errors += 1
            self._transport.write(encode_frame(CLOSE, code, mask=True))
        self._sending = False
        self._transport.close()


async def _open(url: str, count: int, stats: _Stats, concurrency: int) -> list[_Connection]:
    """Open ``count`` upgraded connections, at most ``concurrency`` handshakes at a time."""
    target = _Target.from_url(url)
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(concurrency)

    async def open_one() -> _Connection:
        async with gate:
            _, protocol = await loop.create_connection(
                lambda: _Connection(target, stats), target.host, target.port
            )
            await protocol.opened
            return protocol

    results = await asyncio.gather(*(open_one() for _ in range(count)), return_exceptions=True)
    opened = [result for result in results if isinstance(result, _Connection)]
    if len(opened) < count:
        await _close(opened)
        raise next(result for result in results if isinstance(result, BaseException))
    return opened


async def _close(connections: Sequence[_Connection]) -> None:
    await asyncio.gather(*(connection.close() for connection in connections))


@asynccontextmanager
async def idle_connections(url: str, count: int, concurrency: int = 100) -> AsyncIterator[int]:
    """Hold ``count`` upgraded connections open, sending nothing (pings are answered).

    Yields the number of open connections once all are upgraded; closes them on exit.
    """
    connections = await _open(url, count, _Stats(), concurrency)
    try:
        yield len(connections)
    finally:
        await _close(connections)


@dataclass(frozen=True)
class LoadResult:
    """What one :func:`run_load` measured, over the window after the warm-up."""

    url: str
    connections: int
    window: int
    payload_bytes: int
    seconds: float  # length of the measured window
    messages: int  # responses received in the window
    messages_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int  # connections lost or closed by the server during the run
    client_cpu: float  # this process's CPU time / wall time in the window (1.0 = one core)
    server_cpu: float | None  # the same for server_pid, when given

    @property
    def messages_per_server_cpu_s(self) -> float | None:
        """Responses per CPU-second of the server: throughput with CPU contention taken out."""
        return self.messages / (self.server_cpu * self.seconds) if self.server_cpu else None


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds used so far by process ``pid`` (from /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK  # utime, stime


def _percentile(ordered: Sequence[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


async def run_load(
    url: str,
    *,
    connections: int = 100,
    duration: float = 5.0,
    warmup: float = 1.0,
    window: int = 4,
    payload_bytes: int = 32,
    server_pid: int | None = None,
) -> LoadResult:
    """Drive ``url`` with a closed loop of echo requests and measure it.

    The reply to one request is checked first (:func:`check_echo`). Then all
    connections are opened; each sends ``window`` requests and
    replaces each response with a new request. Counting starts ``warmup`` seconds
    after the first send and lasts ``duration`` seconds. ``server_pid`` adds the
    server's CPU use over the same window to the result.
    """
    await check_echo(url, payload_bytes)
    stats = _Stats()
    payload = request_payload(payload_bytes)
    conns = await _open(url, connections, stats, concurrency=100)
    try:
        for connection in conns:
            connection.start(encode_frame(TEXT, payload, mask=True), window)
        await asyncio.sleep(warmup)
        server_cpu0 = process_cpu_seconds(server_pid) if server_pid else 0.0
        cpu0, wall0 = time.process_time(), time.perf_counter()
        stats.recording = True
        await asyncio.sleep(duration)
        stats.recording = False
        cpu1, wall1 = time.process_time(), time.perf_counter()
        server_cpu1 = process_cpu_seconds(server_pid) if server_pid else 0.0
    finally:
        await _close(conns)
    seconds = wall1 - wall0
    ordered = sorted(stats.latencies)
    return LoadResult(
        url=url,
        connections=connections,
        window=window,
        payload_bytes=payload_bytes,
        seconds=seconds,
        messages=stats.messages,
        messages_per_s=stats.messages / seconds,
        p50_ms=_percentile(ordered, 0.50) * 1e3,
        p99_ms=_percentile(ordered, 0.99) * 1e3,
        errors=stats.errors,
        client_cpu=(cpu1 - cpu0) / seconds,
        server_cpu=(server_cpu1 - server_cpu0) / seconds if server_pid else None,
    )


def raise_nofile_limit() -> int:
    """Raise this process's open-file soft limit to the hard limit; return the new limit.

    Child processes started afterwards inherit it, so one call covers a server
    started by the benchmark too.
    """
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def parse_seconds(text: str) -> float:
    """``"5"``, ``"5s"`` or ``"500ms"`` as seconds."""
    if text.endswith("ms"):
        return float(text[:-2]) / 1e3
    return float(text.removesuffix("s"))


def _cli(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Closed-loop WebSocket echo load client (JSON-RPC sys.echo requests)."
    )
    parser.add_argument("url", help="ws://host:port/path?query to load")
    parser.add_argument("--connections", type=int, default=100, help="default %(default)s")
    parser.add_argument("--duration", type=parse_seconds, default=5.0, help="measured time, 5s")
    parser.add_argument("--warmup", type=parse_seconds, default=1.0, help="unmeasured lead-in, 1s")
    parser.add_argument(
        "--window", type=int, default=4, help="outstanding requests per connection, %(default)s"
    )
    parser.add_argument(
        "--payload-bytes", type=int, default=32, help="length of the echoed string, %(default)s"
    )
    parser.add_argument("--server-pid", type=int, help="also report this process's CPU use")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = parser.parse_args(argv)
    raise_nofile_limit()
    result = asyncio.run(
        run_load(
            args.url,
            connections=args.connections,
            duration=args.duration,
            warmup=args.warmup,
            window=args.window,
            payload_bytes=args.payload_bytes,
            server_pid=args.server_pid,
        )
    )
    if args.json:
        print(json.dumps(asdict(result)))
    else:
        server = "" if result.server_cpu is None else f", server CPU {result.server_cpu:.0%}"
        print(
            f"{result.messages_per_s:,.0f} msg/s  p50 {result.p50_ms:.2f} ms  "
            f"p99 {result.p99_ms:.2f} ms  errors {result.errors}  "
            f"(client CPU {result.client_cpu:.0%}{server}; {result.connections} connections, "
            f"window {result.window}, {result.payload_bytes}-byte payload, "
            f"{result.seconds:.1f} s measured)"
        )
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(_cli())
