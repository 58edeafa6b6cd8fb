"""The tap: events, their JSON, bounded listener queues and the admin-only endpoint."""

from __future__ import annotations

import asyncio
import re
from dataclasses import fields
from typing import Any

import pytest
from websockets.asyncio.client import connect

from rtctl import CallContext, Router
from rtctl.config import Limits
from rtctl.gateway.server import Gateway
from rtctl.inspect.listener import parse_events
from rtctl.protocol.tap import (
    IN,
    OUT,
    TAP_PATH,
    AuthRefused,
    Connected,
    Disconnected,
    Dropped,
    FrameSeen,
    Subscribed,
    TapEvent,
    describe,
    event_from_json,
)
from rtctl.tap import Subscription, Tap
from tests.conftest import TIMING, GatewayFactory, client, make_token, rpc
from tests.gateway.test_server import refused


def tap_url(gateway: Gateway) -> str:
    return f"ws://127.0.0.1:{gateway.port}{TAP_PATH}"


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token('ops', role='admin')}"}


async def until(subscription: Subscription, kind: type[TapEvent]) -> list[TapEvent]:
    """Events up to and including the first of ``kind``."""
    events: list[TapEvent] = []
    while not events or not isinstance(events[-1], kind):
        events.append(await asyncio.wait_for(subscription.get(), 5 * TIMING))
    return events


async def heard(ws: Any, kind: type[TapEvent], count: int) -> list[TapEvent]:
    """Read a listener's messages (each holds one or more events) until ``count`` of ``kind``."""
    events: list[TapEvent] = []
    while sum(isinstance(e, kind) for e in events) < count:
        events += parse_events(await asyncio.wait_for(ws.recv(), 5 * TIMING))
    return events


@pytest.mark.parametrize(("text", "expected"), [
    ('{"jsonrpc":"2.0","method":"a.b","params":[1],"id":7}', ("request", "a.b", 7, None)),
    ('{"jsonrpc":"2.0","method":"tick"}', ("notification", "tick", None, None)),
    ('{"jsonrpc":"2.0","result":null,"id":"x"}', ("result", None, "x", None)),
    ('{"jsonrpc":"2.0","error":{"code":-32601,"message":"m"},"id":2}',
     ("error", None, 2, -32601)),
    ('[{"jsonrpc":"2.0","method":"a","id":1},{"jsonrpc":"2.0","method":"b"},'
     '{"jsonrpc":"2.0","method":"a","id":2}]', ("batch", "a,b", None, None)),
    ('[{"jsonrpc":"2.0","result":1,"id":1},{"jsonrpc":"2.0","error":{"code":-1,"message":""},'
     '"id":2}]', ("batch", None, None, -1)),
    ('{"jsonrpc":"2.0","method":"a","id":{"x":1}}', ("invalid", None, None, None)),
    ('{"jsonrpc":"2.0","method":"a","id":true}', ("invalid", None, None, None)),
    ("{not json", ("invalid", None, None, None)),
    ("[]", ("invalid", None, None, None)),
    ("42", ("invalid", None, None, None)),
])
def test_describe_names_the_json_rpc_kind(text: str, expected: tuple[Any, ...]) -> None:
    assert describe(text) == expected


EVENTS: list[TapEvent] = [
    Subscribed(t_us=1, queue=10),
    Dropped(t_us=2, count=3, total=5),
    Connected(t_us=3, conn="c-1", user="alice", remote="127.0.0.1:5000", local="[::1]:8765",
              path="/ws", subprotocol="rtctl.v1"),
    Disconnected(t_us=4, conn="c-1", user="alice", code=4001, reason="token expired"),
    AuthRefused(t_us=5, remote=None, path="/tap", status=403, reason="forbidden", user="bob"),
    FrameSeen.of(6, "c-1", "alice", IN, '{"jsonrpc":"2.0","method":"é","id":1}'),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.TAG)
def test_every_event_round_trips_through_json(event: TapEvent) -> None:
    obj = event.to_json()
    assert obj["event"] == event.TAG
    assert event_from_json(obj) == event


