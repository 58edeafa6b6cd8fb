"""The client half of rtctl: what a game or a bot embeds (``docs/client.md``).

:class:`Client` is the reconnecting connection; the rest is what its
options, callbacks and errors are made of. Every exception it raises is a
:class:`ClientError`.

This namespace is the game-facing API and loads no server code. Helpers only
tools need stay in their modules: :func:`rtctl.client.oneshot.call_once` (one
call on a fresh connection, for ``rtctl call`` and the tracer) and
:func:`rtctl.client.endpoint.endpoint_url` (the URL rules).
"""

from rtctl.client.backoff import Backoff
from rtctl.client.calls import NotificationReceived
from rtctl.client.connection import Client
from rtctl.client.errors import (
    DEFAULT_RETRYABLE_CODES,
    AuthRefused,
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
    SnapshotUnreadable,
    TransportError,
    Verdict,
)
from rtctl.client.events import Recovered
from rtctl.client.interpolation import (
    ANGLE,
    LINEAR,
    STEP,
    DelayBounds,
    Frame,
    Interpolator,
    adaptive_delay,
    lerp,
    lerp_angle,
    wrap_angle,
)
from rtctl.client.netstats import NetSnapshot, SequenceGap
from rtctl.client.prediction import Predictor, Reconciliation
from rtctl.client.queue import Overflow, QueueCounters, QueueLimits
from rtctl.client.recovery import Reconnection, ReconnectStep
from rtctl.client.rollback import Rollback, RollbackTooFar
from rtctl.client.rooms import RoomCounters, RoomMessage, RoomRecovery, Rooms
from rtctl.client.state import ApplyOutcome, StateStore, StoreStats
from rtctl.client.states import ClientState, IllegalTransition, StateChanged
from rtctl.client.synced_room import SyncedRoom
from rtctl.protocol.lanes import Lane, LaneStats, Policy

__all__ = [
    "ANGLE",
    "DEFAULT_RETRYABLE_CODES",
    "LINEAR",
    "STEP",
    "ApplyOutcome",
    "AuthRefused",
    "Backoff",
    "CallTimeout",
    "Client",
    "ClientClosed",
    "ClientError",
    "ClientState",
    "ConnectionLost",
    "DelayBounds",
    "ErrorKind",
    "Frame",
    "GaveUp",
    "IllegalTransition",
    "Interpolator",
    "Kicked",
    "Lane",
    "LaneStats",
    "MessageDropped",
    "NetSnapshot",
    "NotificationReceived",
    "Overflow",
    "Policy",
    "Predictor",
    "ProtocolError",
    "QueueCounters",
    "QueueFull",
    "QueueLimits",
    "Reconciliation",
    "ReconnectStep",
    "Reconnection",
    "Recovered",
    "Rollback",
    "RollbackTooFar",
    "RoomCounters",
    "RoomMessage",
    "RoomRecovery",
    "Rooms",
    "SequenceGap",
    "ServerError",
    "SnapshotUnreadable",
    "StateChanged",
    "StateStore",
    "StoreStats",
    "SyncedRoom",
    "TransportError",
    "Verdict",
    "adaptive_delay",
    "lerp",
    "lerp_angle",
    "wrap_angle",
]
