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

A client that stops reading altogether fills its socket before any queue: the
transport pauses writing, and then neither a reply, a ping nor a Close frame
gets through, so no timeout that waits on the socket ever fires. Both drivers
keep a :class:`WriteDeadline` for that: once the socket has taken no bytes for
``write_timeout`` seconds the driver drops the connection, reported with 4008
(the peer, not reading, can only see the TCP reset).
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from typing import Any, Protocol

from rtctl.config import TRANSPORTS, GatewayConfig
from rtctl.gateway.auth import Identity
from rtctl.gateway.connection import Connection, Transport
from rtctl.gateway.dispatch import Dispatcher
from rtctl.gateway.http import Front
from rtctl.protocol.tap import TapEvent
from rtctl.tap import Tap
from rtctl.units import format_duration

__all__ = ["TRANSPORTS", "Core", "Driver", "WriteDeadline", "address", "load_driver",
           "stuck_reason"]


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


def stuck_reason(timeout: float) -> str:
    """The close reason of a connection dropped by its :class:`WriteDeadline`."""
    return f"not reading: the socket took nothing for {format_duration(timeout)}"


class WriteDeadline:
    """Calls ``on_stuck`` once the socket stays paused (``pause_writing``) for ``timeout`` s.

    Any progress resumes writing (the buffer drained below its low-water mark)
    and stops the clock, so a client that reads slowly but steadily is never
    dropped by it; only one that stopped.
    """

    __slots__ = ("_on_stuck", "_timeout", "_timer")

    def __init__(self, timeout: float, on_stuck: Callable[[], None]) -> None:
        self._timeout = timeout
        self._on_stuck = on_stuck
        self._timer: asyncio.TimerHandle | None = None

    def paused(self) -> None:
        """The socket's buffer is full: start the clock (if it is not running)."""
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._timeout, self._fire)

    def resumed(self) -> None:
        """The socket took bytes again, or is gone: stop the clock."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        self._timer = None
        self._on_stuck()
