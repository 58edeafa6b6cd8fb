"""The light client ``routing.py`` measures with, and what it reads off the gateway.

:class:`Member` is a picows listener (one per connection, all on one uvloop, as in
``fanout_cpu.py`` and ``large_room.py``): it times its ``sys.ping`` calls, keeps the
JSON-RPC errors it is answered, counts the ``room.message`` notifications and payload
bytes it receives (a JSON-RPC batch array of notifications counts each of its members,
JSON-RPC 2.0 §6), and with ``parse`` on, each message's delivery latency from the send
time its publisher put in ``data.t`` (one process, one ``perf_counter``). With ``parse``
off (the 1,000-member fan-out) it only counts ``"room.message"`` in each frame, so that
the client costs little beside the server it measures.

:func:`gateway` starts ``rtctl serve`` with extra flags (:func:`rtctl.bench.embedded.
embedded_gateway`); :func:`scrape` reads its ``/metrics`` once (no token needed).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import statistics
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect
from picows.url import WSParsedURL
from prometheus_client.parser import text_string_to_metric_families

from rtctl.bench.embedded import embedded_gateway
from rtctl.bench.plan import TokenPlan
from rtctl.client.endpoint import endpoint_url, http_url

__all__ = ["Gateway", "Member", "connect", "gateway", "paced", "percentile_ms",
           "quiet", "scrape"]

_MESSAGE = b'"room.message"'
_CALL_TIMEOUT = 30.0


@dataclass(frozen=True)
class Gateway:
    """A started ``rtctl serve``: its base URL, PID and a token per user."""

    url: str
    pid: int
    tokens: TokenPlan

    @property
    def metrics_url(self) -> str:
        return http_url(self.url, "/metrics")


@contextlib.contextmanager
def gateway(flags: Sequence[str], *, transport: str, connections: int = 100) -> Iterator[Gateway]:
    """``rtctl serve --transport transport`` with ``flags`` (warnings only on its log:
    nobody reads it live)."""
    with embedded_gateway(connections=connections, flags=[
            "--log-level", "warning", "--transport", transport, *flags]) as started:
        yield Gateway(started.url, started.pid, TokenPlan(secret=started.secret))


def scrape(url: str) -> dict[tuple[str, str], float]:
    """One ``GET /metrics``: each sample by name and its one label's value ('' without)."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = bytes(response.read()).decode()
    return {(sample.name, next(iter(sample.labels.values()), "")): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def percentile_ms(seconds: Sequence[float], q: int) -> float:
    """The ``q``-th percentile of ``seconds``, in ms (NaN when there is nothing)."""
    if len(seconds) < 2:
        return 1000 * seconds[0] if seconds else float("nan")
    return 1000 * statistics.quantiles(seconds, n=100, method="inclusive")[q - 1]


@dataclass
class Window:
    """What one member received and was answered since :meth:`Member.start_window`."""

    bytes: int = 0  # every text frame's payload
    frames: int = 0  # frames holding room.message notifications (batches too)
    messages: int = 0  # room.message notifications
    message_bytes: int = 0  # payload of the frames holding them
    latencies: list[float] = field(default_factory=list)
    rtts: list[float] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


class Member(WSListener):
    """One connection: see the module docstring."""

    def __init__(self, *, parse: bool) -> None:
        self.parse = parse
        self.transport: WSTransport | None = None
        self.window = Window()
        self.recording = False
        self.next_id = 1
        self.pings: dict[int, float] = {}  # id → sent at, until answered
        self.calls: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.close_code: int | None = None
        self.last_frame = 0.0  # when the last text frame came (perf_counter)

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            self.close_code = int(frame.get_close_code().value)
            return
        if frame.msg_type != WSMsgType.TEXT:
            return
        payload = frame.get_payload_as_bytes()
        self.last_frame = time.perf_counter()
        carries = _MESSAGE in payload
        if self.recording:
            self.window.bytes += len(payload)
            if carries:
                self.window.frames += 1
                self.window.messages += payload.count(_MESSAGE)
                self.window.message_bytes += len(payload)
        if carries and not self.parse:
            return
        now = time.perf_counter()
        decoded = orjson.loads(payload)
        for message in decoded if isinstance(decoded, list) else (decoded,):
            self._received(message, now)

    def _received(self, message: dict[str, Any], now: float) -> None:
        if "method" in message:
            if message["method"] == "room.message" and self.recording:
                sent = message["params"]["data"].get("t")
                if sent is not None:
                    self.window.latencies.append(now - sent)
            return
        ident = message.get("id", 0)
        if (future := self.calls.pop(ident, None)) is not None:
            future.set_result(message)
        elif (sent_at := self.pings.pop(ident, None)) is not None and self.recording:
            if "error" in message:
                self.window.errors.append(message["error"])
            else:
                self.window.rtts.append(now - sent_at)

    def start_window(self) -> None:
        self.window, self.recording = Window(), True

    def send(self, message: dict[str, Any]) -> None:
        assert self.transport is not None
        self.transport.send(WSMsgType.TEXT, orjson.dumps(message))

    def _request(self, method: str, params: Any) -> int:
        ident, self.next_id = self.next_id, self.next_id + 1
        request = {"jsonrpc": "2.0", "method": method, "id": ident}
        if params is not None:  # JSON-RPC 2.0 §4.2: params omitted, never null
            request["params"] = params
        self.send(request)
        return ident

    async def call(self, method: str, params: Any) -> dict[str, Any]:
        """Send a request and wait for its reply (an error reply is a ``RuntimeError``)."""
        future = asyncio.get_running_loop().create_future()
        self.calls[self._request(method, params)] = future
        reply: dict[str, Any] = await asyncio.wait_for(future, _CALL_TIMEOUT)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply

    def ping(self) -> None:
        self.pings[self._request("sys.ping", None)] = time.perf_counter()

    def unanswered(self, since: float) -> list[float]:
        """How long each ping sent after ``since`` and still unanswered has waited so far."""
        now = time.perf_counter()
        return [now - sent for sent in self.pings.values() if sent >= since]

    def pause_reading(self) -> None:
        """Stop reading the socket: the kernel's buffers fill, then the gateway's outbox."""
        assert self.transport is not None
        self.transport.underlying_transport.pause_reading()


def _small_receive_buffer(size: int) -> Callable[[WSParsedURL], socket.socket]:
    """A socket whose receive buffer is ``size`` bytes (the kernel doubles it, and stops
    growing it: socket(7) SO_RCVBUF), so a paused reader fills it at once."""

    def make(_: WSParsedURL) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
        return sock

    return make


async def connect(gw: Gateway, user: str, *, parse: bool = True,
                  receive_buffer: int | None = None) -> Member:
    """A member connected as ``user`` (a distinct user: no per-user connection limit)."""
    token = gw.tokens.for_user(user)
    _, member = await ws_connect(
        lambda: Member(parse=parse), endpoint_url(gw.url),
        extra_headers={"Authorization": f"Bearer {token}"}, websocket_handshake_timeout=30,
        socket_factory=None if receive_buffer is None else _small_receive_buffer(receive_buffer))
    assert isinstance(member, Member)
    return member


async def quiet(members: Sequence[Member], *, for_s: float, timeout: float) -> None:
    """Until no member got a frame for ``for_s`` s (a join storm's room.diffs are out)."""
    deadline = time.perf_counter() + timeout
    while (now := time.perf_counter()) < deadline:
        idle = now - max(member.last_frame for member in members)
        if idle >= for_s:
            return
        await asyncio.sleep(for_s - idle)  # until the earliest moment it can be quiet


async def paced(every: float, until: asyncio.Event, step: Callable[[int], None]) -> None:
    """``step(i)`` every ``every`` s on an absolute schedule (late steps catch up at once),
    until ``until`` is set: an open loop, so a slow gateway cannot slow the load down."""
    started, index = time.perf_counter(), 0
    while not until.is_set():
        step(index)
        index += 1
        delay = started + index * every - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)  # the load's pace, not synchronisation
