"""``sys.*`` and ``session.*``: the methods every rtctl gateway offers.

* ``sys.ping`` → ``{"time": ms}``: server wall-clock time in Unix epoch
  milliseconds (fractional), for round-trip time and clock offset (NTP-style:
  offset ≈ time − (t_send + t_receive) / 2).
* ``sys.echo`` → its params, unchanged (tests and benchmarks).
* ``session.info`` → who am I: connection (= session) id, user, claims, token
  expiry; whether this connection resumed its session (``resumed``, or
  ``resume_error`` saying why a recovery token was not honoured), and a fresh
  ``recovery_token`` to reconnect with (``?recover=TOKEN`` at the upgrade).
* ``session.refresh {token}`` → adopt a new token for the same user, so the
  connection outlives the old token's ``exp``.
"""

from __future__ import annotations

from typing import Any, TypedDict

from rtctl.exceptions import AuthError, RpcError
from rtctl.host import Host
from rtctl.protocol.codes import ErrorCode
from rtctl.router import CallContext, Router

__all__ = ["Ping", "Refreshed", "SessionInfo", "system_router"]


class Ping(TypedDict):
    time: float


class SessionInfo(TypedDict):
    connection_id: str
    user: str
    claims: dict[str, Any]
    expires_at: float | None
    connected_at: float
    subprotocol: str | None
    remote_address: str | None
    resumed: bool
    resume_error: str | None
    recovery_token: str
    recovery_expires_at: float


class Refreshed(TypedDict):
    user: str
    expires_at: float | None


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _ms_or_none(seconds: float | None) -> float | None:
    return None if seconds is None else _ms(seconds)


def system_router(host: Host) -> Router:
    """The ``sys.*`` and ``session.*`` methods, bound to one host."""
    router = Router()

    @router.method("sys.ping")
    def ping() -> Ping:
        """The server's wall-clock time in Unix epoch milliseconds, for round-trip time and
        clock offset (NTP-style: offset ≈ time − (t_send + t_receive) / 2)."""
        return {"time": _ms(host.clock())}

    @router.method("sys.echo", raw_params=True)
    def echo(params: Any) -> Any:
        """Answers its params unchanged: an array, an object, or null when there were none
        (tests and benchmarks)."""
        return params

    @router.method("session.info")
    def info(ctx: CallContext) -> SessionInfo:
        """Who am I: the connection (= session) id, user, claims and token expiry; whether
        this connection resumed its session (``resumed``, or ``resume_error`` saying why a
        recovery token was not honoured), and a fresh ``recovery_token`` to reconnect with."""
        token, expires = host.recovery_token(ctx.connection_id, ctx.user)
        return {
            "connection_id": ctx.connection_id,
            "user": ctx.user,
            "claims": dict(ctx.claims),
            "expires_at": _ms_or_none(ctx.expires_at),
            "connected_at": _ms(ctx.connected_at),
            "subprotocol": ctx.subprotocol,
            "remote_address": ctx.remote_address,
            "resumed": ctx.resumed,
            "resume_error": ctx.resume_error,
            "recovery_token": token,
            "recovery_expires_at": _ms(expires),
        }

    @router.method("session.refresh", errors=[ErrorCode.UNAUTHORIZED])
    def refresh(ctx: CallContext, token: str) -> Refreshed:
        """Adopt a new token for the same user, so the connection outlives the old one's
        ``exp``; -32001 if it is refused."""
        try:
            expires_at = host.reauthenticate(ctx.connection_id, token)
        except AuthError as exc:
            raise RpcError(ErrorCode.UNAUTHORIZED, f"Token refused: {exc.detail}",
                           {"reason": exc.reason}) from None
        return {"user": ctx.user, "expires_at": _ms_or_none(expires_at)}

    return router
