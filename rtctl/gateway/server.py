"""The gateway: one node that carries JSON-RPC 2.0 calls over WebSockets.

It knows how to carry calls, not what they mean: ``sys.*``, ``session.*``,
presence and rooms are services (:data:`rtctl.services.BUILTIN_SERVICES`) built
on the gateway's :class:`~rtctl.host.Host` interface, registered through the
same :class:`~rtctl.router.Router` a game uses. The pieces:

- :class:`~rtctl.gateway.http.Front` answers HTTP before any WebSocket exists
  (health, readiness, metrics, profile, auth and limits at the upgrade);
- :class:`~rtctl.gateway.dispatch.Dispatcher` turns each received message into
  the bytes to send back (sans-I/O);
- a transport driver (:mod:`rtctl.gateway.transports`: ``websockets`` or
  ``picows``) moves the bytes, and calls back here as connections open and close;
- this class owns the lifecycle: the registry, token expiry (close 4001 unless
  the client refreshed), the hooks, and the drain on shutdown (``/readyz``
  503, upgrades 503, then close 1001).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

from rtctl.backends import memory_backends
from rtctl.backends.base import Backends
from rtctl.backends.metrics import backend_families
from rtctl.config import GatewayConfig
from rtctl.exceptions import AuthError
from rtctl.gateway.auth import Authenticator, Identity
from rtctl.gateway.connection import Connection, ConnectionState, Transport
from rtctl.gateway.dispatch import Dispatcher
from rtctl.gateway.http import Front
from rtctl.gateway.loop_lag import LagProbe
from rtctl.gateway.metrics import GatewayMetrics
from rtctl.gateway.recovery import RecoveryTokens, recovery_key
from rtctl.gateway.registry import ConnectionRegistry
from rtctl.gateway.tap import connected_event
from rtctl.gateway.transports import Driver, load_driver
from rtctl.host import (
    ConnectHook,
    DisconnectHook,
    LifecycleHook,
    MetricsCollector,
    ReadinessCheck,
    ServiceFactory,
)
from rtctl.profiler.stages import StageProfiler
from rtctl.protocol.codes import CloseCode
from rtctl.protocol.tap import Disconnected, TapEvent
from rtctl.router import Peer, Router
from rtctl.services import BUILTIN_SERVICES
from rtctl.tap import Tap

__all__ = ["Gateway"]

logger = logging.getLogger("rtctl.gateway")

_CLOSE_TIMEOUT = 2.0  # longest wait for a peer's closing handshake (RFC 6455 §7.1.1)


class Gateway:
    """One gateway node. ``async with Gateway(config) as gw:`` serves until the block ends.

    ``services`` build the built-in methods on this gateway (default: all of
    :data:`~rtctl.services.BUILTIN_SERVICES`; pass ``()`` for a bare carrier);
    ``router`` holds the game's own methods.
    """

    def __init__(
        self,
        config: GatewayConfig,
        *,
        router: Router | None = None,
        services: Sequence[ServiceFactory] = BUILTIN_SERVICES,
        authenticator: Authenticator | None = None,
        clock: Callable[[], float] = time.time,
        backends: Backends | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.authenticator = authenticator or Authenticator(config.auth, clock=clock)
        self.backends = backends or memory_backends(clock=clock, history=config.recovery.history)
        key, shared = recovery_key(config.recovery.secret, config.auth.secret)
        if not shared and self.backends.connections:
            logger.warning("recovery tokens are signed with a key of this node only: give "
                           "every node the same --recovery-secret to resume on any of them")
        self.recovery = RecoveryTokens(key, ttl=config.recovery.token_ttl, clock=clock)
        self._connect_hooks: list[ConnectHook] = []
        self._disconnect_hooks: list[DisconnectHook] = []
        self._startup_hooks: list[LifecycleHook] = []
        self._shutdown_hooks: list[LifecycleHook] = []
        self._readiness: dict[str, ReadinessCheck] = {}
        self._started = False
        self._starting: asyncio.Event | None = None  # set once start() has returned or raised
        self._draining = False
        self.router = Router()
        self.registry = ConnectionRegistry(config.limits)
        # Before the services, which add their families to it while they are built.
        self.metrics = GatewayMetrics(self.router, connections=self.registry.__len__,
                                      ready=lambda: self.front.ready(),
                                      draining=lambda: self._draining,
                                      transport=config.transport, node=self.backends.node_id)
        self.metrics.add_collector(partial(backend_families, self.backends.connections))
        for build in services:
            self.router.include(build(self))
        if router is not None:
            self.router.include(router)
        self.tap = Tap()
        self.profiler = StageProfiler(known_methods=set(self.router.methods))
        self._lag_probe = LagProbe(self.metrics.loop_lag, also=self.profiler.record_lag)
        self.dispatcher = Dispatcher(self.router, self.metrics, self.tap, self.profiler,
                                     max_batch=config.limits.max_batch,
                                     replies=self.backends.replies,
                                     reply_ttl=config.recovery.history_ttl,
                                     routing=config.routing)
        self.front = Front(config, authenticator=self.authenticator, registry=self.registry,
                           metrics=self.metrics, tap=self.tap, profiler=self.profiler,
                           phase=self._phase, readiness_failures=self.readiness_failures,
                           recovery=self.recovery)
        self._driver: Driver = load_driver(config.transport, self)
        self._ids = itertools.count(1)
        self._id_prefix = os.urandom(3).hex()
        self._expiry: dict[str, asyncio.TimerHandle] = {}
        self._replaced: dict[str, Connection] = {}  # session id → the connection a resume took over
        self._stopped = asyncio.Event()
        self._empty = asyncio.Event()  # set whenever the registry drains to zero

    # -- the host interface (rtctl.host.Host) ----------------------------------

    def on_connect(self, hook: ConnectHook) -> ConnectHook:
        """Call ``hook(connection)`` once a connection is open and registered."""
        self._connect_hooks.append(hook)
        return hook

    def on_disconnect(self, hook: DisconnectHook) -> DisconnectHook:
        """Call ``hook(connection, close_code, reason)`` after a connection is gone."""
        self._disconnect_hooks.append(hook)
        return hook

    def on_startup(self, hook: LifecycleHook) -> LifecycleHook:
        """Await ``hook()`` in :meth:`start`, in order, before the port opens."""
        self._startup_hooks.append(hook)
        return hook

    def on_shutdown(self, hook: LifecycleHook) -> LifecycleHook:
        """Await ``hook()`` after the last connection closed, in reverse order."""
        self._shutdown_hooks.append(hook)
        return hook

    def add_readiness_check(self, name: str, check: ReadinessCheck) -> None:
        """``/readyz`` is 503 while ``check()`` returns a reason (it must be cheap)."""
        self._readiness[name] = check

    def add_metrics(self, collector: MetricsCollector) -> None:
        """Yield ``collector()``'s families at every scrape of ``/metrics``."""
        self.metrics.add_collector(collector)

    def readiness_failures(self) -> dict[str, str]:
        """Failing readiness checks by name: why this node should get no new players."""
        return {name: why for name, check in self._readiness.items()
                if (why := check()) is not None}

    @property
    def grace(self) -> float:
        return self.config.recovery.grace

    def peer(self, connection_id: str) -> Peer | None:
        return self.registry.get(connection_id)

    def recovery_token(self, session: str, user: str) -> tuple[str, float]:
        return self.recovery.issue(session, user)

    def reauthenticate(self, connection_id: str, token: str) -> float | None:
        """Adopt a refreshed token for the same user and move the expiry timer."""
        conn = self.registry.get(connection_id)
        if conn is None:
            raise AuthError("unknown_connection", "the connection is gone")
        identity = self.authenticator.authenticate(token)
        if identity.user != conn.user:
            raise AuthError("wrong_subject", "it names another user than this connection's")
        conn.reauthenticate(identity)
        self._schedule_expiry(conn)
        return identity.expires_at

    # -- start and stop ---------------------------------------------------

    def _phase(self) -> str:
        if self._draining:
            return "draining"
        return "ready" if self._started else "starting"

    @property
    def ready(self) -> bool:
        """True while the gateway takes new connections (``/readyz``)."""
        return self._phase() == "ready"

    @property
    def port(self) -> int:
        if not self._started:
            raise RuntimeError("the gateway is not started")
        return self._driver.port

    @property
    def url(self) -> str:
        """The WebSocket URL clients connect to."""
        return f"ws://{self.config.host}:{self.port}{self.config.path}"

    @property
    def close_timeout(self) -> float:
        return min(_CLOSE_TIMEOUT, self.config.heartbeat.timeout / 2)

    async def start(self) -> None:
        """Run the startup hooks, then bind and listen; returns once the port is open."""
        self._starting = asyncio.Event()
        try:
            for hook in self._startup_hooks:
                await hook()
            await self._driver.start()
        except BaseException:
            # A hook failed or the port is taken: undo the hooks that ran (the sessions'
            # loop, the backends' connections), so a failed start leaves nothing running.
            # Shutdown hooks therefore cope with a service whose startup never ran.
            await self._run_shutdown_hooks()
            raise
        else:
            self._lag_probe.start()  # after the bind, for the same reason
            self._started = True
        finally:
            self._starting.set()

    async def shutdown(self, drain: float | None = None) -> None:
        """Go not-ready, refuse new upgrades, wait ``drain`` s, then close all with 1001."""
        if self._starting is not None:
            await self._starting.wait()  # a start under way finishes (or fails) first
        if not self._started:
            return  # nothing runs (never started, or a start that failed undid itself)
        if self._draining:
            await self._stopped.wait()
            return
        self._draining = True
        drain = self.config.drain if drain is None else drain
        logger.info("draining for %.1fs before closing %d connections", drain, len(self.registry))
        if self.registry and drain > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._empty.wait(), drain)
        for conn in self.registry:  # closed by us: their sessions are held for a resume
            conn.close(CloseCode.GOING_AWAY, "gateway shutting down")
        await self._driver.close(CloseCode.GOING_AWAY, "gateway shutting down")
        await self._run_shutdown_hooks()
        self.profiler.stop()
        await self._lag_probe.stop()
        self._stopped.set()

    async def _run_shutdown_hooks(self) -> None:
        for hook in reversed(self._shutdown_hooks):
            try:
                await hook()
            except Exception:
                logger.exception("shutdown hook %r failed", hook)

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown(drain=0)

    # -- connections (the driver's Core interface) -----------------------------

    def open(self, identity: Identity, transport: Transport, *, remote: str | None,
             local: str | None, subprotocol: str | None) -> Connection:
        """Register an upgraded connection; raises ConnectionRefused at a limit.

        One that resumes a session (``identity.session``) takes its id; an older
        connection of that session still here is closed with 4009, and its hooks
        run before the new one's (:meth:`opened`).
        """
        session = identity.session
        if session is not None:
            self.metrics.resumes["resumed"] += 1
            older = self.registry.get(session)
            if older is not None:
                self.registry.remove(older)
                older.close(CloseCode.SESSION_RESUMED, "session resumed on a new connection")
                self._replaced[session] = older
        conn = Connection(
            id=session or f"{self._id_prefix}-{next(self._ids)}", identity=identity,
            remote_address=remote, local_address=local, connected_at=self.clock(),
            subprotocol=subprotocol, transport=transport)
        self.registry.add(conn)
        conn.transition(ConnectionState.OPEN)
        self._empty.clear()
        self.metrics.connections_opened += 1
        if self.tap.active:
            self.tap.publish(connected_event(conn, path=self.config.path,
                                             t_us=self.tap.clock_us()))
        self._schedule_expiry(conn)
        return conn

    async def opened(self, conn: Connection) -> None:
        older = self._replaced.pop(conn.id, None)
        if older is not None:
            await self.closed(older, CloseCode.SESSION_RESUMED, "session resumed")
        for hook in self._connect_hooks:
            await _run_hook(hook(conn))

    async def closed(self, conn: Connection, code: int, reason: str) -> None:
        if conn.state is ConnectionState.CLOSED:  # replaced by a resume: done in opened()
            return
        current = self.registry.get(conn.id) is conn  # not so for a replaced one
        timer = self._expiry.pop(conn.id, None) if current else None
        if timer is not None:
            timer.cancel()
        if self.tap.active:
            self.tap.publish(Disconnected(t_us=self.tap.clock_us(), conn=conn.id, user=conn.user,
                                          code=code, reason=reason))
        conn.transition(ConnectionState.CLOSED)
        if current:
            self.registry.remove(conn)
        if not self.registry:
            self._empty.set()
        self.metrics.connections_closed[code] += 1
        for hook in self._disconnect_hooks:
            try:
                await _run_hook(hook(conn, code, reason))
            except Exception:
                logger.exception("disconnect hook %r failed for %s", hook, conn.id)

    def open_connections(self) -> list[TapEvent]:
        return [connected_event(conn, path=self.config.path) for conn in self.registry]

    # -- token expiry ---------------------------------------------------------

    def _schedule_expiry(self, conn: Connection) -> None:
        old = self._expiry.pop(conn.id, None)
        if old is not None:
            old.cancel()
        if conn.expires_at is None:
            return
        loop = asyncio.get_running_loop()
        delay = conn.expires_at + self.config.auth.leeway - self.clock()
        self._expiry[conn.id] = loop.call_later(
            max(delay, 0), conn.close, CloseCode.TOKEN_EXPIRED, "token expired")


async def _run_hook(result: Awaitable[None] | None) -> None:
    if result is not None:
        await result
