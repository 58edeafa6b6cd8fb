"""The tap's wire format: what happened in a gateway or a simulator, as JSON events.

The gateway's ``/tap``, the simulator's ``GET /tap``, ``rtctl inspect`` and the
TUI all speak it, so it lives here, below all of them. Each event is a frozen
dataclass named for what happened: :class:`Connected`, :class:`Disconnected`
(with the close code and reason, RFC 6455 §7.1.5), :class:`AuthRefused` (an
upgrade answered 401/403/429/503), :class:`FrameSeen` (one WebSocket message
in either direction: text with its JSON-RPC 2.0 kind, method and id, or
binary with its bytes in base64) and, for a listener, :class:`Subscribed`
and :class:`Dropped`. Each turns into one flat JSON object with an ``event``
tag (:meth:`TapEvent.to_json`) and back (:func:`event_from_json`);
``docs/api.md`` lists the fields. On the wire a listener gets one or more
events per message, one JSON object per line.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar

from rtctl.protocol import jsonrpc
from rtctl.protocol.redact import redact

__all__ = [
    "ADMIN_ROLE",
    "BINARY_KIND",
    "IN",
    "OUT",
    "TAP_PATH",
    "AuthRefused",
    "Connected",
    "Disconnected",
    "Dropped",
    "FrameSeen",
    "Subscribed",
    "TapEvent",
    "describe",
    "describe_message",
    "event_from_json",
    "is_admin",
    "unix_us",
]

TAP_PATH = "/tap"
BINARY_KIND = "binary"  # a FrameSeen's kind for a binary message
ADMIN_ROLE = "admin"  # the value of the ``role`` claim a listener's token must carry
IN, OUT = "in", "out"  # client → server, server → client

# Unix time read once, then carried forward by the monotonic clock: a step of the
# wall clock (NTP, a VM's time sync) cannot make an interval between two stamps of
# one process negative or short, so a 20 ms delay always reads as ≥ 20 ms.
_UNIX_MINUS_MONOTONIC_NS = time.time_ns() - time.monotonic_ns()


def unix_us() -> int:
    """Now, in Unix microseconds that advance exactly with ``time.monotonic``."""
    return (_UNIX_MINUS_MONOTONIC_NS + time.monotonic_ns()) // 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class TapEvent:
    """Something the gateway did; ``t_us`` is Unix time in microseconds (:func:`unix_us`)."""

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
    """One message. ``kind`` is what :func:`describe` found in a text ``payload``.

    For a batch (JSON-RPC 2.0 §6) ``method`` lists its methods comma-separated,
    ``id`` is None and ``error`` is the first error code in it. A binary
    message (``binary``, RFC 6455 §5.6 opcode 2: ``rtctl.v1.binary``'s state
    frames) is of kind ``binary`` and its ``payload`` is its bytes in base64
    (RFC 4648 §4), so a JSON line carries it whole; :attr:`data` gives them
    back. Binary is not redacted: tokens travel in text only (the upgrade,
    ``session.refresh``).
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
    binary: bool = False

    @classmethod
    def of(cls, t_us: int, conn: str, user: str, direction: str, data: str | bytes,
           impairment: str | None = None, binary: bool = False) -> FrameSeen:
        """Describe a message as it went over the wire, tokens redacted (``size`` is the wire's)."""
        if binary:
            raw = data.encode() if isinstance(data, str) else data
            return cls(t_us=t_us, conn=conn, user=user, direction=direction, size=len(raw),
                       kind=BINARY_KIND, method=None, id=None, error=None,
                       payload=base64.b64encode(raw).decode("ascii"), impairment=impairment,
                       binary=True)
        text = data if isinstance(data, str) else data.decode("utf-8", "replace")
        size = len(data) if isinstance(data, bytes) else len(data.encode())
        kind, method, request_id, error = describe(text)
        return cls(t_us=t_us, conn=conn, user=user, direction=direction, size=size, kind=kind,
                   method=method, id=request_id, error=error, payload=redact(text),
                   impairment=impairment)

    @property
    def data(self) -> bytes:
        """The message's bytes as recorded: a binary one's own, a text one's UTF-8."""
        return base64.b64decode(self.payload) if self.binary else self.payload.encode()


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
    event = cls(**{f.name: obj[f.name] for f in fields(cls) if f.name in obj})
    if isinstance(event, FrameSeen) and event.binary:
        try:
            base64.b64decode(event.payload, validate=True)
        except (binascii.Error, TypeError):
            raise ValueError("a binary frame's payload is not base64") from None
    return event


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
