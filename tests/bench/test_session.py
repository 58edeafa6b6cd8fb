"""One bench connection against a picows server that fragments, fails and hangs up on cue."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_create_server

from rtctl.bench.results import Recorder
from rtctl.bench.session import Session, request_head


class Peer(WSListener):
    """Answers ``echo`` in three frames, ``fail`` with an error, ``hangup`` by dropping the
    connection; ``notify`` gets a notification before its reply; ``ignore`` (a message a
    lossy network dropped) gets nothing, once for each id in its params."""

    def __init__(self, seen: list[dict[str, Any]]) -> None:
        self.seen = seen

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is WSMsgType.CLOSE:
            self.seen.append({"close": frame.get_close_code()})
            transport.send_close(WSCloseCode.OK)
            transport.disconnect()
            return
        request = json.loads(frame.get_payload_as_bytes())
        self.seen.append(request)
        method, request_id = request["method"], request.get("id")
        if method == "hangup":
            transport.disconnect(graceful=False)
            return
        if method == "ignore" and request_id in request["params"]:
            return
        if method == "notify":
            transport.send(WSMsgType.TEXT, json.dumps({"jsonrpc": "2.0", "method": "tick",
                                                       "params": [1]}).encode())
        if method == "fail":
            reply = {"jsonrpc": "2.0", "error": {"code": -32601, "message": "no"},
                     "id": request_id}
        else:
            reply = {"jsonrpc": "2.0", "result": request.get("params"), "id": request_id}
        data = json.dumps(reply).encode()
        third = len(data) // 3
        transport.send(WSMsgType.TEXT, data[:third], fin=False)
        transport.send(WSMsgType.CONTINUATION, data[third:2 * third], fin=False)
        transport.send(WSMsgType.CONTINUATION, data[2 * third:])


@pytest.fixture
async def peer() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    server = await ws_create_server(lambda _request: Peer(seen), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"ws://127.0.0.1:{port}/ws", seen
    server.close()


def _recorder() -> Recorder:
    recorder = Recorder()
    recorder.open_window(0.0, float("inf"))  # every attempt counts
    return recorder


async def test_fragmented_replies_are_reassembled_and_matched(
        peer: tuple[str, list[dict[str, Any]]]) -> None:
    recorder = _recorder()
    session = await Session.open(peer[0], None, recorder)
    assert await session.call(request_head("echo", ["x" * 100]), time.monotonic())
    assert (recorder.count, recorder.expected, recorder.errors) == (1, 1, {})
    await session.close()


async def test_a_closed_loop_gives_every_request_its_own_id(
        peer: tuple[str, list[dict[str, Any]]]) -> None:
    url, seen = peer
    recorder = _recorder()
    session = await Session.open(url, None, recorder)
    await session.repeat(request_head("echo", ["x"]), time.monotonic() + 0.2)
    ids = [request["id"] for request in seen]
    assert ids == list(range(1, len(ids) + 1))
    assert recorder.count == recorder.expected == len(ids) > 1
    assert seen[0] == {"jsonrpc": "2.0", "method": "echo", "params": ["x"], "id": 1}
    await session.close()


async def test_an_unanswered_request_is_given_up_as_a_timeout(
        peer: tuple[str, list[dict[str, Any]]]) -> None:
    recorder = _recorder()
    session = await Session.open(peer[0], None, recorder, reply_timeout=0.05)
    assert not await session.call(request_head("ignore", [1]), time.monotonic())
    assert recorder.errors == {"timeout": 1}
    assert await session.call(request_head("ignore", [1]), time.monotonic())  # id 2: answered
    assert not session.closed.done()
    await session.close()


async def test_a_closed_loop_goes_on_after_a_lost_reply(
        peer: tuple[str, list[dict[str, Any]]]) -> None:
    url, seen = peer
    recorder = _recorder()
    session = await Session.open(url, None, recorder, reply_timeout=0.05)
    await asyncio.wait_for(session.repeat(request_head("ignore", [3]), time.monotonic() + 0.3), 5)
    assert recorder.errors == {"timeout": 1}
    assert recorder.count == len(seen) - 1 > 3  # every other request was answered
    await session.close()


async def test_error_replies_are_counted_by_code(
        peer: tuple[str, list[dict[str, Any]]]) -> None:
    recorder = _recorder()
    session = await Session.open(peer[0], None, recorder)
    assert await session.call(request_head("fail"), time.monotonic())
    assert recorder.count == 0
    assert recorder.errors == {"rpc -32601": 1}
    await session.close()


async def test_a_dropped_connection_fails_what_is_pending(
        peer: tuple[str, list[dict[str, Any]]]) -> None:
    recorder = _recorder()
    session = await Session.open(peer[0], None, recorder)
    for _ in range(3):
        session.send(request_head("hangup"), time.monotonic())
    await asyncio.wait_for(session.closed, 5)
    assert recorder.errors == {"closed": 3}
    assert not await session.call(request_head("echo"), time.monotonic())  # nothing more sent


async def test_notifications_go_to_the_callback_and_close_is_a_handshake(
        peer: tuple[str, list[dict[str, Any]]]) -> None:
    url, seen = peer
    notes: list[dict[str, Any]] = []
    session = await Session.open(url, None, _recorder(), lambda note, _: notes.append(note))
    assert await session.call(request_head("notify"), time.monotonic())
    assert notes == [{"jsonrpc": "2.0", "method": "tick", "params": [1]}]
    assert session.last_notification > 0
    await session.close()
    assert session.closed.done()
    assert seen[-1] == {"close": WSCloseCode.OK}
