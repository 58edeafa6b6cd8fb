"""Callbacks and state waits, without a network."""

from __future__ import annotations

import asyncio
import logging

import pytest

from rtctl.client import Client, NotificationReceived
from rtctl.client.errors import ErrorKind, ProtocolError, Verdict
from rtctl.client.events import ClientEvents
from rtctl.client.states import ClientState, StateChanged

S = ClientState


async def test_callbacks_run_in_order_and_a_failing_one_is_only_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events = ClientEvents()
    seen: list[str] = []
    done = asyncio.Event()

    def broken(event: StateChanged) -> None:
        raise RuntimeError("game bug")

    async def later(event: StateChanged) -> None:
        seen.append(f"async {event.new.value}")
        done.set()
        raise RuntimeError("async game bug")

    events.on_state_change(lambda event: seen.append(f"sync {event.new.value}"))
    events.on_state_change(broken)
    events.on_state_change(later)
    with caplog.at_level(logging.ERROR, logger="rtctl.client"):
        events._transition(S.CONNECTING)
        await asyncio.wait_for(done.wait(), 1)
        await asyncio.sleep(0)  # let the finished task's done-callback run
    assert seen == ["sync connecting", "async connecting"]
    assert "game bug" in caplog.text
    assert "async game bug" in caplog.text
    assert not events._tasks


async def test_wait_for_returns_at_once_or_on_the_transition() -> None:
    events = ClientEvents()
    assert await events.wait_for(S.DISCONNECTED) is S.DISCONNECTED
    waiting = asyncio.ensure_future(events.wait_for(S.CONNECTED, S.CLOSED))
    await asyncio.sleep(0)
    events._transition(S.CONNECTING)
    assert not waiting.done()
    events._transition(S.CLOSED)
    assert await waiting is S.CLOSED
    with pytest.raises(TimeoutError):
        await events.wait_for(S.CONNECTED, timeout=0.01)
    assert events._waiters == []


@pytest.mark.parametrize(("message", "reported"), [
    ('{"jsonrpc": "2.0", "method": "game.tick"}', False),
    ('{"jsonrpc": "2.0", "result": 1, "id": 99}', False),  # a late reply: ignored
    ("{not json", True),
    (b"\x00binary", True),
    ('{"jsonrpc": "2.0", "method": "server.asks", "id": 1}', True),
    ('{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}',
     True),
])
async def test_what_the_gateway_sends_that_is_not_json_rpc_is_reported(
    message: str | bytes, reported: bool
) -> None:
    client = Client("ws://127.0.0.1:1")
    verdicts: list[Verdict] = []
    client.on_error(verdicts.append)
    client._received(message, "rtctl.v1")
    assert [(v.kind, type(v.error)) for v in verdicts] == (
        [(ErrorKind.PROTOCOL, ProtocolError)] if reported else [])
    assert client.netstats().messages_in == 1


async def test_a_failing_sequence_hook_still_delivers_the_notification(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = Client("ws://127.0.0.1:1", sequence_of=lambda method, params: params["seq"])
    seen: list[NotificationReceived] = []
    client.on_notification(seen.append)
    with caplog.at_level(logging.ERROR, logger="rtctl.client"):
        client._received('{"jsonrpc": "2.0", "method": "game.tick", "params": {}}', "rtctl.v1")
    assert seen == [NotificationReceived("game.tick", {})]
    assert "sequence_of failed" in caplog.text
