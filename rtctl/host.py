"""What a service may ask of the gateway it runs in: the host interface.

Built-in features (``sys.*``, ``session.*``, presence, rooms) and a game's own
services are :class:`~rtctl.router.Router`\\ s built by a factory that receives a
:class:`Host`. They never see the gateway itself, so they can run under any
implementation of this small protocol (a test double, another transport)::

    def chat_service(host: Host) -> Router:
        router = Router()
        host.on_disconnect(lambda peer, code, reason: ...)
        ...
        return router

    Gateway(config, services=[*BUILTIN_SERVICES, chat_service])
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from prometheus_client.core import Metric

from rtctl.backends.base import Backends
from rtctl.router import Peer, Router

__all__ = [
    "ConnectHook",
    "DisconnectHook",
    "Host",
    "LifecycleHook",
    "MetricsCollector",
    "ReadinessCheck",
    "ServiceFactory",
]

ConnectHook = Callable[[Peer], Awaitable[None] | None]
DisconnectHook = Callable[[Peer, int | None, str], Awaitable[None] | None]
LifecycleHook = Callable[[], Awaitable[None]]
ReadinessCheck = Callable[[], str | None]  # None when ready, else the reason
MetricsCollector = Callable[[], Iterable[Metric]]  # Prometheus families, built at scrape time


class Host(Protocol):
    """The gateway as a service sees it: a clock, backends, hooks and its live peers."""

    @property
    def clock(self) -> Callable[[], float]:
        """Unix time in seconds; the same clock the gateway uses for tokens."""

    @property
    def backends(self) -> Backends:
        """Sessions, presence, rooms and the event bus (memory, Redis, NATS)."""

    @property
    def grace(self) -> float:
        """Seconds a dropped connection's session is held for a resume (0: not held)."""

    def on_connect(self, hook: ConnectHook) -> ConnectHook:
        """Call ``hook(peer)`` once a connection is open and registered."""

    def on_disconnect(self, hook: DisconnectHook) -> DisconnectHook:
        """Call ``hook(peer, close_code, reason)`` after a connection is gone."""

    def on_startup(self, hook: LifecycleHook) -> LifecycleHook:
        """Await ``hook()`` before the port opens."""

    def on_shutdown(self, hook: LifecycleHook) -> LifecycleHook:
        """Await ``hook()`` after the last connection closed."""

    def add_readiness_check(self, name: str, check: ReadinessCheck) -> None:
        """``/readyz`` answers 503 while ``check()`` returns a reason (it must be cheap)."""

    def add_metrics(self, collector: MetricsCollector) -> None:
        """The families are yielded at every scrape of ``/metrics``; call it while the
        service is built so they appear from start-up (before their first sample)."""

    def peer(self, connection_id: str) -> Peer | None:
        """The live connection with this id on this node, if any."""

    def recovery_token(self, session: str, user: str) -> tuple[str, float]:
        """A token that resumes ``session`` at a later upgrade, and its expiry (Unix s)."""

    def reauthenticate(self, connection_id: str, token: str) -> float | None:
        """Adopt ``token`` for the connection; returns its new expiry (Unix seconds).

        Raises :class:`~rtctl.exceptions.AuthError` when the token is refused
        or names another user than the connection's.
        """


ServiceFactory = Callable[[Host], Router]
