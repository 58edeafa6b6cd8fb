"""What the gateway's services need from shared state, as five small interfaces.

A node keeps its live connections itself; what other nodes must see goes
through these collaborators, passed to the :class:`~rtctl.gateway.server.Gateway`
as one :class:`Backends` bundle:

* :class:`SessionStore` — one :class:`SessionRecord` per connection, with a TTL,
  indexes by user and by node, and node heartbeats so survivors can find and
  clean up after a node that died without warning;
* :class:`PresenceStore` — per-user status and the set of devices (sessions)
  that keep the user online;
* :class:`RoomStore` — room membership by session;
* :class:`SnapshotStore` — which node owns each stateful room, and the room's
  last kept snapshot, for late joins and for a new owner after the old one died;
* :class:`EventBus` — fire-and-forget messages to every node (presence changes,
  room traffic);
* :class:`HistoryStore` — each room's message stream: offsets, an epoch, and the
  last messages kept for a while, so a client that reconnects gets what it missed
  or is told it cannot (Centrifugo's stream recovery);
* :class:`ReplyCache` — replies of keyed requests, so a request re-sent after a
  reconnect is answered, not run twice.

Memory implementations (:mod:`rtctl.backends.memory`) are the default and are
real; Redis (:mod:`rtctl.backends.redis`) and NATS (:mod:`rtctl.backends.nats`)
carry the same contract across processes. A backend that cannot be reached
raises :class:`BackendUnavailable` (-32050) within a bounded time, never hangs::

    RpcError
    └── BackendUnavailable     -32050, data.backend names redis / nats
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeAlias, TypedDict

from rtctl.backends.errors import BackendUnavailable
from rtctl.backends.stats import BackendStats
from rtctl.exceptions import ConfigError
from rtctl.protocol.streams import Reason, StreamPosition

__all__ = [
    "DEFAULT_HISTORY_SIZE",
    "DEFAULT_HISTORY_TTL",
    "DEFAULT_NODE_TTL",
    "DEFAULT_POSITION_TTL",
    "DEFAULT_SESSION_TTL",
    "STATUSES",
    "BackendUnavailable",
    "Backends",
    "EventBus",
    "Health",
    "HistoryEntry",
    "HistoryLimits",
    "HistoryStore",
    "MessageHandler",
    "Presence",
    "PresenceStore",
    "RecoveryHook",
    "Replay",
    "ReplyCache",
    "RoomStore",
    "Seen",
    "SessionJSON",
    "SessionRecord",
    "SessionStore",
    "SnapshotStore",
    "Status",
    "Subscription",
    "Unrecoverable",
]

DEFAULT_NODE_TTL = 10.0  # a dead node's sessions are cleaned up within this (issue: <= 15 s)
DEFAULT_SESSION_TTL = 60.0  # a record not refreshed by its node for this long expires
DEFAULT_HISTORY_SIZE = 1000  # messages kept per room
DEFAULT_HISTORY_TTL = 120.0  # s a room's messages live after its last publish (Socket.IO's 2 min)
DEFAULT_POSITION_TTL = 86400.0  # s a room's (offset, epoch) outlives its last publish

Status: TypeAlias = Literal["online", "away", "busy", "invisible"]
STATUSES: tuple[Status, ...] = ("online", "away", "busy", "invisible")


class SessionJSON(TypedDict):
    """A session as ``session.list`` answers it."""

    id: str
    user: str
    node: str
    created_at: float
    last_seen: float
    metadata: dict[str, Any]


class Seen(TypedDict):
    """A user's presence as others see it (``presence.*``, ``presence.changed``)."""

    status: Literal["online", "away", "busy", "offline"]
    last_seen: float | None
    text: str | None
    version: int
