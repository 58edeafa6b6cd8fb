"""One client connection: its lifecycle as a state machine, and what it carries.

The states and their legal transitions are one table (:data:`TRANSITIONS`)::

    CONNECTING ──► OPEN ──► CLOSING ──► CLOSED
        │            │                    ▲
        └────────────┴────────────────────┘

A transition the table does not allow raises :class:`IllegalTransition`: that
is a bug in the gateway, never the peer's fault. The object holds no socket:
it talks to the driver through a :class:`Transport`, so services and tests use
it without I/O.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from rtctl.exceptions import RtctlError
from rtctl.gateway.auth import Identity
from rtctl.protocol import jsonrpc
from rtctl.protocol.codes import CloseCode
from rtctl.protocol.lanes import Lane, Policy
from rtctl.protocol.shaping import Bucket
from rtctl.protocol.upgrade import BINARY_SUBPROTOCOL, takes_binary
from rtctl.router import CallContext

__all__ = ["TRANSITIONS", "Connection", "ConnectionState", "IllegalTransition", "Transport"]


class ConnectionState(enum.Enum):
    CONNECTING = "connecting"  # authenticated at the upgrade, not yet registered
    OPEN = "open"  # registered: calls flow
    CLOSING = "closing"  # a close was asked for (by us or the peer)
    CLOSED = "closed"  # gone from the registry, hooks have run


TRANSITIONS: Mapping[ConnectionState, frozenset[ConnectionState]] = {
    ConnectionState.CONNECTING: frozenset({ConnectionState.OPEN, ConnectionState.CLOSED}),
    ConnectionState.OPEN: frozenset({ConnectionState.CLOSING, ConnectionState.CLOSED}),
    ConnectionState.CLOSING: frozenset({ConnectionState.CLOSED}),
    ConnectionState.CLOSED: frozenset(),
}


class IllegalTransition(RtctlError):
    """The gateway tried a state change the table forbids."""


class Transport(Protocol):
    """The driver's side: how bytes leave and how the socket closes."""

    def send(self, data: bytes, binary: bool = False, *, lane: Lane = Lane.EVENTS,
             policy: Policy | None = None, key: Hashable | None = None) -> bool:
        """Queue one text (or ``binary``) message in ``lane``; never blocks.

        False only at the outbox's hard bound (the Connection closes 4008).
        Both kinds wait in one queue, so within a lane they leave in the order
        sent, and count against one bound.
        """

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake (RFC 6455 §7.1.2)."""

    def queued(self) -> tuple[int, int] | None:
        """Messages and bytes waiting to be written; None while nothing was ever queued."""

    def lane_bytes(self, lane: Lane) -> int:
        """Bytes waiting in ``lane`` (0 while nothing was ever queued)."""


@dataclass(eq=False, kw_only=True, slots=True)
class Connection:
    """A live connection as services see it (it is the handler's ``ctx.peer``)."""

    id: str
    identity: Identity
    remote_address: str | None
    local_address: str | None
    connected_at: float
    subprotocol: str | None
    transport: Transport
    state: ConnectionState = ConnectionState.CONNECTING
    session: dict[str, Any] = field(default_factory=dict)
    close_code: int | None = None
    close_reason: str = ""
    inbound: Bucket | None = field(default=None, init=False, repr=False)  # --inbound-rate's
    _context: CallContext | None = field(default=None, init=False, repr=False)

    @property
    def context(self) -> CallContext:
        """The :class:`CallContext` handlers receive, made at the first call.

        Idle connections are the most numerous kind; they never pay for one.
        """
        ctx = self._context
        if ctx is None:
            identity = self.identity
            ctx = self._context = CallContext(
                connection_id=self.id, user=identity.user, claims=identity.claims,
                expires_at=identity.expires_at, remote_address=self.remote_address,
                subprotocol=self.subprotocol, connected_at=self.connected_at,
                session=self.session, peer=self, resumed=self.resumed,
                resume_error=identity.resume_error)
        return ctx

    def reauthenticate(self, identity: Identity) -> None:
        """Adopt a refreshed identity; the caller has checked it names the same user.

        Whether the connection resumed a session stays what the upgrade made it.
        """
        self.identity = dataclasses.replace(identity, session=self.identity.session,
                                            resume_error=self.identity.resume_error)
        self._context = None

    @property
    def resumed(self) -> bool:
        """Did this connection take over an earlier one's session (a recovery token)?"""
        return self.identity.session is not None

    @property
    def user(self) -> str:
        return self.identity.user

    @property
    def claims(self) -> Mapping[str, Any]:
        return self.identity.claims

    @property
    def expires_at(self) -> float | None:
        return self.identity.expires_at

    def transition(self, new: ConnectionState) -> None:
        """Move to ``new`` or raise :class:`IllegalTransition`."""
        if new not in TRANSITIONS[self.state]:
            raise IllegalTransition(
                f"connection {self.id}: {self.state.value} -> {new.value} is not allowed"
            )
        self.state = new

    def notify(self, method: str, params: Any = None, *, lane: Lane = Lane.EVENTS,
               policy: Policy | None = None, key: Hashable | None = None) -> None:
        """Send a notification (JSON-RPC 2.0 §4.1) in ``lane`` unless the connection is closing."""
        if self.state is ConnectionState.OPEN:
            self.push(jsonrpc.dumps(jsonrpc.encode_notification(method, params)),
                      lane=lane, policy=policy, key=key)

    def push(self, data: bytes, *, lane: Lane = Lane.EVENTS, policy: Policy | None = None,
             key: Hashable | None = None) -> None:
        """Send an encoded notification as it is (a room encodes once for all its members)."""
        if self.state is ConnectionState.OPEN and not self.transport.send(
                data, lane=lane, policy=policy, key=key):
            self._overflowed()

    def push_binary(self, data: bytes, *, lane: Lane = Lane.STATE, policy: Policy | None = None,
                    key: Hashable | None = None) -> None:
        """Send one binary message (opcode 2, RFC 6455 §5.6), in order with the text ones."""
        if not takes_binary(self.subprotocol):
            raise ValueError(f"connection {self.id} is on {self.subprotocol or 'no subprotocol'}"
                             f", not {BINARY_SUBPROTOCOL}: it takes no binary frames")
        if self.state is ConnectionState.OPEN and not self.transport.send(
                data, True, lane=lane, policy=policy, key=key):
            self._overflowed()

    def backlog(self, lane: Lane | None = None) -> int:
        """Bytes waiting in the outbound queue, in ``lane`` or in all (0 if it never queued)."""
        if lane is not None:
            return self.transport.lane_bytes(lane)
        queued = self.transport.queued()
        return 0 if queued is None else queued[1]

    def _overflowed(self) -> None:
        # A client this far behind is better reconnected and recovered.
        self.close(CloseCode.SLOW_CONSUMER, "outbound queue overflowed")

    def close(self, code: int, reason: str) -> None:
        """Close with a WebSocket close code; later calls are ignored."""
        if self.state is ConnectionState.OPEN:
            self.transition(ConnectionState.CLOSING)
            self.close_code, self.close_reason = code, reason
            self.transport.close(code, reason)
