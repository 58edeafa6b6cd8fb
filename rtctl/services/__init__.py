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

from collections.abc import Mapping
from typing import Any

from rtctl.host import Host, ServiceFactory
from rtctl.router import Router
from rtctl.services.presence import PresenceService
from rtctl.services.rooms import RoomService
from rtctl.services.sessions import SessionService
from rtctl.services.state import StateService
from rtctl.services.state_room import StateRoom
from rtctl.services.system import system_router

__all__ = ["BUILTIN_SERVICES", "builtin_router", "builtin_services"]


def builtin_router(host: Host, *,
                   room_types: Mapping[str, type[StateRoom[Any]]] | None = None) -> Router:
    """Build the built-in services on ``host`` and return their methods."""
    sessions = SessionService(host)
    stateful = StateService(host, room_types or {})
    router = Router()
    router.include(system_router(host))
    for service_router in (sessions.router, PresenceService(host, sessions).router,
                           RoomService(host, sessions, stateful=stateful).router,
                           stateful.router):
        router.include(service_router)
    return router


def builtin_services(*, room_types: Mapping[str, type[StateRoom[Any]]] | None = None
                     ) -> tuple[ServiceFactory, ...]:
    """The built-in services, with the game's stateful room types (name → StateRoom class)."""
    types = dict(room_types or {})
    StateService.check(types)  # a bad type fails here, before any gateway starts

    def build(host: Host) -> Router:
        return builtin_router(host, room_types=types)

    return (build,)


BUILTIN_SERVICES: tuple[ServiceFactory, ...] = builtin_services()
