"""Reply matching and the parsing of what the gateway sends."""

from __future__ import annotations

import pytest

from rtctl.client.calls import Malformed, NotificationReceived, PendingCalls, Reply, parse_incoming
from rtctl.client.errors import ConnectionLost, ServerError


@pytest.mark.parametrize(("value", "expected"), [
    ({"jsonrpc": "2.0", "result": 3, "id": 1}, [Reply(1, 3)]),
    ({"jsonrpc": "2.0", "result": None, "id": "a"}, [Reply("a", None)]),
    ({"jsonrpc": "2.0", "error": {"code": 1, "message": "m"}, "id": None},
     [Reply(None, None, {"code": 1, "message": "m"})]),
    ({"jsonrpc": "2.0", "method": "game.tick", "params": {"n": 1}},
     [NotificationReceived("game.tick", {"n": 1})]),
    ([{"jsonrpc": "2.0", "result": 1, "id": 2}, {"jsonrpc": "2.0", "result": 2, "id": 1}],
     [Reply(2, 1), Reply(1, 2)]),
    ([{"jsonrpc": "2.0", "method": "b", "params": [1]}, {"jsonrpc": "2.0", "method": "a"},
      {"jsonrpc": "2.0", "method": "b", "params": [3]}],  # the gateway's batching: in order
     [NotificationReceived("b", [1]), NotificationReceived("a", None),
      NotificationReceived("b", [3])]),
])
def test_replies_and_notifications(value: object, expected: list[object]) -> None:
    assert parse_incoming(value) == expected


@pytest.mark.parametrize("value", [
    {"jsonrpc": "1.0", "result": 1, "id": 1},
    {"jsonrpc": "2.0", "result": 1, "error": {}, "id": 1},
    {"jsonrpc": "2.0", "method": "x", "id": 1},  # a request: servers do not call clients
    {"jsonrpc": "2.0", "method": 5},
    [],
    "hello",
])
def test_anything_else_is_malformed(value: object) -> None:
    (part,) = parse_incoming(value)
    assert isinstance(part, Malformed)


async def test_pending_calls_match_fail_and_forget() -> None:
    calls = PendingCalls(frozenset({4999}))
    (a, fa), (b, fb), (c, fc) = calls.open(), calls.open(), calls.open()
    assert (a, b, c) == (1, 2, 3)
    calls.mark_sent([a, b])
    assert calls.resolve(Reply(a, "ok"))
    assert await fa == "ok"
    calls.lost(ConnectionLost("dropped"))  # b was sent, c still queued
    with pytest.raises(ConnectionLost):
        await fb
    assert not fc.done()
    assert calls.resolve(Reply(c, None, {"code": 4999, "message": "busy"}))
    with pytest.raises(ServerError) as info:
        await fc
    assert info.value.retryable
    assert not calls.resolve(Reply(c, 1))  # late or unknown: ignored
    _, fd = calls.open()
    calls.forget([4])
    assert len(calls) == 0
    assert not fd.done()
