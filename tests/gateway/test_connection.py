"""One connection, sans-I/O: its transition table, notify, close and its call context."""

from __future__ import annotations

import itertools
from collections.abc import Hashable
from types import MappingProxyType
from typing import Any

import orjson
import pytest

from rtctl.gateway.auth import Identity
from rtctl.gateway.connection import (
    TRANSITIONS,
    Connection,
    ConnectionState,
    IllegalTransition,
)
from rtctl.protocol.codes import CloseCode
from rtctl.protocol.lanes import Lane, Policy
from rtctl.protocol.upgrade import BINARY_SUBPROTOCOL
from rtctl.router import CallContext

CONNECTING, OPEN, CLOSING, CLOSED = (ConnectionState.CONNECTING, ConnectionState.OPEN,
                                     ConnectionState.CLOSING, ConnectionState.CLOSED)

# Written out rather than read from TRANSITIONS, so a change to the table fails here.
LEGAL = {(CONNECTING, OPEN), (CONNECTING, CLOSED), (OPEN, CLOSING), (OPEN, CLOSED),
         (CLOSING, CLOSED)}


class FakeTransport:
    """Records what the connection asks of the driver; ``accept`` is what send answers."""

    def __init__(self, accept: bool = True, queue: tuple[int, int] | None = None,
                 lanes: dict[Lane, int] | None = None) -> None:
        self.accept = accept
        self.queue = queue
        self.lanes = lanes or {}
        self.sent: list[bytes] = []
        self.binary: list[bool] = []  # whether each of ``sent`` was binary
        self.tags: list[tuple[Lane, Policy | None, Hashable | None]] = []  # each one's lane…
        self.closed: list[tuple[int, str]] = []

    def send(self, data: bytes, binary: bool = False, *, lane: Lane = Lane.EVENTS,
             policy: Policy | None = None, key: Hashable | None = None) -> bool:
        self.sent.append(data)
        self.binary.append(binary)
        self.tags.append((lane, policy, key))
        return self.accept

    def close(self, code: int, reason: str) -> None:
        self.closed.append((code, reason))

    def queued(self) -> tuple[int, int] | None:
        return self.queue

    def lane_bytes(self, lane: Lane) -> int:
        return self.lanes.get(lane, 0)


def identity(user: str = "alice", expires_at: float | None = 2000.0,
             **claims: Any) -> Identity:
    return Identity(user=user, claims=MappingProxyType({"sub": user, **claims}),
                    expires_at=expires_at)


def connection(state: ConnectionState = CONNECTING, transport: FakeTransport | None = None,
               ident: Identity | None = None) -> Connection:
    conn = Connection(id="c-1", identity=ident or identity(), remote_address="10.0.0.7:5555",
                      local_address="127.0.0.1:8765", connected_at=1000.5,
                      subprotocol="rtctl.v1", transport=transport or FakeTransport())
    conn.state = state
    return conn


@pytest.mark.parametrize(
    ("old", "new"),
    [pytest.param(old, new, id=f"{old.value}->{new.value}")
     for old, new in itertools.product(ConnectionState, repeat=2)],
)
def test_transition_table(old: ConnectionState, new: ConnectionState) -> None:
    conn = connection(old)
    if (old, new) in LEGAL:
        conn.transition(new)
        assert conn.state is new
    else:
        with pytest.raises(IllegalTransition, match=f"c-1: {old.value} -> {new.value}"):
            conn.transition(new)
        assert conn.state is old


def test_the_table_is_the_legal_set() -> None:
    assert {(old, new) for old, targets in TRANSITIONS.items() for new in targets} == LEGAL
    assert set(TRANSITIONS) == set(ConnectionState)


def test_a_new_connection_is_connecting() -> None:
    conn = Connection(id="c-2", identity=identity(), remote_address=None, local_address=None,
                      connected_at=0.0, subprotocol=None, transport=FakeTransport())
    assert conn.state is CONNECTING
    assert (conn.close_code, conn.close_reason) == (None, "")


@pytest.mark.parametrize(
    ("state", "sends"),
    [pytest.param(CONNECTING, False, id="connecting"), pytest.param(OPEN, True, id="open"),
     pytest.param(CLOSING, False, id="closing"), pytest.param(CLOSED, False, id="closed")],
)
def test_notify_only_while_open(state: ConnectionState, sends: bool) -> None:
    transport = FakeTransport()
    conn = connection(state, transport)
    conn.notify("room.joined", {"room": "lobby"})
    conn.push(b'{"jsonrpc":"2.0","method":"room.joined"}')
    assert len(transport.sent) == 2 * int(sends)
    assert conn.state is state
    assert transport.closed == []


def test_push_sends_the_bytes_as_they_are() -> None:
    transport = FakeTransport()
    data = b'{"jsonrpc":"2.0","method":"room.message","params":{"room":"r"}}'
    connection(OPEN, transport).push(data)
    assert transport.sent == [data]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param({"room": "lobby", "who": "é"},
                     {"jsonrpc": "2.0", "method": "room.joined",
                      "params": {"room": "lobby", "who": "é"}}, id="object-params"),
        pytest.param([1, 2], {"jsonrpc": "2.0", "method": "room.joined", "params": [1, 2]},
                     id="array-params"),
        pytest.param(None, {"jsonrpc": "2.0", "method": "room.joined"}, id="no-params"),
    ],
)
def test_notify_encodes_a_notification(params: Any, expected: dict[str, Any]) -> None:
    transport = FakeTransport()
    connection(OPEN, transport).notify("room.joined", params)
    [data] = transport.sent
    assert isinstance(data, bytes)
    assert orjson.loads(data) == expected  # no "id": a notification (JSON-RPC 2.0 §4.1)


