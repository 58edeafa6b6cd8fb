"""The dispatch core, sans-I/O: one received text in, the bytes (or the work) to send out.

Real Router, GatewayMetrics, Tap, StageProfiler and Connection; the transport is
a recording fake and the clocks are scripted, so every number is exact.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar

import orjson
import pytest

from rtctl.exceptions import RpcError
from rtctl.gateway.auth import Identity
from rtctl.gateway.connection import Connection, ConnectionState
from rtctl.gateway.dispatch import Deferred, Dispatcher, Sample, Timed
from rtctl.gateway.metrics import GatewayMetrics
from rtctl.profiler.stages import QueueDepths, StageProfiler
from rtctl.protocol.tap import IN, OUT, FrameSeen, Subscribed
from rtctl.router import CallContext, Router
from rtctl.tap import Tap

T = TypeVar("T")

NO_QUEUES = QueueDepths(connections=0, outboxes=0, queued_messages=0, queued_bytes=0,
                        max_queued_messages=0)
NEVER = 10**9  # a profiler countdown no test reaches


def build_router() -> Router:
    router = Router()

    @router.method("math.subtract")
    def subtract(minuend: int, subtrahend: int) -> int:
        return minuend - subtrahend

    @router.method("whoami")
    def whoami(ctx: CallContext) -> str:
        return ctx.user

    @router.method("echo")
    def echo(*args: Any) -> list[Any]:
        return list(args)

    @router.method("log")
    def log(text: str) -> None:
        pass

    @router.method("slow.add")
    async def add(a: int, b: int) -> int:
        return a + b

    @router.method("slow.refuse")
    async def slow_refuse() -> None:
        raise RpcError(-32003, "Forbidden")

    @router.method("game.refuse")
    def refuse() -> None:
        raise RpcError(-32003, "Forbidden", {"why": "not admin"})

    @router.method("game.crash")
    def crash() -> None:
        raise RuntimeError("boom")

    @router.method("game.opaque")
    def opaque() -> object:
        return object()

    @router.method("shop.sell")
    def sell() -> None:
        raise RpcError(4001, "sold out", {"items": {"sword", "shield"}})  # data not JSON

    return router


class FakeTransport:
    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed: list[tuple[int, str]] = []

    def send(self, data: bytes, binary: bool = False) -> bool:
        self.sent.append(data)
        return True

    def close(self, code: int, reason: str) -> None:
        self.closed.append((code, reason))

    def queued(self) -> tuple[int, int] | None:
        return None


class Script:
    """A clock that answers the given readings in order and fails on one call too many."""

    def __init__(self, *readings: Any) -> None:
        self.readings = list(readings)
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        assert self.readings, f"the clock was read more than the {self.calls - 1} times expected"
        return self.readings.pop(0)


class Tick:
    """A clock that moves ``step`` at every reading (``step`` exact in binary)."""

    def __init__(self, start: Any, step: Any) -> None:
        self.now, self.step, self.calls = start, step, 0

    def __call__(self) -> Any:
        self.calls += 1
        reading, self.now = self.now, self.now + self.step
        return reading


@dataclass
class Harness:
    dispatcher: Dispatcher
    conn: Connection
    metrics: GatewayMetrics
    tap: Tap
    tap_clock: Tick
    profiler: StageProfiler
    perf: Any
    perf_ns: Any


def harness(monkeypatch: pytest.MonkeyPatch, *, first: int = NEVER, every: int = NEVER,
            perf: Any = None, perf_ns: Any = None) -> Harness:
    router = build_router()
    metrics = GatewayMetrics(set(router.methods), lambda: 1)
    tap_clock = Tick(1_000_000, 10)
    tap = Tap(clock_us=tap_clock)
    profiler = StageProfiler(every, known_methods=set(router.methods))
    monkeypatch.setattr(profiler, "first_countdown", lambda: first)
    perf = perf if perf is not None else Tick(100.0, 0.25)
    perf_ns = perf_ns if perf_ns is not None else Tick(0, 1000)
    dispatcher = Dispatcher(router, metrics, tap, profiler, perf_counter=perf,
                            perf_counter_ns=perf_ns)
    identity = Identity(user="alice", claims=MappingProxyType({"sub": "alice"}),
                        expires_at=None)
    conn = Connection(id="c-1", identity=identity, remote_address="10.0.0.7:5555",
                      local_address="127.0.0.1:8765", connected_at=1.0, subprotocol="rtctl.v1",
                      transport=FakeTransport(), state=ConnectionState.OPEN)
    return Harness(dispatcher, conn, metrics, tap, tap_clock, profiler, perf, perf_ns)


def settle(pending: Awaitable[T]) -> T:
    async def wait() -> T:
        return await pending

    return asyncio.run(wait())


def request(method: str, params: Any = None, id: Any = 1) -> str:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": id}
    if params is not None:
        message["params"] = params
    return orjson.dumps(message).decode()


def notification(method: str, params: Any = None) -> str:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    return orjson.dumps(message).decode()


def result(value: Any, id: Any = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "result": value, "id": id}


# ---------------------------------------------------------------------------
# One message in, the reply out (the fast path: bytes, or None)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        pytest.param(request("math.subtract", [42, 23]), result(19), id="positional"),
        pytest.param(request("math.subtract", {"subtrahend": 23, "minuend": 42}, "a"),
                     result(19, "a"), id="named-string-id"),
        pytest.param(request("whoami", id=None), result("alice", None), id="context-null-id"),
        pytest.param(request("echo", ["héllo ✓"], 2.5), result(["héllo ✓"], 2.5),
                     id="non-ascii-float-id"),
        pytest.param(request("game.refuse", id=7),
                     {"jsonrpc": "2.0", "id": 7,
                      "error": {"code": -32003, "message": "Forbidden",
                                "data": {"why": "not admin"}}},
                     id="rpc-error"),
        pytest.param('{"jsonrpc": "2.0", "method": "m", "params": 3, "id": 4}',
                     {"jsonrpc": "2.0", "id": 4,
                      "error": {"code": -32600,
                                "message": 'Invalid Request: "params" must be an array or an '
                                           "object"}},
                     id="invalid-request-keeps-id"),
        pytest.param("42",
                     {"jsonrpc": "2.0", "id": None,
                      "error": {"code": -32600, "message": "Invalid Request: not an object"}},
                     id="invalid-request-not-object"),
        pytest.param("[]",
                     {"jsonrpc": "2.0", "id": None,
                      "error": {"code": -32600, "message": "Invalid Request: empty batch"}},
                     id="empty-batch-one-object"),
        pytest.param(request("nope", id=3),
                     {"jsonrpc": "2.0", "id": 3,
                      "error": {"code": -32601, "message": "Method not found: nope"}},
                     id="unknown-method"),
        pytest.param(request("rpc.discover", id=3),
                     {"jsonrpc": "2.0", "id": 3,
                      "error": {"code": -32601,
                                "message": "Method not found: rpc.discover (reserved name)"}},
                     id="reserved-method"),
    ],
)
def test_a_request_gets_its_exact_reply(monkeypatch: pytest.MonkeyPatch, text: str,
                                        reply: dict[str, Any]) -> None:
    h = harness(monkeypatch)
    out = h.dispatcher.receive(h.conn, text)
    assert isinstance(out, bytes)
    assert orjson.loads(out) == reply
    assert h.perf_ns.calls == 0  # not sampled: the nanosecond clock is never read


@pytest.mark.parametrize(
    ("text", "code", "reply_id", "fragment"),
    [
        pytest.param("{", -32700, None, "Parse error: ", id="parse-error"),
        pytest.param('{"jsonrpc": "2.0", "method": "log", "id": 1', -32700, None,
                     "Parse error: ", id="parse-error-truncated"),
        pytest.param("NaN", -32700, None, "Parse error: ", id="parse-error-nan"),
        pytest.param(request("math.subtract", {"minuend": 1}, 5), -32602, 5, "'subtrahend'",
                     id="missing-param"),
        pytest.param(request("math.subtract", [1, "x"], 6), -32602, 6,
                     "'subtrahend' must be integer, got string", id="wrong-type-param"),
        pytest.param(request("math.subtract", {"minuend": 1, "subtrahend": 2, "extra": 3}, 8),
                     -32602, 8, "'extra'", id="unexpected-param"),
    ],
)
def test_error_replies(monkeypatch: pytest.MonkeyPatch, text: str, code: int, reply_id: Any,
                       fragment: str) -> None:
    h = harness(monkeypatch)
    out = h.dispatcher.receive(h.conn, text)
    assert isinstance(out, bytes)
    reply = orjson.loads(out)
    assert set(reply) == {"jsonrpc", "error", "id"}
    assert reply["id"] == reply_id
    assert reply["error"]["code"] == code
    assert fragment in reply["error"]["message"]
    assert h.metrics.rpc_errors == Counter({code: 1})


@pytest.mark.parametrize(
    ("method", "reply_id"),
    [pytest.param("game.crash", 9, id="handler-raised"),
     pytest.param("game.opaque", "x", id="result-not-json")],
)
def test_internal_errors_carry_a_correlation_id(monkeypatch: pytest.MonkeyPatch, method: str,
                                                reply_id: Any) -> None:
    h = harness(monkeypatch)
    out = h.dispatcher.receive(h.conn, request(method, id=reply_id))
    assert isinstance(out, bytes)
    reply = orjson.loads(out)
    assert reply["id"] == reply_id
    error = reply["error"]
    assert (error["code"], error["message"]) == (-32603, "Internal error")
    correlation_id = error["data"]["correlation_id"]
    assert len(correlation_id) == 16
    int(correlation_id, 16)  # hex
    assert "boom" not in out.decode()  # the exception never reaches the client
    assert h.metrics.rpc_errors == Counter({-32603: 1})
    # a result that could not be encoded is a failed call too, not an "ok" one
    assert h.metrics.call_errors == Counter({(method, -32603): 1})


@pytest.mark.parametrize(
    ("text", "failed"),
    [
        pytest.param(notification("log", ["hi"]), None, id="plain"),
        pytest.param(notification("nope"), ("<unknown>", -32601), id="unknown-method"),
        pytest.param(notification("log", [1]), ("log", -32602), id="bad-params"),
        pytest.param(notification("game.crash"), ("game.crash", -32603), id="handler-raised"),
        pytest.param(notification("game.refuse"), ("game.refuse", -32003), id="rpc-error"),
        pytest.param(notification("game.opaque"), None, id="result-not-json"),  # never encoded
    ],
)
def test_a_notification_is_never_answered(monkeypatch: pytest.MonkeyPatch, text: str,
                                          failed: tuple[str, int] | None) -> None:
    h = harness(monkeypatch)
    assert h.dispatcher.receive(h.conn, text) is None
    assert h.metrics.rpc_errors == Counter()  # no error reply was sent
    assert h.metrics.messages_in == 1
    # ...but a failed one is a failed call in rtctl_rpc_calls_total (player inputs are
    # notifications: the error budget must see them)
    assert h.metrics.call_errors == (Counter() if failed is None else Counter({failed: 1}))


@pytest.mark.parametrize("first", [NEVER, 1], ids=["unsampled", "sampled"])
async def test_a_failed_async_notification_is_counted_not_answered(
        monkeypatch: pytest.MonkeyPatch, first: int) -> None:
    h = harness(monkeypatch, first=first, every=1)
    out = h.dispatcher.receive(h.conn, notification("slow.refuse"))
    assert isinstance(out, Deferred)
    answered = await out.pending
    assert (answered.data if isinstance(answered, Timed) else answered) is None
    assert h.metrics.call_errors == Counter({("slow.refuse", -32003): 1})
    assert h.metrics.rpc_errors == Counter()


def test_a_failed_sampled_notification_is_counted_not_answered(
        monkeypatch: pytest.MonkeyPatch) -> None:
    h = harness(monkeypatch, first=1, every=1)
    out = h.dispatcher.receive(h.conn, notification("game.crash"))
    assert isinstance(out, Timed)
    assert out.data is None
    assert h.metrics.call_errors == Counter({("game.crash", -32603): 1})


async def test_a_failed_notification_in_a_batch_is_counted_not_answered(
        monkeypatch: pytest.MonkeyPatch) -> None:
    h = harness(monkeypatch)
    out = h.dispatcher.receive(h.conn, "[" + ",".join(
        [notification("game.crash"), request("math.subtract", [5, 3], 1)]) + "]")
    assert isinstance(out, Deferred)
    reply = await out.pending
    assert isinstance(reply, bytes)
    assert orjson.loads(reply) == [result(2, 1)]
    assert h.metrics.call_errors == Counter({("game.crash", -32603): 1})


# ---------------------------------------------------------------------------
# Deferred: async handlers (unordered) and batches (ordered)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("texts", "replies"),
    [
        pytest.param([request("math.subtract", [5, 3], 1), notification("log", ["x"]), "7",
                      request("nope", id=2), request("slow.add", [1, 2], 3),
                      request("whoami", id=4)],
                     [result(2, 1),
                      {"jsonrpc": "2.0", "id": None,
                       "error": {"code": -32600, "message": "Invalid Request: not an object"}},
                      {"jsonrpc": "2.0", "id": 2,
                       "error": {"code": -32601, "message": "Method not found: nope"}},
                      result(3, 3), result("alice", 4)],
                     id="mixed-in-order"),
        pytest.param([request("slow.add", [1, 1], "a"), request("math.subtract", [1, 1], "b")],
                     [result(2, "a"), result(0, "b")], id="async-first-stays-first"),
        pytest.param(["1", "2"],
                     [{"jsonrpc": "2.0", "id": None,
                       "error": {"code": -32600, "message": "Invalid Request: not an object"}}]
                     * 2,
                     id="all-invalid-is-an-array"),
        pytest.param([notification("log", ["a"]), notification("slow.add", [1, 2])], None,
                     id="only-notifications"),
    ],
)
def test_a_batch_is_an_ordered_deferred(monkeypatch: pytest.MonkeyPatch, texts: list[str],
                                        replies: list[dict[str, Any]] | None) -> None:
    h = harness(monkeypatch)
    out = h.dispatcher.receive(h.conn, "[" + ",".join(texts) + "]")
    assert isinstance(out, Deferred)
    assert out.ordered is True
    data = settle(out.pending)
    if replies is None:
        assert data is None
    else:
        assert isinstance(data, bytes)
        assert orjson.loads(data) == replies


@pytest.mark.parametrize(
    ("text", "method", "reply"),
    [
        pytest.param(request("slow.add", [2, 3], 11), "slow.add", result(5, 11), id="result"),
        pytest.param(request("slow.refuse", id=12), "slow.refuse",
                     {"jsonrpc": "2.0", "id": 12,
                      "error": {"code": -32003, "message": "Forbidden"}}, id="rpc-error"),
        pytest.param(notification("slow.add", [2, 3]), "slow.add", None, id="notification"),
    ],
)
def test_an_async_handler_is_an_unordered_deferred(monkeypatch: pytest.MonkeyPatch, text: str,
                                                   method: str,
                                                   reply: dict[str, Any] | None) -> None:
    h = harness(monkeypatch)  # the perf clock moves 0.25 s per reading
    out = h.dispatcher.receive(h.conn, text)
    assert isinstance(out, Deferred)
    assert out.ordered is False
    assert h.metrics.calls == {}  # observed once the call finished, not before
    data = settle(out.pending)
    assert not isinstance(data, Timed)
    assert (None if data is None else orjson.loads(data)) == reply
    assert h.metrics.calls[method].count == 1
    assert h.metrics.calls[method].total == 0.25


# ---------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [
        pytest.param(request("echo", ["abc"]), None, id="ascii"),
        pytest.param(request("echo", ["héllo"]), None, id="latin"),
        pytest.param(request("echo", ["✓ 🎮"]), None, id="bmp-and-astral"),
        pytest.param('{"jsonrpc":"2.0","method":"echo","params":["é"],"id":1}', 56,
                     id="two-byte-char-counted-twice"),
    ],
)
def test_bytes_in_are_utf8_bytes(monkeypatch: pytest.MonkeyPatch, text: str,
                                 size: int | None) -> None:
    h = harness(monkeypatch)
    h.dispatcher.receive(h.conn, text)
    h.dispatcher.receive(h.conn, text)
    assert h.metrics.messages_in == 2
    assert h.metrics.bytes_in == 2 * len(text.encode("utf-8"))
    if size is not None:
        assert len(text) == size - 1
        assert h.metrics.bytes_in == 2 * size


def test_metrics_count_messages_errors_and_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    h = harness(monkeypatch)  # the perf clock moves 0.25 s per reading: each call takes 0.25 s
    texts = [request("math.subtract", [3, 1]), request("math.subtract", [3]),
             request("nope"), request("made.up"), notification("log", ["x"]), "{", "[]",
             request("game.refuse"), request("game.opaque")]
    for text in texts:
        h.dispatcher.receive(h.conn, text)
    m = h.metrics
    assert m.messages_in == len(texts)
    assert m.bytes_in == sum(len(t) for t in texts)
    assert m.rpc_errors == Counter({-32602: 1, -32601: 2, -32700: 1, -32600: 1, -32003: 1,
                                    -32603: 1})
    assert {method: hist.count for method, hist in m.calls.items()} == {
        "math.subtract": 2, "<unknown>": 2, "log": 1, "game.refuse": 1, "game.opaque": 1}
    assert m.calls["math.subtract"].total == 0.5
    assert (m.messages_out, m.bytes_out) == (0, 0)  # receive never counts what goes out


def test_a_batch_counts_one_message_and_every_call(monkeypatch: pytest.MonkeyPatch) -> None:
    h = harness(monkeypatch)
    out = h.dispatcher.receive(h.conn, "[" + ",".join(
        [request("math.subtract", [1, 1], 1), request("slow.add", [1, 1], 2), "0",
         request("nope", id=3)]) + "]")
    assert isinstance(out, Deferred)
    settle(out.pending)
    assert h.metrics.messages_in == 1
    assert {method: hist.count for method, hist in h.metrics.calls.items()} == {
        "math.subtract": 1, "slow.add": 1, "<unknown>": 1}
    assert h.metrics.rpc_errors == Counter({-32600: 1, -32601: 1})


@pytest.mark.parametrize(("step", "others_ran"), [
    pytest.param(0.25, 4, id="each-item-past-the-slice-yields"),  # the clock moves 0.25 a read
    pytest.param(0.0, 0, id="within-the-slice-never-yields"),
])
def test_a_long_batch_lets_other_connections_run(monkeypatch: pytest.MonkeyPatch, step: float,
                                                 others_ran: int) -> None:
    h = harness(monkeypatch, perf=Tick(100.0, step))
    out = h.dispatcher.receive(h.conn, "[" + ",".join(
        request("math.subtract", [i, 1], i) for i in range(4)) + "]")
    assert isinstance(out, Deferred)

    async def run() -> tuple[int, Any]:
        ran = 0

        async def bystander() -> None:
            nonlocal ran
            while True:
                await asyncio.sleep(0)
                ran += 1

        task = asyncio.get_running_loop().create_task(bystander())
        await asyncio.sleep(0)  # the bystander is waiting on the loop now
        ran = 0
        reply = await out.pending
        task.cancel()
        return ran, reply

    ran, reply = asyncio.run(run())
    assert ran == others_ran
    assert [r["result"] for r in orjson.loads(reply)] == [-1, 0, 1, 2]


def test_a_batch_over_the_limit_is_one_error(monkeypatch: pytest.MonkeyPatch) -> None:
    h = harness(monkeypatch)
    h.dispatcher.max_batch = 2
    out = h.dispatcher.receive(h.conn, "[" + ",".join([request("math.subtract", [1, 1])] * 3)
                               + "]")
    assert isinstance(out, bytes)
    reply = orjson.loads(out)
    assert reply["id"] is None
    assert reply["error"]["code"] == -32600
    assert "limit of 2" in reply["error"]["message"]
    assert h.metrics.calls == {}  # not one element was called


@pytest.mark.parametrize(
    ("datas", "messages", "size"),
    [
        pytest.param([], 0, 0, id="nothing"),
        pytest.param([b'{"jsonrpc":"2.0","result":1,"id":1}'], 1, 35, id="one"),
        pytest.param([b"abc", "é".encode(), b""], 3, 5, id="bytes-not-chars"),
    ],
)
def test_sent_counts_messages_and_bytes_out(monkeypatch: pytest.MonkeyPatch, datas: list[bytes],
                                            messages: int, size: int) -> None:
    h = harness(monkeypatch)
    for data in datas:
        h.dispatcher.sent(h.conn, data)
    assert (h.metrics.messages_out, h.metrics.bytes_out) == (messages, size)
    assert (h.metrics.messages_in, h.metrics.bytes_in) == (0, 0)


# ---------------------------------------------------------------------------
# The tap
# ---------------------------------------------------------------------------


def test_frames_in_and_out_reach_a_subscriber(monkeypatch: pytest.MonkeyPatch) -> None:
    h = harness(monkeypatch)
    subscription = h.tap.subscribe()
    text = request("echo", ["é"], 5)
    out = h.dispatcher.receive(h.conn, text)
    assert isinstance(out, bytes)
    h.dispatcher.sent(h.conn, out)
    subscribed, frame_in, frame_out = subscription.take()
    assert isinstance(subscribed, Subscribed)
    assert frame_in == FrameSeen(t_us=1_000_010, conn="c-1", user="alice", direction=IN,
                                 size=len(text.encode()), kind="request", method="echo", id=5,
                                 error=None, payload=text)
    assert frame_out == FrameSeen(t_us=1_000_020, conn="c-1", user="alice", direction=OUT,
                                  size=len(out), kind="result", method=None, id=5, error=None,
                                  payload=out.decode())
    assert subscription.take() == []


def test_an_error_frame_out_names_its_code(monkeypatch: pytest.MonkeyPatch) -> None:
    h = harness(monkeypatch)
    subscription = h.tap.subscribe()
    out = h.dispatcher.receive(h.conn, "{")
    assert isinstance(out, bytes)
    h.dispatcher.sent(h.conn, out)
    frames = [e for e in subscription.take() if isinstance(e, FrameSeen)]
    assert [(f.direction, f.kind, f.error) for f in frames] == [
        (IN, "invalid", None), (OUT, "error", -32700)]


@pytest.mark.parametrize(
    "subscribe_and_leave",
    [pytest.param(False, id="never-subscribed"), pytest.param(True, id="subscriber-left")],
)
def test_nobody_listening_builds_nothing(monkeypatch: pytest.MonkeyPatch,
                                         subscribe_and_leave: bool) -> None:
    h = harness(monkeypatch)
    if subscribe_and_leave:
        with h.tap.subscribe():
            pass
    assert h.tap.active is False
    readings = h.tap_clock.calls

    def no_frame(*args: Any) -> None:
        raise AssertionError("a frame was built with nobody listening")

    monkeypatch.setattr(h.tap, "frame", no_frame)
    out = h.dispatcher.receive(h.conn, request("echo", [1]))
    assert isinstance(out, bytes)
    h.dispatcher.sent(h.conn, out)
    assert h.tap_clock.calls == readings  # not even the time was read


# ---------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "method", "reply"),
    [
        pytest.param(request("math.subtract", [9, 4]), "math.subtract", result(5),
                     id="request"),
        pytest.param(notification("log", ["x"]), "log", None, id="notification"),
        pytest.param(request("nope"), "nope", {"jsonrpc": "2.0", "id": 1, "error": {
            "code": -32601, "message": "Method not found: nope"}}, id="unknown-method"),
    ],
)
def test_a_sampled_message_is_timed_exactly(monkeypatch: pytest.MonkeyPatch, text: str,
                                            method: str, reply: dict[str, Any] | None) -> None:
    # decode: 100 -> 350 ns; handler: 2.0 -> 2.5 s; encode: 1000 -> 1600 ns.
    perf, perf_ns = Script(2.0, 2.5), Script(100, 350, 1000, 1600)
    h = harness(monkeypatch, first=1, every=1, perf=perf, perf_ns=perf_ns)
    out = h.dispatcher.receive(h.conn, text)
    assert isinstance(out, Timed)
    assert (None if out.data is None else orjson.loads(out.data)) == reply
    sample = out.sample
    assert isinstance(sample, Sample)
    assert (sample.method, sample.decode_ns, sample.handler_ns, sample.encode_ns) == (
        method, 250, 500_000_000, 600)
    assert perf.readings == []  # both clocks were read exactly as scripted
    assert perf_ns.readings == []
    assert h.metrics.calls[method if method in h.dispatcher.router else "<unknown>"].total == 0.5

    h.dispatcher.record(sample, 7_000)
    document = h.profiler.snapshot(NO_QUEUES)
    assert document["sampled"] == 1
    label = method if method in h.dispatcher.router else "<unknown>"
    stages = document["methods"][label]
    assert stages["decode"]["count"] == 1
    assert stages["decode"]["total_us"] == pytest.approx(0.25)
    assert stages["handler"]["total_us"] == pytest.approx(500_000.0)
    assert stages["encode"]["total_us"] == pytest.approx(0.6)
    assert stages["write"]["total_us"] == pytest.approx(7.0)


def test_a_sampled_async_call_is_a_deferred_timed(monkeypatch: pytest.MonkeyPatch) -> None:
    perf, perf_ns = Script(1.0, 1.125), Script(0, 40, 500, 520)
    h = harness(monkeypatch, first=1, every=1, perf=perf, perf_ns=perf_ns)
    out = h.dispatcher.receive(h.conn, request("slow.add", [1, 2], 3))
    assert isinstance(out, Deferred)
    assert out.ordered is False
    timed = settle(out.pending)
    assert isinstance(timed, Timed)
    assert timed.data is not None
    assert orjson.loads(timed.data) == result(3, 3)
    assert (timed.sample.method, timed.sample.decode_ns, timed.sample.handler_ns,
            timed.sample.encode_ns) == ("slow.add", 40, 125_000_000, 20)


@pytest.mark.parametrize(
    ("first", "every", "timed"),
    [
        pytest.param(1, 1, [1, 2, 3, 4, 5, 6, 7], id="every-message"),
        pytest.param(1, 3, [1, 4, 7], id="first-then-every-third"),
        pytest.param(2, 3, [2, 5], id="starts-at-two"),
        pytest.param(3, 3, [3, 6], id="starts-at-three"),
        pytest.param(8, 8, [], id="not-yet"),
    ],
)
def test_the_countdown_picks_one_message_in_every(monkeypatch: pytest.MonkeyPatch, first: int,
                                                  every: int, timed: list[int]) -> None:
    h = harness(monkeypatch, first=first, every=every)
    got = [n for n in range(1, 8)
           if isinstance(h.dispatcher.receive(h.conn, request("echo", [n], n)), Timed)]
    assert got == timed


def test_the_real_first_countdown_is_within_every() -> None:
    profiler = StageProfiler(5, seed=1)
    starts = {profiler.first_countdown() for _ in range(200)}
    assert starts == {1, 2, 3, 4, 5}
    assert StageProfiler(1).first_countdown() == 1


# ---------------------------------------------------------------------------
# encode
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "expected", "errors"),
    [
        pytest.param(result([1, "é"], 1), result([1, "é"], 1), Counter(), id="result"),
        pytest.param(result(2**70, 1), result(2**70, 1), Counter(), id="int-beyond-64-bits"),
        pytest.param({"jsonrpc": "2.0", "error": {"code": -32001, "message": "no"}, "id": 2},
                     {"jsonrpc": "2.0", "error": {"code": -32001, "message": "no"}, "id": 2},
                     Counter({-32001: 1}), id="error-counted"),
    ],
)
def test_encode(monkeypatch: pytest.MonkeyPatch, reply: dict[str, Any], expected: dict[str, Any],
                errors: Counter[int]) -> None:
    h = harness(monkeypatch)
    data = h.dispatcher.encode(reply)
    assert isinstance(data, bytes)
    assert orjson.loads(data) == expected
    assert h.metrics.rpc_errors == errors


@pytest.mark.parametrize(
    "value",
    [pytest.param(object(), id="object"),
     pytest.param([float("nan"), 2**70], id="nan-beside-big-int"),
     pytest.param({"x": {1, 2}}, id="set")],
)
def test_encode_a_value_that_is_not_json(monkeypatch: pytest.MonkeyPatch, value: Any,
                                         caplog: pytest.LogCaptureFixture) -> None:
    h = harness(monkeypatch)
    reply = orjson.loads(h.dispatcher.encode(result(value, "q")))
    assert reply["id"] == "q"
    assert reply["error"]["code"] == -32603
    correlation_id = reply["error"]["data"]["correlation_id"]
    assert correlation_id in caplog.text  # the log line the client can quote
    assert h.metrics.rpc_errors == Counter({-32603: 1})


def test_an_error_whose_data_is_not_json_counts_once(monkeypatch: pytest.MonkeyPatch) -> None:
    h = harness(monkeypatch)
    reply = {"jsonrpc": "2.0", "error": {"code": -32001, "message": "no", "data": object()},
             "id": 3}
    assert orjson.loads(h.dispatcher.encode(reply))["error"]["code"] == -32603
    assert h.metrics.rpc_errors == Counter({-32603: 1})  # not -32001 as well


def test_a_call_whose_error_data_is_not_json_is_one_failed_call(
        monkeypatch: pytest.MonkeyPatch) -> None:
    h = harness(monkeypatch)
    out = h.dispatcher.receive(h.conn, request("shop.sell"))
    assert isinstance(out, bytes)
    assert orjson.loads(out)["error"]["code"] == -32603
    # one call, one outcome: -32603 (what was answered), not 4001 as well, and "ok" never < 0
    assert h.metrics.call_errors == Counter({("shop.sell", -32603): 1})
    samples = {(s.labels["method"], s.labels["code"]): s.value
               for family in h.metrics.collect() if family.name == "rtctl_rpc_calls"
               for s in family.samples}
    assert {key: value for key, value in samples.items() if key[0] == "shop.sell"} == {
        ("shop.sell", "ok"): 0, ("shop.sell", "-32603"): 1, ("shop.sell", "-32050"): 0,
        ("shop.sell", "-32602"): 0}
