"""``sys.*`` and ``session.*``: the methods every rtctl gateway offers.

* ``sys.ping`` → ``{"time": ms}``: server wall-clock time in Unix epoch
  milliseconds (fractional), for round-trip time and clock offset (NTP-style:
  offset ≈ time − (t_send + t_receive) / 2).
* ``sys.echo`` → its params, unchanged (tests and benchmarks).
* ``session.info`` → who am I: connection id, user, claims, token expiry.
* ``session.refresh {token}`` → adopt a new token for the same user, so the
  connection outlives the old token's ``exp``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rtctl.exceptions import AuthError, RpcError
from rtctl.protocol.codes import ErrorCode
from rtctl.router import CallContext, Router

if TYPE_CHECKING:
    from rtctl.gateway.server import Gateway

__all__ = ["system_router"]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def system_router(gateway: Gateway) -> Router:
    """The ``sys.*`` and ``session.*`` methods, bound to one gateway."""
    router = Router()

    @router.method("sys.ping")
    def ping() -> dict[str, Any]:
        return {"time": _ms(gateway.clock())}

    @router.method("sys.echo", raw_params=True)
    def echo(params: Any) -> Any:
        return params

    @router.method("session.info")
    def info(ctx: CallContext) -> dict[str, Any]:
        conn = gateway.registry.get(ctx.connection_id)
        assert conn is not None, "a caller is always registered"
        return {
            "connection_id": conn.id,
            "user": conn.user,
            "claims": dict(conn.claims),
            "expires_at": _ms(conn.expires_at),
            "connected_at": _ms(conn.connected_at),
            "subprotocol": conn.subprotocol,
            "remote_address": conn.remote_address,
        }

    @router.method("session.refresh")
    def refresh(ctx: CallContext, token: str) -> dict[str, Any]:
        try:
            identity = gateway.authenticator.authenticate(token)
        except AuthError as exc:
            raise RpcError(ErrorCode.UNAUTHORIZED, f"Token refused: {exc.detail}",
                           {"reason": exc.reason}) from None
        if identity.user != ctx.user:
            raise RpcError(ErrorCode.UNAUTHORIZED,
                           "Token refused: it names another user than this connection's",
                           {"reason": "wrong_subject"})
        conn = gateway.registry.get(ctx.connection_id)
        assert conn is not None, "a caller is always registered"
        gateway.reauthenticate(conn, identity)
        return {"user": identity.user, "expires_at": _ms(identity.expires_at)}

    return router
