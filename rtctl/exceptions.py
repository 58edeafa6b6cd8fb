"""Exceptions raised by rtctl.

Every error rtctl raises on purpose derives from :class:`RtctlError`, and each
carries what the transport should answer with, so handlers raise and one place
turns the error into a reply::

    RtctlError
    ├── ConfigError            bad configuration or command-line value
    ├── AuthError              token refused (HTTP 401 at the upgrade)
    ├── ConnectionRefused      limits refused a new connection (HTTP 429/503)
    └── RpcError               a JSON-RPC 2.0 error object (JSON-RPC 2.0 §5.1)
        ├── InvalidParams      -32602, names the offending parameter
        └── MethodNotFound     -32601

"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from rtctl.protocol.codes import ErrorCode

__all__ = [
    "AuthError",
    "AuthReason",
    "ConfigError",
    "ConnectionRefused",
    "DeclaredError",
    "ErrorDecl",
    "InvalidParams",
    "MethodNotFound",
    "RefusalReason",
    "RpcError",
    "RtctlError",
    "TokenReason",
    "declared_errors",
]

# Why a token was refused (HTTP 401 at the upgrade, -32001 from session.refresh); a fixed
# set, so the gateway's metrics can count each from the start.
TokenReason: TypeAlias = Literal[
    "missing", "malformed", "expired", "not_yet_valid", "bad_signature", "bad_algorithm",
    "bad_audience", "bad_issuer", "bad_claims", "unknown_key"]
# session.refresh only: the connection is gone, or the new token names another user.
AuthReason: TypeAlias = TokenReason | Literal["unknown_connection", "wrong_subject"]
# Why the gateway turned a connection away other than for its token.
RefusalReason: TypeAlias = Literal[
    "too_many_connections", "too_many_connections_for_user", "draining", "forbidden",
    "bad_request"]


class RtctlError(Exception):
    """Root of every error rtctl raises on purpose."""


class ConfigError(RtctlError):
    """A configuration value is missing, malformed or contradictory."""


class AuthError(RtctlError):
    """A token was refused.

    ``reason`` is a short machine-readable word (:data:`AuthReason`); ``detail`` is for
    people. Answered with HTTP 401 at the upgrade.
    """

    http_status = 401

    def __init__(self, reason: AuthReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class ConnectionRefused(RtctlError):
    """The gateway will not take this connection now (limits, draining)."""

    def __init__(self, http_status: int, reason: RefusalReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.http_status = http_status
        self.reason = reason
        self.detail = detail


class RpcError(RtctlError):
    """An error answered as a JSON-RPC 2.0 error object (§5.1).

    Game handlers raise it for application errors; codes -32000..-32099 are
    rtctl's own (see :class:`rtctl.protocol.codes.ErrorCode`), any code outside
    -32768..-32000 is free for the game.
    """

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = int(code)
        self.message = message
        self.data = data


@dataclass(frozen=True, slots=True)
class ErrorDecl:
    """A game's own error code, declared with ``Router.method(errors=[...])`` so
    ``rtctl spec`` documents it: ``code`` outside JSON-RPC 2.0's reserved
    -32768..-32000 (§5.1), the ``message`` it is raised with and, if it has one
    shape, its ``data`` (a TypedDict)."""

    code: int
    message: str
    data: type | None = None


DeclaredError: TypeAlias = ErrorCode | ErrorDecl
_RESERVED = range(-32768, -32000 + 1)  # JSON-RPC 2.0 §5.1


def declared_errors(errors: Iterable[DeclaredError]) -> tuple[DeclaredError, ...]:
    """``errors`` checked and sorted as the spec lists them (highest code first). A bare
    int is refused unless it is an :class:`ErrorCode`: a reserved code rtctl does not
    answer is a typo, a game's own needs its message (:class:`ErrorDecl`). TypeError, at
    registration, so ``rtctl serve`` and ``rtctl spec`` agree."""
    out: set[DeclaredError] = set()
    for error in errors:
        if isinstance(error, ErrorDecl):
            if type(error.code) is not int or error.code in _RESERVED:
                raise TypeError(f"ErrorDecl code {error.code!r}: a game's own code is an int "
                                "outside -32768..-32000 (JSON-RPC 2.0 §5.1 reserves those)")
            out.add(error)
        elif isinstance(error, int) and not isinstance(error, bool) and error in _RESERVED:
            try:
                out.add(ErrorCode(error))
            except ValueError:
                raise TypeError(f"error {error} is in JSON-RPC's reserved -32768..-32000 but "
                                "no rtctl ErrorCode") from None
        else:
            raise TypeError(f"error {error!r}: give an ErrorCode member, or a game's own "
                            f"code as ErrorDecl({error!r}, 'its message')")
    return tuple(sorted(out, key=lambda e: e.code if isinstance(e, ErrorDecl) else e,
                        reverse=True))


class InvalidParams(RpcError):
    """The params did not bind to the method's signature (-32602)."""

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(ErrorCode.INVALID_PARAMS, message, data)


class MethodNotFound(RpcError):
    """No such method (-32601)."""

    def __init__(self, method: str, why: str = "") -> None:
        message = f"Method not found: {method}" + (f" ({why})" if why else "")
        super().__init__(ErrorCode.METHOD_NOT_FOUND, message)
