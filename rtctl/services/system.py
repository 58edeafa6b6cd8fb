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

from typing import Any

from rtctl.exceptions import AuthError, RpcError
from rtctl.host import Host
from rtctl.protocol.codes import ErrorCode
from rtctl.router import CallContext, Router

__all__ = ["system_router"]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def system_router(host: Host) -> Router:
    """The ``sys.*`` and ``session.*`` methods, bound to one host."""
    router = Router()

    @router.method("sys.ping")
    def ping() -> dict[str, Any]:
        return {"time": _ms(host.clock())}

    @router.method("sys.echo", raw_params=True)
    def echo(params: Any) -> Any:
        return params

    @router.method("session.info")
    def info(ctx: CallContext) -> dict[str, Any]:
        token, expires = host.recovery_token(ctx.connection_id, ctx.user)
        return {
            "connection_id": ctx.connection_id,
            "user": ctx.user,
            "claims": dict(ctx.claims),
            "expires_at": _ms(ctx.expires_at),
            "connected_at": _ms(ctx.connected_at),
            "subprotocol": ctx.subprotocol,
            "remote_address": ctx.remote_address,
            "resumed": ctx.resumed,
            "resume_error": ctx.resume_error,
            "recovery_token": token,
            "recovery_expires_at": _ms(expires),
        }

    @router.method("session.refresh")
    def refresh(ctx: CallContext, token: str) -> dict[str, Any]:
        try:
            expires_at = host.reauthenticate(ctx.connection_id, token)
        except AuthError as exc:
            raise RpcError(ErrorCode.UNAUTHORIZED, f"Token refused: {exc.detail}",
                           {"reason": exc.reason}) from None
        return {"user": ctx.user, "expires_at": _ms(expires_at)}

    return router
