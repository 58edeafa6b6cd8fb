"""What went wrong, and what the client does about it: classification, no I/O.

Every failure the client sees falls in one of four kinds, and each kind has
one answer::

    kind        examples                                    what the client does
    TRANSPORT   refused, dropped (1006), 1001, 1011, 1013,  reconnect with backoff
                4008, HTTP 429/503/5xx, open timeout
    AUTH        HTTP 401 at the upgrade, close 4001         ask the token-refresh callback
                                                            once, else stop
    PROTOCOL    HTTP 404, close 1002/1003/1007/1009, a      report; stop when the upgrade
                message that is not JSON-RPC 2.0            itself is wrong, else reconnect
    SERVER      a JSON-RPC error reply (§5.1), close 4003   raise it to the caller, marked
                (kicked), 4009 (the session was resumed     ``retryable`` only for the codes
                on another connection: reconnecting would   the config lists (by default
                take it back), a game's own close code      -32050 and -32029, whose
                                                            ``data.retry_after_ms`` sets
                                                            ``retry_after``); stop on a close

Every exception the client raises on purpose derives from :class:`ClientError`
(and so from :class:`rtctl.exceptions.RtctlError`), so one ``except ClientError``
catches them all::

    ClientError                    retryable: may the same thing simply be tried again?
    ├── TransportError             the link failed; retryable
    │   ├── ConnectionLost         an in-flight call's connection dropped: the server may
    │   │                          or may not have run it
    │   └── CallTimeout            no reply in time (also a TimeoutError); ``sent`` says
    │                              whether the request ever left the send queue
    ├── AuthRefused                the token was refused: the 401 reason word, or "expired"
    │                              after close 4001 (also an rtctl.exceptions.AuthError)
    ├── ProtocolError              the peer broke WebSocket or JSON-RPC rules, or wrong URL
    ├── QueueFull                  the send queue refused a message (policy ``reject``)
    │   └── MessageDropped         a queued message was pushed out (``drop_oldest``)
    ├── Kicked                     closed with 4003 by the game or an operator
    ├── GaveUp                     reconnection stopped after ``max_attempts``
    ├── ClientClosed               close() was called while this was pending
    ├── IllegalTransition          a call the current state does not allow (states.py)
    ├── CallFailed                 call_once could not make its call (oneshot.py, tools)
    ├── SnapshotUnreadable         a stateful room's snapshot came but does not decode with
    │                              the schema given (synced_room.py); asking again cannot help
    ├── RollbackTooFar             an input or state for a frame outside the rollback's window
    │                              (also a ValueError; rollback.py)
    └── ServerError                also an RpcError: a JSON-RPC error reply

Arguments that can never work are the caller's bug and fail before any I/O,
as Python's own do: ``ConfigError`` from the constructors and the option
classes, ``ValueError`` for an empty batch.

Close codes and error codes come from :mod:`rtctl.protocol.codes`; RFC 6455
§7.4.1 defines 1000-2999, §7.4.2 leaves 4000-4999 to rtctl.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from websockets.exceptions import InvalidStatus

from rtctl.exceptions import AuthError, AuthReason, ConfigError, RpcError, RtctlError
from rtctl.protocol import jsonrpc
from rtctl.protocol.codes import CloseCode, ErrorCode

__all__ = [
    "DEFAULT_RETRYABLE_CODES",
    "NEVER_RETRYABLE_CODES",
    "AuthRefused",
    "CallTimeout",
    "ClientClosed",
    "ClientError",
    "ConnectionLost",
    "ErrorKind",
    "GaveUp",
    "Kicked",
    "MessageDropped",
    "ProtocolError",
    "QueueFull",
    "ServerError",
    "SnapshotUnreadable",
    "TransportError",
    "Verdict",
    "check_retryable_codes",
    "classify_close",
    "classify_status",
    "refusal",
    "refusal_body",
    "server_error",
]


class ClientError(RtctlError):
    """Root of the client's own errors.

    ``retry_after`` is the least wait in seconds before trying again that the
    server asked for (``data.retry_after_ms``, -32029); a retry waits for the
    longer of it and its own backoff.
    """

    retryable = False
    retry_after = 0.0


class TransportError(ClientError):
    """The link failed; trying again later is the cure."""

    retryable = True


class ConnectionLost(TransportError):
    """The connection dropped while a call was in flight (at-most-once: it may have run)."""


class CallTimeout(TransportError, TimeoutError):
    """No reply within the call's timeout; ``sent`` is False if it never left the queue."""

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class AuthRefused(ClientError, AuthError):
    """The gateway refused the token: HTTP 401 at the upgrade, or close 4001 (RFC 6455 §7.4.2).

    ``reason`` is the 401 body's reason word (``expired``, ``malformed``, ...;
    ``docs/api.md``), or ``expired`` after close 4001; ``detail`` is for people.
    Also an :class:`rtctl.exceptions.AuthError`, so ``except AuthError`` catches it.
    """

    def __init__(self, reason: str, detail: str) -> None:
        # The gateway's word, kept as sent: a newer gateway may have words this SDK lacks.
        super().__init__(cast(AuthReason, reason), detail)


class ProtocolError(ClientError):
    """The peer broke the WebSocket or JSON-RPC 2.0 rules, or the URL is not a gateway."""


class QueueFull(ClientError):
    """The send queue is at its bound and its policy is ``reject``."""


class MessageDropped(QueueFull):
    """A queued message was pushed out by a newer one (policy ``drop_oldest``)."""


class Kicked(ClientError):
    """The game or an operator closed this connection (4003); reconnecting would be rude."""


class GaveUp(ClientError):
    """Reconnection stopped after the configured number of attempts."""


class ClientClosed(ClientError):
    """close() was called while this call waited."""