@pytest.mark.parametrize(("obj", "message"), [
    ([], "a tap event is a JSON object"),
    ({"event": "nope", "t_us": 1}, "unknown tap event 'nope'"),
    ({"event": "subscribed"}, "subscribed event without t_us, queue"),
])
def test_bad_event_json_says_why(obj: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        event_from_json(obj)


def test_frame_size_counts_utf8_bytes() -> None:
    assert FrameSeen.of(0, "c", "u", OUT, "é").size == 2
    assert FrameSeen.of(0, "c", "u", OUT, "é".encode()).size == 2


async def test_a_full_queue_drops_and_reports_the_gap_in_place() -> None:
    tap = Tap(clock_us=iter(range(100, 200)).__next__)
    with tap.subscribe(maxsize=3) as sub:
        for n in range(6):
            sub.offer(n, Subscribed(t_us=n, queue=0))  # stand-ins for any event
        assert sub.dropped == 4  # Subscribed + 2 fit in 3 slots
        first = sub.take(2)
        sub.offer(10, Subscribed(t_us=10, queue=0))
        rest = sub.take()
    assert [e.t_us for e in first] == [100, 0]
    assert rest == [Subscribed(t_us=1, queue=0), Dropped(t_us=2, count=4, total=4),
                    Subscribed(t_us=10, queue=0)]
    assert not tap.active


async def test_nobody_listening_costs_one_check(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the tap built an event with nobody listening")

    for hook in ("frame", "publish"):
        monkeypatch.setattr(gateway.tap, hook, forbidden)
    async with client(gateway.url) as ws:
        assert (await rpc(ws, "sys.echo", [1]))["result"] == [1]
    assert not gateway.tap.active


async def test_every_outgoing_path_is_tapped(start_gateway: GatewayFactory) -> None:
    router = Router()

    @router.method("game.later")
    async def later() -> str:
        return "done"

    @router.method("game.push")
    def push(ctx: CallContext) -> None:
        ctx.peer.notify("game.tick", {"n": 1})

    gateway = await start_gateway(router)
    with gateway.tap.subscribe() as sub:
        async with client(gateway.url, make_token("alice")) as ws:
            await rpc(ws, "sys.echo", ["fast"])  # the inline hot path
            await rpc(ws, "game.later", id=2)  # an async handler (_finish)
            await ws.send('[{"jsonrpc":"2.0","method":"sys.echo","params":[3],"id":3}]')
            await ws.recv()  # a batch
            await ws.send("{oops")
            await ws.recv()  # an invalid message
            await ws.send('{"jsonrpc":"2.0","method":"game.push"}')
            await ws.recv()  # a notification through the outbox
            await ws.close(1000, "bye")
        events = await until(sub, Disconnected)
    assert isinstance(events[0], Subscribed)
    connected = events[1]
    assert isinstance(connected, Connected)
    assert (connected.user, connected.path, connected.local) == (
        "alice", "/ws", f"127.0.0.1:{gateway.port}")
    frames = [e for e in events if isinstance(e, FrameSeen)]
    assert [(f.direction, f.kind, f.method, f.id) for f in frames] == [
        (IN, "request", "sys.echo", 1), (OUT, "result", None, 1),
        (IN, "request", "game.later", 2), (OUT, "result", None, 2),
        (IN, "batch", "sys.echo", None), (OUT, "batch", None, None),
        (IN, "invalid", None, None), (OUT, "error", None, None),
        (IN, "notification", "game.push", None), (OUT, "notification", "game.tick", None),
    ]
    assert all(f.conn == connected.conn and f.user == "alice" for f in frames)
    assert [f.t_us for f in frames] == sorted(f.t_us for f in frames)
    gone = events[-1]
    assert isinstance(gone, Disconnected)
    assert (gone.conn, gone.code, gone.reason) == (connected.conn, 1000, "bye")


async def test_a_slow_listener_is_dropped_from_not_waited_for(gateway: Gateway) -> None:
    with gateway.tap.subscribe(maxsize=2) as sub:  # never read while the calls run
        async with client(gateway.url) as ws:
            for n in range(20):
                assert (await rpc(ws, "sys.echo", [n], id=n))["result"] == [n]
        events = sub.take(100)
    # Subscribed and Connected fit; the 40 frames did not, nor Disconnected if it came yet.
    assert [type(e) for e in events[:2]] == [Subscribed, Connected]
    assert isinstance(events[2], Dropped)
    assert sub.dropped >= 40


async def test_the_tap_endpoint_is_for_admins_only(gateway: Gateway) -> None:
    status, body = await refused(tap_url(gateway))
    assert (status, body["reason"]) == (401, "missing")
    headers = {"Authorization": f"Bearer {make_token('alice', role='player')}"}
    status, body = await refused(tap_url(gateway), additional_headers=headers)
    assert (status, body["error"]) == (403, "forbidden")
    assert "role=admin" in body["detail"]


async def test_listener_hears_open_connections_then_refusals(start_gateway: GatewayFactory) -> None:
    gateway = await start_gateway(limits=Limits(max_connections=1))
    # A listener is no game connection: it gets in although the node is full.
    async with client(gateway.url, make_token("alice")), \
            connect(tap_url(gateway), additional_headers=admin()) as tap:
        hello = await heard(tap, Connected, 1)
        assert isinstance(hello[0], Subscribed)
        assert isinstance(hello[1], Connected)
        assert hello[1].user == "alice"
        assert len(gateway.registry) == 1
        await refused(gateway.url, additional_headers={"Authorization": "Bearer junk"})
        await refused(gateway.url, additional_headers=admin())
        await refused(tap_url(gateway), additional_headers={
            "Authorization": f"Bearer {make_token('eve')}"})
        seen = await heard(tap, AuthRefused, 3)
    assert [(e.status, e.reason, e.path) for e in seen if isinstance(e, AuthRefused)] == [
        (401, "malformed", "/ws"), (503, "too_many_connections", "/ws"),
        (403, "forbidden", TAP_PATH)]
    assert [e.user for e in seen if isinstance(e, AuthRefused)] == [None, "ops", "eve"]


def test_every_event_and_field_is_documented() -> None:
    from tests.test_docs import API_MD, section

    body = section(API_MD.read_text(encoding="utf-8"), "Inspector tap")
    table = re.findall(r"^\| `([a-z_]+)` \| ([^|]*) \|", body, flags=re.MULTILINE)
    rows = {tag: cells for tag, cells in table if tag != "event"}  # not the header
    kinds = (Subscribed, Dropped, Connected, Disconnected, AuthRefused, FrameSeen)
    assert set(rows) == {cls.TAG for cls in kinds}
    for cls in kinds:
        documented = set(re.findall(r"`([a-z_]+)`", rows[cls.TAG]))
        assert documented == {f.name for f in fields(cls)} - {"t_us"}, cls.TAG
