"""The per-connection inbound call rate (``routing.inbound_rate``, ``burst_calls``).

First the dispatch core with a clock the test sets (every figure exact), then
end to end over each transport driver: a client over its rate is told -32029
with ``data.retry_after_ms``, another client is unaffected, nothing closes.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from types import MappingProxyType
from typing import Any

from rtctl.client import Client, ServerError
from rtctl.config import Routing
from rtctl.gateway.auth import Identity
from rtctl.gateway.connection import Connection, ConnectionState
from rtctl.gateway.dispatch import Deferred, Dispatcher
from rtctl.gateway.metrics import GatewayMetrics
from rtctl.gateway.server import Gateway
from rtctl.profiler.stages import StageProfiler
from rtctl.protocol import jsonrpc
from rtctl.protocol.codes import ErrorCode
from rtctl.router import Peer, Router
from rtctl.tap import Tap
from tests.conftest import TIMING, GatewayFactory, client, make_token, rpc
from tests.gateway.test_dispatch import NEVER, FakeTransport, notification, request, settle

RATE = 64.0  # calls/s: 1/64 s is exact in binary, so refills land on whole tokens


class Clock:
    """The dispatcher's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Recall:
    """A reply cache that records every use (a limited call must make none)."""

    def __init__(self) -> None:
        self.uses: list[str] = []

    async def recall(self, key: str) -> str | None:
        self.uses.append(f"recall {key}")
        return None

    async def remember(self, key: str, reply: str, *, ttl: float) -> None:
        self.uses.append(f"remember {key}")


class Core:
    """A dispatcher with an inbound rate, its connections, and what its handlers ran."""

    def __init__(self, *, rate: float | None = RATE, burst: int | None = 2) -> None:
        self.runs: Counter[str] = Counter()
        router = Router()

        @router.method("add")
        def add(a: int, b: int) -> int:
            self.runs["add"] += 1
            return a + b

        @router.method("log")
        def log(text: str) -> None:
            self.runs["log"] += 1

        self.clock = Clock()
        self.metrics = GatewayMetrics(set(router.methods), lambda: 1)
        self.replies = Recall()
        # Seeded: the first timed message is some 10**8 messages away.
        profiler = StageProfiler(NEVER, known_methods=set(router.methods), seed=1)
        self.dispatcher = Dispatcher(
            router, self.metrics, Tap(), profiler, replies=self.replies,
            routing=Routing(inbound_rate=rate, inbound_burst=burst),
            perf_counter=self.clock)

    def connection(self, user: str) -> Connection:
        identity = Identity(user=user, claims=MappingProxyType({"sub": user}), expires_at=None)
        return Connection(id=f"c-{user}", identity=identity, remote_address=None,
                          local_address=None, connected_at=1.0, subprotocol="rtctl.v1",
                          transport=FakeTransport(), state=ConnectionState.OPEN)

    def send(self, conn: Connection, text: str) -> Any:
        out = self.dispatcher.receive(conn, text)
        if isinstance(out, Deferred):
            out = settle(out.pending)
        assert out is None or isinstance(out, bytes)
        return None if out is None else jsonrpc.loads(out)


def limited(id: Any, retry_ms: int, rate: float = RATE) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id,
            "error": {"code": ErrorCode.RATE_LIMITED,
                      "message": f"Rate limited: over {rate:g} calls/s; retry in {retry_ms} ms",
                      "data": {"retry_after_ms": retry_ms}}}


def added(value: int, id: Any = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id, "result": value}


# ---------------------------------------------------------------------------
# The dispatch core
# ---------------------------------------------------------------------------


def test_a_call_over_the_burst_is_answered_32029_and_not_run() -> None:
    core = Core()
    alice = core.connection("alice")
    assert core.send(alice, request("add", [1, 2], 1)) == added(3, 1)
    assert core.send(alice, request("add", [1, 2], 2)) == added(3, 2)
    # No time passed: the next token is 1/64 s = 15.625 ms away, rounded up.
    assert core.send(alice, request("add", [1, 2], 3)) == limited(3, 16)
    assert core.runs == Counter(add=2)
    assert core.metrics.inbound_limited == Counter(call=1)
    assert core.metrics.rpc_errors == Counter({ErrorCode.RATE_LIMITED: 1})
    assert alice.transport.closed == []  # type: ignore[attr-defined]
    assert alice.state is ConnectionState.OPEN


