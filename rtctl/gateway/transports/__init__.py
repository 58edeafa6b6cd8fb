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
keep a write deadline (a :class:`Timer`) for that: once the socket has taken no
bytes for ``write_timeout`` seconds the driver drops the connection, reported
with 4008 (the peer, not reading, can only see the TCP reset).

Notifications wait in the connection's outbox; a :class:`Flow` holds it with
its clocks (the drain's wake-up, the slow consumer's grace), made on the first
message queued, so the two drivers differ only in how they write.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Hashable
from typing import Any, Protocol

from rtctl.config import TRANSPORTS, GatewayConfig
from rtctl.gateway.auth import Identity
from rtctl.gateway.connection import Connection, Transport
from rtctl.gateway.dispatch import Dispatcher
from rtctl.gateway.http import Front
from rtctl.gateway.outbox import Outbox
from rtctl.protocol.codes import CloseCode
from rtctl.protocol.lanes import Lane, Policy
from rtctl.protocol.tap import TapEvent
from rtctl.tap import Tap
from rtctl.units import format_duration

__all__ = ["TRANSPORTS", "Core", "Driver", "Flow", "Timer", "address", "behind_reason",
           "load_driver", "stuck_reason"]


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
    """The close reason of a connection dropped by its write deadline."""
    return f"not reading: the socket took nothing for {format_duration(timeout)}"


def behind_reason(grace: float) -> str:
    """The close reason of a connection behind its outbox's pressure mark for ``grace`` s."""
    return f"slow consumer: behind for {format_duration(grace)}"


class Timer:
    """One pending call of ``callback`` at most: :meth:`start` arms it unless it is armed.

    The drivers' clocks: the write deadline (started when the socket pauses
    writing, stopped by any progress, so a client that reads slowly but
    steadily is never dropped by it; only one that stopped), the slow
    consumer's grace (started when the outbox is behind, stopped once it
    caught up) and the drain's wake-up (tokens to earn, a batch window).
    """

    __slots__ = ("_callback", "_handle")

    def __init__(self, callback: Callable[[], None]) -> None:
        self._callback = callback
        self._handle: asyncio.TimerHandle | None = None

    def start(self, delay: float) -> None:
        """Call back in ``delay`` s, unless a call is pending already."""
        if self._handle is None:
            self._handle = asyncio.get_running_loop().call_later(delay, self._fire)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        self._handle = None
        self._callback()


class Flow:
    """One connection's :class:`~rtctl.gateway.outbox.Outbox` with the loop's clocks around it.

    The outbox decides what may be written; this arms the drain's wake-up when
    it says to wait, runs the slow consumer's grace while it is behind, and
    queues a reply that must wait (lanes off). The driver only writes what
    :meth:`next` hands out, and drains again when ``wake`` is called.
    """

    __slots__ = ("_alarm", "_behind", "_closed", "_conn", "_grace", "_grace_s", "_wake", "outbox")

    def __init__(self, core: Core, conn: Connection, wake: Callable[[], None]) -> None:
        config = core.config
        self.outbox = Outbox.configured(config.limits, config.routing,
                                        core.dispatcher.metrics.lanes,
                                        asyncio.get_running_loop().time)
        self._conn = conn
        self._wake = wake
        self._alarm = Timer(wake)
        self._grace_s = grace = config.routing.slow_consumer_grace
        self._grace = Timer(lambda: conn.close(CloseCode.SLOW_CONSUMER, behind_reason(grace)))
        self._closed = False
        self._behind = False  # the grace runs

    def put(self, data: bytes, binary: bool, lane: Lane, policy: Policy | None,
            key: Hashable | None) -> bool:
        """Queue a message and wake the drain; False at the hard bound (close 4008). Once
        the connection is gone (pushes may come until the gateway has seen it close) a
        message goes nowhere: it would never be written, and count as queued forever."""
        if self._closed:
            return True
        outbox = self.outbox
        if not outbox.put(data, binary, lane, policy, key):
            return False
        if not self._behind and outbox.behind:
            self._behind = True
            self._grace.start(self._grace_s)
        self._wake()
        return True

    def reply(self, data: bytes) -> bool:
        """True: write the reply now (charged). False: it was queued behind what waits."""
        if self.outbox.reply(len(data)):
            return True
        self._conn.push(data, lane=Lane.CONTROL)
        return False

    def next(self) -> bytes | None:
        """The next frame to write, or None: nothing may go now (a wake-up is armed if
        something waits for tokens or a batch window)."""
        outbox = self.outbox
        out = outbox.next()
        if self._behind and not outbox.behind:
            self._behind = False
            self._grace.stop()
        if isinstance(out, float):
            self._alarm.start(out)
            return None
        return out

    def queued(self) -> tuple[int, int]:
        return len(self.outbox), self.outbox.queued_bytes

    def close(self) -> None:
        """The connection is gone: stop the clocks, drop what waits and what comes."""
        self._closed = True
        self._alarm.stop()
        self._grace.stop()
        self.outbox.clear()