def test_what_is_sent_carries_its_lane_policy_and_key() -> None:
    transport = FakeTransport()
    conn = connection(OPEN, transport)
    conn.subprotocol = BINARY_SUBPROTOCOL
    conn.notify("presence.changed", {"user": "bob"}, lane=Lane.CHAT,
                policy=Policy.COALESCIBLE, key=("presence", "bob"))
    conn.push(b'{"jsonrpc":"2.0","method":"room.message"}')
    conn.push(b"{}", lane=Lane.TELEMETRY, policy=Policy.DROPPABLE)
    conn.push_binary(b"\x01\x01r\x00")
    conn.push_binary(b"\x01\x01r\x01", lane=Lane.EVENTS, key="k")
    assert transport.tags == [
        (Lane.CHAT, Policy.COALESCIBLE, ("presence", "bob")),
        (Lane.EVENTS, None, None),  # a notification's default: events, the lane's policy
        (Lane.TELEMETRY, Policy.DROPPABLE, None),
        (Lane.STATE, None, None),  # a binary message's default: state
        (Lane.EVENTS, None, "k"),
    ]
    assert transport.binary == [False, False, False, True, True]


@pytest.mark.parametrize(("queued", "lane", "backlog"), [
    pytest.param(None, None, 0, id="never-queued"),
    pytest.param((3, 120), None, 120, id="all-lanes"),
    pytest.param((3, 120), Lane.STATE, 100, id="one-lane"),
    pytest.param((3, 120), Lane.CHAT, 0, id="an-empty-lane"),
])
def test_the_backlog_is_the_bytes_waiting_in_a_lane_or_all(
        queued: tuple[int, int] | None, lane: Lane | None, backlog: int) -> None:
    transport = FakeTransport(queue=queued, lanes={Lane.STATE: 100, Lane.EVENTS: 20})
    assert connection(OPEN, transport).backlog(lane) == backlog


def test_a_refused_send_closes_as_slow_consumer() -> None:
    transport = FakeTransport(accept=False)
    conn = connection(OPEN, transport)
    conn.notify("tick", [1])
    assert transport.closed == [(CloseCode.SLOW_CONSUMER, "outbound queue overflowed")]
    assert transport.closed[0][0] == 4008
    assert conn.state is CLOSING
    assert (conn.close_code, conn.close_reason) == (4008, "outbound queue overflowed")
    conn.notify("tick", [2])  # closing: nothing more is sent, nothing closed twice
    assert len(transport.sent) == 1
    assert len(transport.closed) == 1


def test_close_twice_calls_the_transport_once() -> None:
    transport = FakeTransport()
    conn = connection(OPEN, transport)
    conn.close(4003, "kicked")
    conn.close(1000, "again")
    assert transport.closed == [(4003, "kicked")]
    assert conn.state is CLOSING
    assert (conn.close_code, conn.close_reason) == (4003, "kicked")


@pytest.mark.parametrize("state", [CONNECTING, CLOSING, CLOSED], ids=lambda s: s.value)
def test_close_outside_open_is_ignored(state: ConnectionState) -> None:
    transport = FakeTransport()
    conn = connection(state, transport)
    conn.close(1000, "bye")
    assert transport.closed == []
    assert conn.state is state
    assert conn.close_code is None


def test_context_carries_the_connection() -> None:
    conn = connection(OPEN, ident=identity("alice", 2000.0, role="admin"))
    ctx = conn.context
    assert isinstance(ctx, CallContext)
    assert ctx.connection_id == "c-1"
    assert ctx.user == "alice"
    assert dict(ctx.claims) == {"sub": "alice", "role": "admin"}
    assert ctx.expires_at == 2000.0
    assert ctx.remote_address == "10.0.0.7:5555"
    assert ctx.subprotocol == "rtctl.v1"
    assert ctx.connected_at == 1000.5
    assert ctx.session is conn.session
    assert ctx.peer is conn
    assert conn.context is ctx  # made once, kept


def test_context_is_rebuilt_after_reauthenticate() -> None:
    conn = connection(OPEN, ident=identity("alice", 2000.0))
    before = conn.context
    before.session["score"] = 3
    conn.reauthenticate(identity("alice", 5000.0, scope="refreshed"))
    after = conn.context
    assert after is not before
    assert after.expires_at == 5000.0
    assert after.claims["scope"] == "refreshed"
    assert (conn.expires_at, conn.claims["scope"]) == (5000.0, "refreshed")
    assert after.session is before.session  # the game state outlives the token
    assert after.session == {"score": 3}
    assert after.connected_at == before.connected_at


def test_identity_properties() -> None:
    conn = connection(ident=identity("bob", None, team="red"))
    assert conn.user == "bob"
    assert conn.claims["team"] == "red"
    assert conn.expires_at is None
    assert conn.context.expires_at is None
