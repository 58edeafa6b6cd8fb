"""The tap: every event of the gateway, streamed to admin listeners (``rtctl inspect``).

What happened is one of a few frozen dataclasses, named for it:
:class:`Connected`, :class:`Disconnected` (with the close code and reason,
RFC 6455 §7.1.5), :class:`AuthRefused` (an upgrade answered 401/403/429/503),
:class:`FrameSeen` (one WebSocket text message in either direction, with its
JSON-RPC 2.0 kind, method and id) and, for the listener itself,
:class:`Subscribed` and :class:`Dropped`. Each turns into one flat JSON object
with an ``event`` tag (:meth:`to_json`) and back (:func:`event_from_json`);
``docs/api.md`` lists the fields.

Cost is the design constraint. The gateway checks ``tap.active`` (one
attribute) per message; while nobody listens that is all it pays. With
listeners, the hot path stamps the time and appends a small tuple to each
listener's bounded queue: it never awaits and never encodes. The
:class:`FrameSeen` is built (the JSON decoded to find kind and method) by the
listener's own task as it takes the event, so a frame that is dropped cost
next to nothing. A full queue drops the event and counts it; the listener
learns of the gap in-band, a :class:`Dropped` event at the place it happened.
A slow listener therefore never slows the gateway down.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar, Protocol

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from rtctl.gateway.connection import Connection
from rtctl.protocol import jsonrpc

__all__ = [
    "ADMIN_ROLE",
    "BATCH",
    "DEFAULT_QUEUE",
    "IN",
    "OUT",
    "TAP_PATH",
    "AuthRefused",
    "Connected",
    "Disconnected",
    "Dropped",
    "FrameSeen",
    "Party",
    "Subscribed",
    "Subscription",
    "Tap",
    "TapEvent",
    "connected_event",
    "describe",
    "describe_message",
    "event_from_json",
    "is_admin",
    "stream",
]

TAP_PATH = "/tap"
ADMIN_ROLE = "admin"  # the value of the ``role`` claim a listener's token must carry
DEFAULT_QUEUE = 10_000  # events one listener may fall behind before drops begin
BATCH = 256  # events sent to a listener in one WebSocket message at most
IN, OUT = "in", "out"  # client → gateway, gateway → client


@dataclass(frozen=True, slots=True, kw_only=True)
class TapEvent:
    """Something the gateway did; ``t_us`` is Unix time in microseconds."""

    TAG: ClassVar[str]
    t_us: int

    def to_json(self) -> dict[str, Any]:
        """A flat JSON object: ``{"event": TAG, "t_us": ..., field: value, ...}``."""
        return {"event": self.TAG, **{f.name: getattr(self, f.name) for f in fields(self)}}


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscribed(TapEvent):
    """The first event a listener gets: it is attached, with a queue of ``queue`` events."""

    TAG = "subscribed"
    queue: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Dropped(TapEvent):
    """``count`` events were dropped here because this listener fell behind (``total`` so far)."""

    TAG = "dropped"
    count: int
    total: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Connected(TapEvent):
    """A WebSocket opened and was registered; addresses are ``host:port``."""

    TAG = "connected"
    conn: str
    user: str
    remote: str | None
    local: str | None
    path: str
    subprotocol: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Disconnected(TapEvent):
    """A connection is gone, with the close code and reason of RFC 6455 §7.1.5-§7.1.6."""

    TAG = "disconnected"
    conn: str
    user: str
    code: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthRefused(TapEvent):
    """An upgrade was refused before any WebSocket existed (``user`` when the token named one)."""

    TAG = "auth_refused"
    remote: str | None
    path: str
    status: int
    reason: str
    user: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class FrameSeen(TapEvent):
    """One text message. ``kind`` is what :func:`describe` found in ``payload``.

    For a batch (JSON-RPC 2.0 §6) ``method`` lists its methods comma-separated,
    ``id`` is None and ``error`` is the first error code in it.
    """

    TAG = "frame"
    conn: str
    user: str
    direction: str
    size: int
    kind: str
    method: str | None
    id: jsonrpc.RequestId
    error: int | None
    payload: str
    impairment: str | None = None  # what the simulator did to it: "delayed 52 ms", "dropped"

    @classmethod
    def of(cls, t_us: int, conn: str, user: str, direction: str,
           data: str | bytes, impairment: str | None = None) -> FrameSeen:
        """Describe a message as it went over the wire."""
        text = data if isinstance(data, str) else data.decode("utf-8", "replace")
        size = len(data) if isinstance(data, bytes) else len(data.encode())
        kind, method, request_id, error = describe(text)
        return cls(t_us=t_us, conn=conn, user=user, direction=direction, size=size, kind=kind,
                   method=method, id=request_id, error=error, payload=text,
                   impairment=impairment)


_EVENTS: Mapping[str, type[TapEvent]] = {
    cls.TAG: cls for cls in (Subscribed, Dropped, Connected, Disconnected, AuthRefused, FrameSeen)
}


def event_from_json(obj: Any) -> TapEvent:
    """The event a :meth:`TapEvent.to_json` object stands for; ``ValueError`` if none."""
    if not isinstance(obj, dict):
        raise ValueError("a tap event is a JSON object")
    cls = _EVENTS.get(obj.get("event"))  # type: ignore[arg-type]
    if cls is None:
        raise ValueError(f"unknown tap event {obj.get('event')!r}")
    missing = [f.name for f in fields(cls) if f.name not in obj and f.default is MISSING]
    if missing:
        raise ValueError(f"{cls.TAG} event without {', '.join(missing)}")
    return cls(**{f.name: obj[f.name] for f in fields(cls) if f.name in obj})


def describe_message(obj: Any) -> tuple[str, str | None, jsonrpc.RequestId, int | None]:
    """Kind, method, id and error code of one JSON-RPC 2.0 object (§4, §5)."""
    request_id = obj.get("id") if isinstance(obj, dict) else None
    if not isinstance(obj, dict) or not jsonrpc.valid_id(request_id):
        return "invalid", None, None, None  # an object or a boolean id is no id (§4)
    if isinstance(obj.get("method"), str):
        kind = "request" if "id" in obj else "notification"
        return kind, obj["method"], request_id, None
    if "result" in obj:
        return "result", None, request_id, None
    error = obj.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        return "error", None, request_id, code if isinstance(code, int) else None
    return "invalid", None, request_id, None


def describe(text: str) -> tuple[str, str | None, jsonrpc.RequestId, int | None]:
    """Kind (request, notification, result, error, batch, invalid), method, id, error code."""
    try:
        value = jsonrpc.loads(text)
    except ValueError:
        return "invalid", None, None, None
    if not isinstance(value, list) or not value:
        return describe_message(value)
    items = [describe_message(item) for item in value]
    methods = ",".join(dict.fromkeys(m for _, m, _, _ in items if m is not None)) or None
    error = next((e for _, _, _, e in items if e is not None), None)
    return "batch", methods, None, error


def is_admin(claims: Mapping[str, Any]) -> bool:
    """May this token listen to the tap? Only with the claim ``role`` = ``admin``."""
    return claims.get("role") == ADMIN_ROLE


# What the hot path queues: FrameSeen.of's arguments, built into an event by the listener.
_RawFrame = (tuple[int, str, str, str, str | bytes]
             | tuple[int, str, str, str, str | bytes, str | None])


class Party(Protocol):
    """Whose frame it is: a gateway :class:`Connection`, or a simulator's proxied pair."""

    @property
    def id(self) -> str: ...

    @property
    def user(self) -> str: ...


