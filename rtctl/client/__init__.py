"""The client half of rtctl: what a game, a bot or a tool embeds.

:class:`Client` is the reconnecting connection (see ``docs/client.md``);
:func:`call_once` makes one call on a fresh connection and closes it.
"""

from rtctl.client.backoff import Backoff
from rtctl.client.calls import NotificationReceived
from rtctl.client.connection import Client
from rtctl.client.endpoint import endpoint_url
from rtctl.client.errors import (
    DEFAULT_RETRYABLE_CODES,
    CallTimeout,
    ClientClosed,
    ClientError,
    ConnectionLost,
    ErrorKind,
    GaveUp,
    Kicked,
    MessageDropped,
    ProtocolError,
    QueueFull,
    ServerError,
    TransportError,
    Verdict,
)
from rtctl.client.netstats import NetSnapshot, SequenceGap
from rtctl.client.oneshot import call_once
from rtctl.client.queue import Overflow, QueueCounters, QueueLimits
from rtctl.client.states import ClientState, IllegalTransition, StateChanged

__all__ = [
    "DEFAULT_RETRYABLE_CODES",
    "Backoff",
    "CallTimeout",
    "Client",
    "ClientClosed",
    "ClientError",
    "ClientState",
    "ConnectionLost",
    "ErrorKind",
    "GaveUp",
    "IllegalTransition",
    "Kicked",
    "MessageDropped",
    "NetSnapshot",
    "NotificationReceived",
    "Overflow",
    "ProtocolError",
    "QueueCounters",
    "QueueFull",
    "QueueLimits",
    "SequenceGap",
    "ServerError",
    "StateChanged",
    "TransportError",
    "Verdict",
    "call_once",
    "endpoint_url",
]
