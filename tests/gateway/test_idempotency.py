"""The ``idempotency_key`` request member: a repeat is answered, not run again."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from typing import Any

from rtctl.backends import memory_backends
from rtctl.exceptions import RpcError
from rtctl.gateway.server import Gateway
from rtctl.protocol import jsonrpc
from rtctl.protocol.codes import ErrorCode
from rtctl.router import CallContext, Router
from tests.conftest import GatewayFactory, client, make_token


def counting_router(runs: Counter[str], gate: asyncio.Event | None = None) -> Router:
    router = Router()

    @router.method("slow.buy")
    async def slow_buy(item: str) -> dict[str, Any]:
        runs[item] += 1
        assert gate is not None
        await gate.wait()
        return {"item": item, "run": runs[item]}

    @router.method("buy")
    async def buy(ctx: CallContext, item: str) -> dict[str, Any]:
        runs[item] += 1
        return {"item": item, "run": runs[item], "key": ctx.idempotency_key}

    @router.method("fail")
    def fail(item: str) -> None:
        runs[item] += 1
        raise RpcError(-32099, "out of stock")

    return router


async def send(gateway: Gateway, user: str, *messages: dict[str, Any]) -> list[Any]:
    async with client(gateway.url, make_token(user)) as ws:
        replies = []
        for message in messages:
            await ws.send(jsonrpc.dumps(message), text=True)
            replies.append(jsonrpc.loads(await ws.recv()))
        return replies


def keyed(method: str, params: Any, request_id: int, key: str) -> dict[str, Any]:
    return jsonrpc.encode_request(method, params, request_id, idempotency_key=key)


async def test_a_repeat_on_a_new_connection_gets_the_first_result_without_running_again(
        start_gateway: GatewayFactory) -> None:
    runs: Counter[str] = Counter()
    gateway = await start_gateway(counting_router(runs))
    (first,) = await send(gateway, "alice", keyed("buy", {"item": "sword"}, 1, "k-1"))
    (again,) = await send(gateway, "alice", keyed("buy", {"item": "sword"}, 7, "k-1"))
    assert first == {"jsonrpc": "2.0", "id": 1,
                     "result": {"item": "sword", "run": 1, "key": "k-1"}}
    assert again == {**first, "id": 7}
    assert runs["sword"] == 1


async def test_keys_are_per_user_and_an_unkeyed_call_always_runs(
        start_gateway: GatewayFactory) -> None:
    runs: Counter[str] = Counter()
    gateway = await start_gateway(counting_router(runs))
    await send(gateway, "alice", keyed("buy", {"item": "bow"}, 1, "same"))
    (bob,) = await send(gateway, "bob", keyed("buy", {"item": "bow"}, 1, "same"))
    plain = await send(gateway, "bob", jsonrpc.encode_request("buy", {"item": "bow"}, 2),
                       jsonrpc.encode_request("buy", {"item": "bow"}, 3))
    assert bob["result"]["run"] == 2
    assert [reply["result"]["run"] for reply in plain] == [3, 4]


async def test_an_error_is_not_kept_so_a_repeat_runs_again(
        start_gateway: GatewayFactory) -> None:
    runs: Counter[str] = Counter()
    gateway = await start_gateway(counting_router(runs))
    replies = await send(gateway, "alice", keyed("fail", {"item": "x"}, 1, "k"),
                         keyed("fail", {"item": "x"}, 2, "k"))
    assert [reply["error"]["code"] for reply in replies] == [-32099, -32099]
    assert runs["x"] == 2


async def test_a_bad_key_is_an_invalid_request_answered_with_its_id(
        start_gateway: GatewayFactory) -> None:
    gateway = await start_gateway(counting_router(Counter()))
    for bad in ("", "x" * 65, "has space", 12, None):
        message = {**jsonrpc.encode_request("buy", {"item": "y"}, 5), "idempotency_key": bad}
        (reply,) = await send(gateway, "alice", message)
        if bad is None:  # null is no key at all
            assert reply["result"]["key"] is None
            continue
        assert reply["id"] == 5
        assert reply["error"]["code"] == ErrorCode.INVALID_REQUEST
        assert "idempotency_key" in reply["error"]["message"]


async def test_a_keyed_call_in_a_batch_is_answered_once_too(
        start_gateway: GatewayFactory) -> None:
    runs: Counter[str] = Counter()
    gateway = await start_gateway(counting_router(runs))
    batch = [keyed("buy", {"item": "gem"}, 1, "b"), keyed("buy", {"item": "gem"}, 2, "b")]
    (replies,) = await send(gateway, "alice", batch)  # type: ignore[arg-type]
    assert [reply["result"]["run"] for reply in replies] == [1, 1]
    assert runs["gem"] == 1


async def test_the_same_key_with_other_params_is_another_call(
        start_gateway: GatewayFactory) -> None:
    runs: Counter[str] = Counter()
    gateway = await start_gateway(counting_router(runs))
    replies = await send(gateway, "alice", keyed("buy", {"item": "a"}, 1, "k"),
                         keyed("buy", {"item": "b"}, 2, "k"))
    assert [reply["result"]["item"] for reply in replies] == ["a", "b"]
    assert (runs["a"], runs["b"]) == (1, 1)


async def test_a_repeat_sent_while_the_first_still_runs_waits_for_it(
        start_gateway: GatewayFactory) -> None:
    runs: Counter[str] = Counter()
    gate = asyncio.Event()
    gateway = await start_gateway(counting_router(runs, gate))
    async with client(gateway.url, make_token("alice")) as first, \
            client(gateway.url, make_token("alice")) as repeat:
        await first.send(jsonrpc.dumps(keyed("slow.buy", {"item": "axe"}, 1, "k")), text=True)
        await repeat.send(jsonrpc.dumps(keyed("slow.buy", {"item": "axe"}, 2, "k")), text=True)
        ping = jsonrpc.encode_request("sys.ping", None, 3)
        await repeat.send(jsonrpc.dumps(ping), text=True)  # answered first: both calls are in
        assert jsonrpc.loads(await repeat.recv())["id"] == 3
        gate.set()
        replies = [jsonrpc.loads(await first.recv()), jsonrpc.loads(await repeat.recv())]
    assert [reply["result"] for reply in replies] == [{"item": "axe", "run": 1}] * 2
    assert runs["axe"] == 1


async def test_room_publish_keeps_its_key_in_history_not_in_the_reply_cache(
        start_gateway: GatewayFactory) -> None:
    class Recording:
        def __init__(self) -> None:
            self.scopes: list[str] = []

        async def recall(self, key: str) -> str | None:
            self.scopes.append(key)
            return None

        async def remember(self, key: str, reply: str, *, ttl: float) -> None:
            self.scopes.append(key)

    recording = Recording()
    backends = dataclasses.replace(memory_backends(), replies=recording)
    gateway = await start_gateway(counting_router(Counter()), backends=backends)
    join = jsonrpc.encode_request("room.join", {"room": "lobby"}, 1)
    publish = {"room": "lobby", "data": "gg"}
    replies = await send(gateway, "alice", join, keyed("room.publish", publish, 2, "p"),
                         keyed("room.publish", publish, 3, "p"),
                         keyed("buy", {"item": "z"}, 4, "b"))
    assert replies[1]["result"] == replies[2]["result"]  # one append, found by its key
    assert [scope.split(":")[1] for scope in recording.scopes] == ["buy", "buy"]


async def test_repeats_that_come_while_the_cache_is_read_wait_for_the_one_that_runs(
        start_gateway: GatewayFactory) -> None:
    class SlowCache:  # a store a round trip away: nothing answers until the gate opens
        def __init__(self) -> None:
            self.gate, self.recalls = asyncio.Event(), 0

        async def recall(self, key: str) -> str | None:
            self.recalls += 1
            await self.gate.wait()
            return None

        async def remember(self, key: str, reply: str, *, ttl: float) -> None:
            pass

    runs: Counter[str] = Counter()
    cache = SlowCache()
    backends = dataclasses.replace(memory_backends(), replies=cache)
    gateway = await start_gateway(counting_router(runs), backends=backends)
    connections = [client(gateway.url, make_token("alice")) for _ in range(3)]
    sockets = [await c.__aenter__() for c in connections]
    try:
        for index, ws in enumerate(sockets):
            await ws.send(jsonrpc.dumps(keyed("buy", {"item": "bow"}, index, "k")), text=True)
            await ws.send(jsonrpc.dumps(jsonrpc.encode_request("sys.ping", None, "p")),
                          text=True)
            assert jsonrpc.loads(await ws.recv())["id"] == "p"  # its keyed call is under way
        cache.gate.set()
        replies = [jsonrpc.loads(await ws.recv()) for ws in sockets]
    finally:
        for c in connections:
            await c.__aexit__(None, None, None)
    assert [reply["result"]["run"] for reply in replies] == [1, 1, 1]
    assert [reply["id"] for reply in replies] == [0, 1, 2]
    assert (runs["bow"], cache.recalls) == (1, 1)
