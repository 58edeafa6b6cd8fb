"""Transport drivers: the thin asyncio layer between sockets and the gateway's sans-I/O core.

A driver accepts TCP connections, speaks HTTP/1.1 and RFC 6455, and for
everything else asks its :class:`Core`: the HTTP answer or the upgrade
(:class:`~rtctl.gateway.http.Front`), what to reply to each text message
(:class:`~rtctl.gateway.dispatch.Dispatcher`), and the connection's lifecycle
(``open`` → ``opened`` → ``closed``). Two drivers plug in:

``websockets``  the ``websockets`` library's asyncio server (permessage-deflate
                negotiable, the reference behaviour);
``picows``      picows on uvloop: frames parsed in C, callbacks instead of a
                coroutine per connection; about twice the throughput.

The same gateway test suite runs over both (``tests/gateway``, parametrized).
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from rtctl.config import TRANSPORTS, GatewayConfig
from rtctl.gateway.auth import Identity
from rtctl.gateway.connection import Connection, Transport
from rtctl.gateway.dispatch import Dispatcher
from rtctl.gateway.http import Front
from rtctl.protocol.tap import TapEvent
from rtctl.tap import Tap

__all__ = ["TRANSPORTS", "Core", "Driver", "address", "load_driver"]


class Core(Protocol):
    """What a driver needs of the gateway (the gateway implements it)."""

    config: GatewayConfig
    front: Front
    dispatcher: Dispatcher
    tap: Tap

    @property
    def close_timeout(self) -> float:
        """Longest wait for a peer's closing handshake (RFC 6455 §7.1.1)."""

    def open(self, identity: Identity, transport: Transport, *, remote: str | None,
             local: str | None, subprotocol: str | None) -> Connection:
        """Register a new connection (raises ConnectionRefused at a limit: close 1013)."""

    async def opened(self, conn: Connection) -> None:
        """Run the connect hooks; the driver reads the connection's messages after this."""

    async def closed(self, conn: Connection, code: int, reason: str) -> None:
        """Forget the connection and run the disconnect hooks."""

    def open_connections(self) -> list[TapEvent]:
        """A new tap listener first learns of these (one Connected event each)."""


class Driver(Protocol):
    """One transport: binds, serves until :meth:`close`, then closes every connection."""

    async def start(self) -> None:
        """Bind and listen; returns once the port is open."""

    @property
    def port(self) -> int:
        """The port bound (useful with port 0)."""

    async def close(self, code: int, reason: str) -> None:
        """Stop listening, close every connection with ``code`` and wait for them."""


def load_driver(name: str, core: Core) -> Driver:
    """The driver called ``name`` (one of :data:`TRANSPORTS`), bound to ``core``."""
    assert name in TRANSPORTS, "GatewayConfig checks the name"
    module = importlib.import_module(f"rtctl.gateway.transports.{name}")
    driver: Driver = module.create(core)
    return driver


def address(sockname: Any) -> str | None:
    """``host:port`` of a socket address, ``[host]:port`` for IPv6."""
    if not sockname:
        return None
    host, port = sockname[0], sockname[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