class Subscription:
    """One listener's bounded queue. Use it as a context manager, or :meth:`close` it."""

    def __init__(self, tap: Tap, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("a tap queue holds at least one event")
        self.maxsize = maxsize
        self.dropped = 0
        self._tap = tap
        self._queue: deque[TapEvent | _RawFrame] = deque()
        self._unreported = 0
        self._first_drop_us = 0
        self._ready = asyncio.Event()
        self._queue.append(Subscribed(t_us=tap.clock_us(), queue=maxsize))

    def offer(self, t_us: int, item: TapEvent | _RawFrame) -> None:
        """Queue ``item`` or count it dropped; never blocks (the gateway calls this)."""
        queue = self._queue
        if len(queue) >= self.maxsize:
            if not self._unreported:
                self._first_drop_us = t_us
            self.dropped += 1
            self._unreported += 1
            return
        if self._unreported:  # the gap goes where it happened, one slot over the bound
            queue.append(self._drop_report())
        queue.append(item)
        self._ready.set()

    def _drop_report(self) -> Dropped:
        report = Dropped(t_us=self._first_drop_us, count=self._unreported, total=self.dropped)
        self._unreported = 0
        return report

    def take(self, limit: int = BATCH) -> list[TapEvent]:
        """Up to ``limit`` queued events, oldest first, without waiting."""
        events: list[TapEvent] = []
        queue = self._queue
        while queue and len(events) < limit:
            item = queue.popleft()
            events.append(FrameSeen.of(*item) if isinstance(item, tuple) else item)
        if not queue and self._unreported and len(events) < limit:
            events.append(self._drop_report())
        return events

    async def next_batch(self, limit: int = BATCH) -> list[TapEvent]:
        """Wait for at least one event, then return up to ``limit``."""
        while not self._queue and not self._unreported:
            self._ready.clear()
            await self._ready.wait()
        return self.take(limit)

    async def get(self) -> TapEvent:
        """The next event."""
        return (await self.next_batch(1))[0]

    def close(self) -> None:
        """Detach from the tap; closing twice is harmless."""
        self._tap._detach(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Tap:
    """The gateway's side: ``active`` while anyone listens; the hooks feed every listener."""

    def __init__(self, *, clock_us: Callable[[], int] | None = None) -> None:
        self.clock_us = clock_us or (lambda: time.time_ns() // 1000)
        self.active = False  # read on every message: a plain attribute, not a property
        self._subscribers: list[Subscription] = []

    def subscribe(self, maxsize: int = DEFAULT_QUEUE,
                  existing: Iterable[Connected] = ()) -> Subscription:
        """Attach a listener; ``existing`` (the open connections) come right after Subscribed."""
        subscription = Subscription(self, maxsize)
        for event in existing:
            subscription.offer(event.t_us, event)
        self._subscribers.append(subscription)
        self.active = True
        return subscription

    def _detach(self, subscription: Subscription) -> None:
        with contextlib.suppress(ValueError):
            self._subscribers.remove(subscription)
        self.active = bool(self._subscribers)

    def _publish(self, t_us: int, item: TapEvent | _RawFrame) -> None:
        for subscription in self._subscribers:
            subscription.offer(t_us, item)

    def frame(self, conn: Party, direction: str, data: str | bytes) -> None:
        """A text message went ``direction`` (:data:`IN` or :data:`OUT`) on ``conn``."""
        t_us = self.clock_us()
        self._publish(t_us, (t_us, conn.id, conn.user, direction, data))

    def impaired_frame(self, conn: Party, direction: str, data: str | bytes,
                       impairment: str | None) -> None:
        """A message the simulator passed (None), delayed, duplicated or dropped."""
        t_us = self.clock_us()
        self._publish(t_us, (t_us, conn.id, conn.user, direction, data, impairment))

    def publish(self, event: TapEvent) -> None:
        """Any other event, built by the caller (the simulator's connections)."""
        self._publish(event.t_us, event)

    def connected(self, conn: Connection, *, local: str | None, path: str) -> None:
        event = connected_event(conn, local=local, path=path, t_us=self.clock_us())
        self._publish(event.t_us, event)

    def disconnected(self, conn: Connection, code: int, reason: str) -> None:
        event = Disconnected(t_us=self.clock_us(), conn=conn.id, user=conn.user, code=code,
                             reason=reason)
        self._publish(event.t_us, event)

    def refused(self, *, remote: str | None, path: str, status: int, reason: str,
                user: str | None = None) -> None:
        event = AuthRefused(t_us=self.clock_us(), remote=remote, path=path, status=status,
                            reason=reason, user=user)
        self._publish(event.t_us, event)


def connected_event(conn: Connection, *, local: str | None, path: str,
                    t_us: int | None = None) -> Connected:
    """The :class:`Connected` event of ``conn``, by default stamped when it connected."""
    when = int(conn.connected_at * 1_000_000) if t_us is None else t_us
    return Connected(t_us=when, conn=conn.id, user=conn.user,
                     remote=conn.remote_address, local=local, path=path,
                     subprotocol=conn.subprotocol)


async def _pump(ws: ServerConnection, subscription: Subscription) -> None:
    while True:
        events = await subscription.next_batch()
        await ws.send(b"\n".join(jsonrpc.dumps(e.to_json()) for e in events), text=True)


async def stream(ws: ServerConnection, subscription: Subscription) -> None:
    """Send ``subscription``'s events to a listener until either side closes.

    Each WebSocket text message carries one or more events, one JSON object
    per line. A listener has nothing to say; reading is how its close is seen.
    """
    pump = asyncio.get_running_loop().create_task(_pump(ws, subscription))
    try:
        async for _ in ws:
            pass
    except ConnectionClosed:
        pass
    finally:
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
            await pump
