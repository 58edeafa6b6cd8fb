"""The client's connection lifecycle: one enum, one transition table, no I/O.

::

                 connect()                 opened
    DISCONNECTED ─────────► CONNECTING ──────────────► CONNECTED
         ▲                      │   ▲ given up             │
         │ given up             │   │ (auth, 404,          │ dropped
         │ (auth, kicked,       ▼   │  max attempts)       ▼
         └─────────────────── RECONNECTING ◄────────────────┘
                                  │      └──── opened ───► CONNECTED
    close() from any state but CLOSED ──► CLOSED (terminal)

``DISCONNECTED`` is "not trying": before the first :meth:`connect` and after
the client gave up (``last_error`` says why); ``connect()`` may start again.
``RECONNECTING`` covers both the backoff wait and the attempts during it.
``CLOSED`` is terminal: the application called ``close()``.

A transition the table does not allow raises :class:`IllegalTransition`, and
so does a local call the current state does not allow (``call`` after
``close``, ``connect`` twice): both are the caller's bug, never the peer's.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from rtctl.client.errors import ClientError

__all__ = [
    "ACCEPTS_MESSAGES",
    "TRANSITIONS",
    "ClientState",
    "IllegalTransition",
    "StateChanged",
    "StateMachine",
]


class ClientState(enum.Enum):
    DISCONNECTED = "disconnected"  # not trying: never started, or gave up
    CONNECTING = "connecting"  # the first attempt after connect()
    CONNECTED = "connected"  # open, the send queue flushed: calls flow
    RECONNECTING = "reconnecting"  # lost or refused: waiting out the backoff, retrying
    CLOSED = "closed"  # close() was called; terminal


_S = ClientState
TRANSITIONS: Mapping[ClientState, frozenset[ClientState]] = {
    _S.DISCONNECTED: frozenset({_S.CONNECTING, _S.CLOSED}),
    _S.CONNECTING: frozenset({_S.CONNECTED, _S.RECONNECTING, _S.DISCONNECTED, _S.CLOSED}),
    _S.CONNECTED: frozenset({_S.RECONNECTING, _S.DISCONNECTED, _S.CLOSED}),
    _S.RECONNECTING: frozenset({_S.CONNECTED, _S.DISCONNECTED, _S.CLOSED}),
    _S.CLOSED: frozenset(),
}

# Where call()/notify() are accepted: sent at once when connected, else queued.
ACCEPTS_MESSAGES = frozenset({_S.CONNECTING, _S.CONNECTED, _S.RECONNECTING})


class IllegalTransition(ClientError):
    """A state change or a local call the current state does not allow."""


@dataclass(frozen=True, slots=True)
class StateChanged:
    """The client moved from ``old`` to ``new``; ``error`` is why, when it failed."""

    old: ClientState
    new: ClientState
    error: BaseException | None = None


class StateMachine:
    """Holds the state and checks every move against :data:`TRANSITIONS`."""

    def __init__(self) -> None:
        self.state = ClientState.DISCONNECTED

    def transition(self, new: ClientState, error: BaseException | None = None) -> StateChanged:
        """Move to ``new`` and return the event, or raise :class:`IllegalTransition`."""
        if new not in TRANSITIONS[self.state]:
            raise IllegalTransition(f"client: {self.state.value} -> {new.value} is not allowed")
        event = StateChanged(self.state, new, error)
        self.state = new
        return event

    def require(self, allowed: frozenset[ClientState], action: str) -> None:
        """Raise :class:`IllegalTransition` unless the state allows ``action``."""
        if self.state not in allowed:
            raise IllegalTransition(f"cannot {action} while {self.state.value}")
