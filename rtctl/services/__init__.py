"""Built-in features, each a :class:`~rtctl.router.Router` like a game's own.

:func:`builtin_router` is what a :class:`~rtctl.gateway.server.Gateway`
offers before any game method: ``sys.*`` and ``session.*``
(:mod:`~rtctl.services.system`, :mod:`~rtctl.services.sessions`),
``presence.*`` (:mod:`~rtctl.services.presence`) and ``room.*``
(:mod:`~rtctl.services.rooms`). They reach the gateway only through its
public hooks (connect, disconnect, startup, shutdown, readiness checks) and
share state with other nodes through ``gateway.backends``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rtctl.router import Router

if TYPE_CHECKING:
    from rtctl.gateway.server import Gateway

__all__ = ["builtin_router"]


def builtin_router(gateway: Gateway) -> Router:
    """Build the built-in services for ``gateway`` and return their methods."""
    from rtctl.services.presence import PresenceService
    from rtctl.services.rooms import RoomService
    from rtctl.services.sessions import SessionService
    from rtctl.services.system import system_router

    sessions = SessionService(gateway)
    router = Router()
    router.include(system_router(gateway))
    for service_router in (sessions.router, PresenceService(gateway, sessions).router,
                           RoomService(gateway, sessions).router):
        router.include(service_router)
    return router