def test_waiting_retry_after_ms_lets_the_next_call_through() -> None:
    core = Core(burst=1)
    alice = core.connection("alice")
    assert core.send(alice, request("add", [1, 1], 1)) == added(2, 1)
    assert core.send(alice, request("add", [1, 1], 2)) == limited(2, 16)
    core.clock.now += 0.015  # 0.96 of a token: still early, and told so in whole ms
    assert core.send(alice, request("add", [1, 1], 3)) == limited(3, 1)
    core.clock.now += 0.001  # 16 ms after the refusal, as retry_after_ms said
    assert core.send(alice, request("add", [1, 1], 4)) == added(2, 4)
    assert core.runs == Counter(add=2)


def test_a_notification_over_the_rate_is_dropped_and_counted() -> None:
    core = Core(burst=1)
    alice = core.connection("alice")
    assert core.send(alice, notification("log", ["first"])) is None
    assert core.send(alice, notification("log", ["second"])) is None
    assert core.runs == Counter(log=1)
    assert core.metrics.inbound_limited == Counter(notification=1)
    assert core.metrics.rpc_errors == Counter()


def test_each_call_of_a_batch_takes_a_token_and_gets_its_own_answer() -> None:
    core = Core(burst=2)
    alice = core.connection("alice")
    batch = (f"[{request('add', [1, 1], 1)},{notification('log', ['x'])},"
             f"{request('add', [2, 2], 2)},{notification('log', ['y'])},"
             f"{request('add', [3, 3], 3)}]")
    # Two tokens: the first request and the first notification run, the rest do not.
    assert core.send(alice, batch) == [added(2, 1), limited(2, 16), limited(3, 16)]
    assert core.runs == Counter(add=1, log=1)
    assert core.metrics.inbound_limited == Counter(call=2, notification=1)


def test_each_connection_has_its_own_bucket() -> None:
    core = Core(burst=1)
    alice, bob = core.connection("alice"), core.connection("bob")
    assert core.send(alice, request("add", [1, 1])) == added(2)
    assert core.send(alice, request("add", [1, 1])) == limited(1, 16)
    assert core.send(bob, request("add", [2, 2])) == added(4)  # the same instant


def test_the_bucket_is_the_connections_own() -> None:
    core = Core(burst=1)
    alice = core.connection("alice")
    assert alice.inbound is None  # made at the first call: nothing kept for the idle
    assert core.send(alice, request("add", [1, 1])) == added(2)
    assert alice.inbound is not None  # and it goes with the connection: nothing to forget


def test_a_limited_keyed_call_leaves_the_reply_cache_alone() -> None:
    core = Core(burst=1)
    alice = core.connection("alice")
    core.send(alice, request("add", [1, 1]))
    keyed = jsonrpc.encode_request("add", [5, 5], 9, idempotency_key="k-1")
    assert core.send(alice, jsonrpc.dumps(keyed).decode()) == limited(9, 16)
    assert core.replies.uses == []
    core.clock.now += 1 / RATE
    assert core.send(alice, jsonrpc.dumps(keyed).decode()) == added(10, 9)
    assert [use.split()[0] for use in core.replies.uses] == ["recall", "remember"]


def test_without_a_rate_no_call_is_limited() -> None:
    core = Core(rate=None, burst=None)
    alice = core.connection("alice")
    for id in range(1000):  # the same instant: any bucket would run dry
        assert core.send(alice, request("add", [id, 1], id)) == added(id + 1, id)
    assert core.metrics.inbound_limited == Counter()


# ---------------------------------------------------------------------------
# End to end, over each transport
# ---------------------------------------------------------------------------


def ask(method: str, params: Any, id: int) -> dict[str, Any]:
    return jsonrpc.encode_request(method, params, id)


async def start(start_gateway: GatewayFactory, rate: float, burst: int) -> Gateway:
    gateway: Gateway = await start_gateway(
        routing=Routing(inbound_rate=rate, inbound_burst=burst))
    return gateway