MessageHandler: TypeAlias = Callable[[dict[str, Any]], None]
RecoveryHook: TypeAlias = Callable[[], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRecord:
    """One connection as the cluster sees it. Times are Unix epoch seconds."""

    id: str
    user: str
    node: str
    created_at: float
    last_seen: float
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> SessionJSON:
        """The record as ``session.list`` answers it (times in epoch milliseconds)."""
        return {"id": self.id, "user": self.user, "node": self.node,
                "created_at": round(self.created_at * 1000, 3),
                "last_seen": round(self.last_seen * 1000, 3), "metadata": dict(self.metadata)}


@dataclass(frozen=True, slots=True)
class Presence:
    """A user's stored presence: chosen status, text, devices online, last_seen (ms), and
    ``version``, raised by every stored change (see :class:`PresenceStore`)."""

    status: Status = "online"
    text: str | None = None
    devices: int = 0
    last_seen: float | None = None
    version: int = 0

    def seen(self) -> Seen:
        """What other users see: ``invisible`` and no devices both read as offline."""
        if self.devices == 0 or self.status == "invisible":
            return {"status": "offline", "last_seen": self.last_seen, "text": None,
                    "version": self.version}
        return {"status": self.status, "last_seen": None, "text": self.text,
                "version": self.version}


class Health(Protocol):
    """A backend connection whose state is known without a round trip."""

    name: str
    url: str
    stats: BackendStats  # its calls' durations and errors, for /metrics

    async def start(self) -> None:
        """Connect; raise :class:`BackendUnavailable` if that fails."""

    async def close(self) -> None: ...

    def failure(self) -> str | None:
        """None while healthy, else why not (cached; cheap enough for every probe)."""

    def on_recovered(self, hook: RecoveryHook) -> None:
        """Call ``hook()`` whenever the connection comes back after a failure."""


class SessionStore(Protocol):
    async def put(self, records: Sequence[SessionRecord], *, ttl: float) -> None:
        """Store (or refresh) records for ``ttl`` s and index them by user and node."""

    async def get(self, session_id: str) -> SessionRecord | None: ...

    async def remove(self, session_id: str, *, user: str, node: str) -> None: ...

    async def by_user(self, user: str) -> list[SessionRecord]:
        """The user's unexpired sessions on every node, oldest first."""

    async def by_node(self, node: str) -> dict[str, str]:
        """Session id → user for a node; outlives the records' TTL (for cleanup)."""

    async def beat(self, node: str, *, ttl: float) -> bool:
        """Renew the node's heartbeat; False if it had lapsed (or never existed)."""

    async def dead_nodes(self) -> list[str]:
        """Known nodes whose heartbeat has lapsed."""

    async def claim(self, node: str, claimant: str, *, ttl: float) -> bool:
        """True for exactly one claimant of a dead node's cleanup within ``ttl``."""

    async def forget_node(self, node: str) -> None:
        """Drop a node and its session index (after cleanup or a clean shutdown)."""


class PresenceStore(Protocol):
    """Presence per user. Every change stored (a device added or removed, ``last_seen``
    stamped, a status set) raises the user's ``version`` in the same atomic step, to
    ``max(version + 1, now in ms)``: increasing, and still above every version handed out
    before the store lost the user (Redis flushed, or the record's retention lapsed), so a
    node can drop a late copy of an older change (a hybrid logical clock)."""

    async def connect(self, user: str, session_id: str) -> bool:
        """Count a device online; True if the user had none before."""

    async def disconnect(self, user: str, session_id: str, *, now_ms: float) -> bool:
        """Forget a device and stamp ``last_seen``; True if it was the user's last."""

    async def set_status(self, user: str, status: Status, text: str | None, *,
                         now_ms: float) -> None: ...

    async def get(self, users: Sequence[str]) -> dict[str, Presence]:
        """Stored presence per user; a user never seen gets ``Presence()``."""


class RoomStore(Protocol):
    """Membership by session, counted and listed by user; no call costs O(members).

    A user is in a room while any of their sessions is. Users are ordered by
    code point (which is also UTF-8 byte order, Redis' lexicographic order), so
    a page starts after the last user of the previous one and a walk stays
    stable while others join and leave.
    """

    async def join(self, room: str, session_id: str, user: str) -> tuple[bool, int]:
        """Add a session; (is this the user's first session here, users in the room now)."""

    async def leave(self, room: str, session_id: str) -> tuple[bool, int]:
        """Remove a session; (was it its user's last session here, users left in the room)."""

    async def members(self, room: str, *, after: str | None, limit: int) -> tuple[list[str], int]:
        """Up to ``limit`` users sorted, each after ``after`` (None: from the first); and the
        room's user count."""

    async def rooms_of(self, session_id: str) -> list[str]: ...


class SnapshotStore(Protocol):
    """Which node owns each stateful room, and each room's last kept snapshot.

    Ownership is a lease the owner renews well within ``ttl``: a node that dies
    without releasing its rooms loses them ``ttl`` s after its last renewal, and
    the next node to claim one can resume from the room's kept snapshot.
    """

    async def own(self, room: str, node: str, *, ttl: float) -> str:
        """Claim ``room`` for ``node`` for ``ttl`` s unless another node's claim is live;
        returns the owner (``node`` when claimed or renewed)."""

    async def release(self, room: str, node: str) -> None:
        """Give up ``room`` if ``node`` owns it (no effect otherwise)."""

    async def put(self, room: str, version: int, data: bytes, *, ttl: float) -> None:
        """Keep ``data`` (a full state, binary) as the room's snapshot at ``version``; it lasts
        ``ttl`` s."""

    async def get(self, room: str) -> tuple[int, bytes] | None:
        """The room's kept snapshot (version, data), or None (never kept, or expired)."""

    async def forget(self, room: str) -> None:
        """Drop the room's snapshot (it ended: the next one by that name starts afresh)."""


class Subscription(Protocol):
    async def unsubscribe(self) -> None: ...


class EventBus(Protocol):
    async def publish(self, subject: str, message: dict[str, Any]) -> None:
        """Deliver to every subscriber on every node, this one included."""

    async def subscribe(self, subject: str, handler: MessageHandler) -> Subscription: ...


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One message of a room's stream, as the room service appended it
    (``{"from", "data", "session"}``)."""

    offset: int
    message: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Replay:
    """Recovered: every entry after the reader's position, whole, in order."""

    position: StreamPosition  # the stream's end as read; the last entry's offset, if any
    entries: tuple[HistoryEntry, ...]


@dataclass(frozen=True, slots=True)
class Unrecoverable:
    """Not recovered, and why; the reader starts again at ``position``, the end now."""

    position: StreamPosition
    reason: Reason


@dataclass(frozen=True, kw_only=True)
class HistoryLimits:
    """How much of each room's stream is kept: the last ``size`` messages, until ``ttl`` s
    after the room's last one; one recovery replays at most ``max_replay`` (else
    ``too_many``: the client is better served by a fresh start)."""

    size: int = DEFAULT_HISTORY_SIZE
    ttl: float = DEFAULT_HISTORY_TTL
    max_replay: int = DEFAULT_HISTORY_SIZE

    def __post_init__(self) -> None:
        for name in ("size", "max_replay"):
            if (count := getattr(self, name)) < 1:
                raise ConfigError(f"history {name} must be 1 or more messages, got {count}")
        # The position must outlive the messages: offsets never restart under kept ones.
        if not 0 < self.ttl <= DEFAULT_POSITION_TTL:
            raise ConfigError(f"history ttl must be above 0 and at most "
                              f"{DEFAULT_POSITION_TTL:g}s, got {self.ttl:g}s")


class HistoryStore(Protocol):
    """Each room's message stream: an offset counter, an epoch, the last messages.

    The epoch is a random token made when a room's position is first needed (or after it
    was lost or expired); offsets count from 1 within an epoch. A room's position outlives
    its last append by :data:`DEFAULT_POSITION_TTL`, its messages by ``limits.ttl``.
    """

    limits: HistoryLimits

    async def append(self, room: str, message: dict[str, Any], *, key: str | None = None
                     ) -> tuple[StreamPosition, bool]:
        """Append; returns its position and False. With a ``key`` already appended to this
        room while its message is kept (the history window): the first one's position and
        True, nothing appended. Atomic."""

    async def position(self, room: str) -> StreamPosition:
        """The stream's end now; a room never published to gets offset 0 and an epoch that
        this read fixes (a later append keeps it)."""

    async def since(self, room: str, since: StreamPosition) -> Replay | Unrecoverable:
        """Everything after ``since.offset``, or why not
        (:func:`rtctl.backends.history.replay_after`)."""


class ReplyCache(Protocol):
    """Replies of keyed requests (the gateway's generic idempotency layer)."""

    async def recall(self, key: str) -> str | None:
        """The reply remembered under ``key``, or None (never, or expired)."""

    async def remember(self, key: str, reply: str, *, ttl: float) -> None:
        """Keep ``reply`` under ``key`` for ``ttl`` s."""


@dataclass(frozen=True, kw_only=True)
class Backends:
    """Everything a node shares with the cluster, and who it is there."""

    sessions: SessionStore
    presence: PresenceStore
    rooms: RoomStore
    bus: EventBus
    snapshots: SnapshotStore
    history: HistoryStore
    replies: ReplyCache
    node_id: str
    node_ttl: float = DEFAULT_NODE_TTL
    session_ttl: float = DEFAULT_SESSION_TTL
    subject_prefix: str = "rtctl"
    connections: tuple[Health, ...] = ()  # started, watched and closed with the node

    def failures(self) -> dict[str, str]:
        """Failing connections by name; empty when all are healthy."""
        return {c.name: why for c in self.connections if (why := c.failure()) is not None}

    def require_healthy(self) -> None:
        """Fail fast (-32050) before a change that must be both stored and broadcast."""
        for connection in self.connections:
            why = connection.failure()
            if why is not None:
                raise BackendUnavailable(connection.name, why)

    async def start(self) -> None:
        for connection in self.connections:
            await connection.start()

    async def close(self) -> None:
        for connection in reversed(self.connections):
            await connection.close()

    def on_recovered(self, hook: RecoveryHook) -> None:
        for connection in self.connections:
            connection.on_recovered(hook)

