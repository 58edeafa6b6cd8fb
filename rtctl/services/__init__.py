"""Built-in features, each a :class:`~rtctl.router.Router` like a game's own.

:data:`BUILTIN_SERVICES` is what a gateway offers before any game method:
``sys.*`` and ``session.*`` (:mod:`~rtctl.services.system`,
:mod:`~rtctl.services.sessions`), ``presence.*``
(:mod:`~rtctl.services.presence`) and ``room.*`` (:mod:`~rtctl.services.rooms`).
Each is built by a factory that receives the gateway's
:class:`~rtctl.host.Host` interface: hooks (connect, disconnect, startup,
shutdown), readiness checks, the clock and ``host.backends``, through which
state is shared with other nodes. None of them imports the gateway.
"""

from __future__ import annotations

from rtctl.host import Host, ServiceFactory
from rtctl.router import Router
from rtctl.services.presence import PresenceService
from rtctl.services.rooms import RoomService
from rtctl.services.sessions import SessionService
from rtctl.services.system import system_router

__all__ = ["BUILTIN_SERVICES", "builtin_router"]


def builtin_router(host: Host) -> Router:
    """Build the built-in services on ``host`` and return their methods."""
    sessions = SessionService(host)
    router = Router()
    router.include(system_router(host))
    for service_router in (sessions.router, PresenceService(host, sessions).router,
                           RoomService(host, sessions).router):
        router.include(service_router)
    return router


BUILTIN_SERVICES: tuple[ServiceFactory, ...] = (builtin_router,)