async def test_a_client_over_its_rate_is_told_when_to_retry_and_others_are_not(
        start_gateway: GatewayFactory) -> None:
    # 1 call/s: the batch's calls come within microseconds, far from a new token.
    gateway = await start(start_gateway, 1.0, 3)
    gone: asyncio.Queue[tuple[Peer, int | None]] = asyncio.Queue()
    gateway.on_disconnect(lambda peer, code, reason: gone.put_nowait((peer, code)))
    async with client(gateway.url, make_token("alice")) as alice, \
            client(gateway.url, make_token("bob")) as bob:
        batch = [ask("sys.echo", [n], n) for n in range(1, 6)]
        await alice.send(jsonrpc.dumps(batch), text=True)
        replies = jsonrpc.loads(await alice.recv())
        assert [reply.get("result") for reply in replies[:3]] == [[1], [2], [3]]
        for reply in replies[3:]:
            error = reply["error"]
            assert error["code"] == ErrorCode.RATE_LIMITED
            retry_ms = error["data"]["retry_after_ms"]
            assert isinstance(retry_ms, int)
            assert 1 <= retry_ms <= 1000
            assert error["message"] == f"Rate limited: over 1 calls/s; retry in {retry_ms} ms"
        # Bob, at the same time, has his own full bucket.
        for id in range(3):
            assert (await rpc(bob, "sys.echo", ["bob"], id))["result"] == ["bob"]
        # Alice's connection stays open and answering.
        again = await rpc(alice, "sys.echo", ["again"], 9)
        assert again["error"]["code"] == ErrorCode.RATE_LIMITED
        assert gateway.metrics.inbound_limited == Counter(call=3)
        assert gone.empty()
    async with asyncio.timeout(5 * TIMING):
        closed = {(await gone.get())[1], (await gone.get())[1]}
    assert closed == {1000}  # both closed by their clients, normally


async def test_a_call_after_retry_after_ms_goes_through(start_gateway: GatewayFactory) -> None:
    gateway = await start(start_gateway, 50.0, 1)
    async with client(gateway.url, make_token("alice")) as alice:
        await alice.send(jsonrpc.dumps([ask("sys.echo", [1], 1), ask("sys.echo", [2], 2)]),
                         text=True)
        first, second = jsonrpc.loads(await alice.recv())
        assert first["result"] == [1]
        retry_ms = second["error"]["data"]["retry_after_ms"]
        assert 1 <= retry_ms <= 20
        # What a client is told to do, not a stand-in for an event: the bucket's refill
        # is the behaviour under test, and the wait is the one the gateway named.
        await asyncio.sleep(retry_ms / 1000)
        assert (await rpc(alice, "sys.echo", [3], 3))["result"] == [3]


async def test_a_notification_over_the_rate_is_dropped_and_the_connection_stays(
        start_gateway: GatewayFactory) -> None:
    gateway = await start(start_gateway, 1.0, 1)
    async with client(gateway.url, make_token("alice")) as alice:
        note = jsonrpc.encode_notification("sys.echo", ["dropped"])
        await alice.send(jsonrpc.dumps([ask("sys.echo", [1], 1), note]), text=True)
        assert jsonrpc.loads(await alice.recv()) == [{"jsonrpc": "2.0", "id": 1, "result": [1]}]
        assert gateway.metrics.inbound_limited == Counter(notification=1)
        assert (await rpc(alice, "sys.echo", [2], 2))["error"]["code"] == ErrorCode.RATE_LIMITED


async def test_the_sdk_raises_a_retryable_error_that_says_how_long_to_wait(
        start_gateway: GatewayFactory) -> None:
    gateway = await start(start_gateway, 1.0, 2)
    async with Client(gateway.url, token=make_token("alice"), ping_interval=None,
                      recover=False) as alice:
        first, second, third = await alice.batch(
            [("sys.echo", [1]), ("sys.echo", [2]), ("sys.echo", [3])])
    assert (first, second) == ([1], [2])
    assert isinstance(third, ServerError)
    assert (third.code, third.retryable) == (ErrorCode.RATE_LIMITED, True)
    assert third.retry_after == third.data["retry_after_ms"] / 1000
    assert 0.001 <= third.retry_after <= 1.0
