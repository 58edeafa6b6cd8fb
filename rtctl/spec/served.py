"""The router ``rtctl serve`` builds, obtained without listening on a socket.

A :class:`~rtctl.gateway.server.Gateway` builds its services (and so its whole
router) when it is constructed; it opens sockets and starts tasks only in
``start()``. Constructing one is therefore the honest way to describe what a
served gateway answers: the same factories, the same merge, the same clashes.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from rtctl.config import GatewayConfig
from rtctl.gateway.auth import AuthConfig
from rtctl.gateway.server import Gateway
from rtctl.router import Router
from rtctl.services import builtin_services
from rtctl.services.state_room import StateRoom

__all__ = ["served_router"]


def served_router(router: Router | None = None, *,
                  room_types: Mapping[str, type[StateRoom[Any]]] | None = None) -> Router:
    """Built-in services (with ``room_types``) plus the game's ``router``, as served.

    A game method clashing with a built-in one is a ValueError, as at ``rtctl serve``.
    """
    # The key is never used (nothing is verified); a random one keeps it out of any file.
    config = GatewayConfig(auth=AuthConfig(secret=secrets.token_urlsafe(32)))
    gateway = Gateway(config, router=router, services=builtin_services(room_types=room_types))
    return gateway.router