class SnapshotUnreadable(ClientError):
    """A stateful room's state snapshot arrived but does not decode with the client's
    schema: most often the wrong schema was given, or the game's server changed it."""


class ServerError(ClientError, RpcError):
    """A JSON-RPC error reply (§5.1); ``retryable`` only for the codes the config lists."""

    def __init__(self, code: int, message: str, data: Any = None, *,
                 retryable: bool = False, retry_after: float = 0.0) -> None:
        RpcError.__init__(self, code, message, data)
        self.retryable = retryable
        self.retry_after = retry_after


class ErrorKind(enum.Enum):
    TRANSPORT = "transport"
    AUTH = "auth"
    PROTOCOL = "protocol"
    SERVER = "server"


@dataclass(frozen=True, slots=True)
class Verdict:
    """How a failure is classified, whether to reconnect, and the error to report."""

    kind: ErrorKind
    reconnect: bool
    error: BaseException


# JSON-RPC 2.0 §5.1: these say the request itself is wrong; sending it again cannot help.
NEVER_RETRYABLE_CODES = frozenset({ErrorCode.PARSE_ERROR, ErrorCode.INVALID_REQUEST,
                                   ErrorCode.METHOD_NOT_FOUND, ErrorCode.INVALID_PARAMS})
# Transient by definition: the gateway could not reach Redis or NATS, or the connection
# sent calls faster than its inbound rate (-32029 says when to retry). A game adds its own.
DEFAULT_RETRYABLE_CODES: frozenset[int] = frozenset({ErrorCode.BACKEND_UNAVAILABLE,
                                                     ErrorCode.RATE_LIMITED})

_MAX_RETRY_AFTER_MS = 60_000.0  # a bad or hostile server does not park a retry for a day
_RECONNECT_CLOSES = frozenset({CloseCode.NORMAL, CloseCode.GOING_AWAY, CloseCode.NO_STATUS,
                               CloseCode.ABNORMAL_CLOSURE, CloseCode.INTERNAL_ERROR,
                               CloseCode.TRY_AGAIN_LATER, CloseCode.SLOW_CONSUMER})
_PROTOCOL_CLOSES = frozenset({CloseCode.PROTOCOL_ERROR, CloseCode.UNSUPPORTED_DATA,
                              CloseCode.INVALID_PAYLOAD, CloseCode.MESSAGE_TOO_BIG})


def check_retryable_codes(codes: Iterable[int]) -> frozenset[int]:
    """The configured retryable codes, refusing any that can never succeed twice."""
    codes = frozenset(codes)
    wrong = sorted(codes & NEVER_RETRYABLE_CODES)
    if wrong:
        raise ConfigError(f"error codes {wrong} mean the request is wrong; never retry them")
    return codes


def server_error(error: Any, retryable_codes: frozenset[int]) -> ServerError:
    """The exception for a reply's Error object (§5.1), however malformed."""
    if not isinstance(error, dict):
        error = {}
    code = error.get("code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else 0
    data = error.get("data")
    return ServerError(code, str(error.get("message", "")), data,
                       retryable=code in retryable_codes, retry_after=_retry_after(data))


def _retry_after(data: Any) -> float:
    """Seconds from ``data.retry_after_ms`` (the gateway's -32029), 0.0 if absent or bad."""
    millis = data.get("retry_after_ms") if isinstance(data, dict) else None
    if isinstance(millis, int | float) and not isinstance(millis, bool) and millis > 0:
        return min(float(millis), _MAX_RETRY_AFTER_MS) / 1000
    return 0.0


def classify_close(code: int, reason: str) -> Verdict:
    """Why an open connection closed (RFC 6455 §7.4), and what to do.

    ``code`` is the gateway's Close frame's, or the client's own when it failed
    the connection, or 1006 when none passed (see :mod:`rtctl.client.link`).
    """
    text = f"the connection closed with {code}" + (f" ({reason})" if reason else "")
    if code == CloseCode.TOKEN_EXPIRED:
        return Verdict(ErrorKind.AUTH, False, AuthRefused("expired", text))
    if code == CloseCode.KICKED:
        return Verdict(ErrorKind.SERVER, False, Kicked(text))
    if code in _PROTOCOL_CLOSES:
        # One bad message, not a bad link: report it, and carry on with a fresh connection.
        return Verdict(ErrorKind.PROTOCOL, True, ProtocolError(text))
    if code in _RECONNECT_CLOSES or code < 4000:
        return Verdict(ErrorKind.TRANSPORT, True, TransportError(text))
    # A private code rtctl does not define (a game's own): not ours to retry.
    return Verdict(ErrorKind.SERVER, False, ClientError(text))


def refusal_body(raw: bytes | None) -> dict[str, Any]:
    """The JSON object the gateway answers a refused upgrade with (``{}`` if it is not one)."""
    try:
        body = jsonrpc.loads(raw) if raw else {}
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def refusal(exc: InvalidStatus) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of an upgrade refused to a ``websockets`` client."""
    response = exc.response
    return response.status_code, refusal_body(bytes(response.body))


def classify_status(status: int, body: dict[str, Any]) -> Verdict:
    """Why the HTTP upgrade was refused (RFC 6455 §4.1: any answer but 101)."""
    detail = str(body.get("detail", ""))
    if status == 401:
        return Verdict(ErrorKind.AUTH, False,
                       AuthRefused(str(body.get("reason", "unauthorized")),
                                   detail or "the gateway refused the token"))
    text = f"the gateway answered HTTP {status}" + (f": {detail}" if detail else "")
    if status == 429 or status >= 500:
        return Verdict(ErrorKind.TRANSPORT, True, TransportError(text))
    return Verdict(ErrorKind.PROTOCOL, False, ProtocolError(text))
