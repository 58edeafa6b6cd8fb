"""A :class:`~rtctl.host.Host` without a gateway, peers that record what they are sent, a timer
the test fires: the services' own logic, tested synchronously and exactly."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, NamedTuple

from rtctl.backends import Backends, memory_backends
from rtctl.host import ConnectHook, DisconnectHook, LifecycleHook, MetricsCollector, ReadinessCheck
from rtctl.protocol import jsonrpc
from rtctl.protocol.lanes import Lane, Policy
from rtctl.protocol.upgrade import BINARY_SUBPROTOCOL, takes_binary
from rtctl.router import CallContext, Peer
from tests.backends.conftest import Scrape


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeHost:
    """Hooks are kept so the test runs them; no connection ever opens by itself."""

    def __init__(self, backends: Backends | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        self._clock = clock or FakeClock()
        self._backends = backends or memory_backends(clock=self._clock, node_id="n1")
        self.startup: list[LifecycleHook] = []
        self.shutdown: list[LifecycleHook] = []
        self.peers: dict[str, Peer] = {}
        self.collectors: list[MetricsCollector] = []

    @property
    def clock(self) -> Callable[[], float]:
        return self._clock

    @property
    def backends(self) -> Backends:
        return self._backends

    grace = 0.0  # sessions end when their connection does

    def on_connect(self, hook: ConnectHook) -> ConnectHook:
        return hook

    def on_disconnect(self, hook: DisconnectHook) -> DisconnectHook:
        return hook

    def on_startup(self, hook: LifecycleHook) -> LifecycleHook:
        self.startup.append(hook)
        return hook

    def on_shutdown(self, hook: LifecycleHook) -> LifecycleHook:
        self.shutdown.append(hook)
        return hook

    def add_readiness_check(self, name: str, check: ReadinessCheck) -> None:
        pass

    def add_metrics(self, collector: MetricsCollector) -> None:
        self.collectors.append(collector)

    def scrape(self) -> Scrape:
        """What ``/metrics`` would show of the services' families."""
        return Scrape(*self.collectors)

    def peer(self, connection_id: str) -> Peer | None:
        return self.peers.get(connection_id)

    def recovery_token(self, session: str, user: str) -> tuple[str, float]:
        raise NotImplementedError

    def reauthenticate(self, connection_id: str, token: str) -> float | None:
        raise NotImplementedError


class Pushed(NamedTuple):
    """How one message was queued: ``method`` (None for a binary one) and its tags."""

    method: str | None
    lane: Lane
    policy: Policy | None
    key: Hashable | None


class FakePeer:
    """Keeps every notification pushed to it, decoded, every binary message, and how each
    was tagged (:class:`Pushed`, in the order pushed)."""

    def __init__(self, conn_id: str, user: str,
                 subprotocol: str | None = BINARY_SUBPROTOCOL) -> None:
        self.id, self.user, self.connected_at = conn_id, user, 0.0
        self.subprotocol = subprotocol
        self.resumed = False
        self.close_code: int | None = None
        self.received: list[dict[str, Any]] = []
        self.binary: list[bytes] = []
        self.pushed: list[Pushed] = []
        self.queued: dict[Lane, int] = {}  # what backlog() answers: bytes not yet written

    def notify(self, method: str, params: Any = None, *, lane: Lane = Lane.EVENTS,
               policy: Policy | None = None, key: Hashable | None = None) -> None:
        self.push(jsonrpc.dumps(jsonrpc.encode_notification(method, params)), lane=lane,
                  policy=policy, key=key)

    def push(self, data: bytes, *, lane: Lane = Lane.EVENTS, policy: Policy | None = None,
             key: Hashable | None = None) -> None:
        message = jsonrpc.loads(data)
        self.received.append(message)
        self.pushed.append(Pushed(message["method"], lane, policy, key))

    def push_binary(self, data: bytes, *, lane: Lane = Lane.STATE, policy: Policy | None = None,
                    key: Hashable | None = None) -> None:
        if not takes_binary(self.subprotocol):  # as the gateway's Connection
            raise ValueError(f"{self.id} is on {self.subprotocol}: it takes no binary frames")
        self.binary.append(data)
        self.pushed.append(Pushed(None, lane, policy, key))

    def backlog(self, lane: Lane | None = None) -> int:
        return sum(self.queued.values()) if lane is None else self.queued.get(lane, 0)

    def tags(self, method: str | None) -> list[tuple[Lane, Policy | None, Hashable | None]]:
        """How each ``method`` notification (None: binary message) was queued, in order."""
        return [(p.lane, p.policy, p.key) for p in self.pushed if p.method == method]

    def close(self, code: int, reason: str) -> None:
        raise AssertionError(f"closed with {code}: {reason}")

    def context(self) -> CallContext:
        return CallContext(connection_id=self.id, user=self.user, claims={"sub": self.user},
                           remote_address=None, subprotocol=self.subprotocol, peer=self)

    def methods(self) -> list[str]:
        return [message["method"] for message in self.received]


class ManualTimer:
    """``loop.call_later`` whose callbacks run when the test says so."""

    def __init__(self) -> None:
        self.pending: list[tuple[float, Callable[[], None], _Handle]] = []

    def __call__(self, delay: float, callback: Callable[[], None], /) -> _Handle:
        handle = _Handle()
        self.pending.append((delay, callback, handle))
        return handle

    def fire(self) -> list[float]:
        """Run every callback not cancelled; their delays."""
        due, self.pending = self.pending, []
        delays = []
        for delay, callback, handle in due:
            if not handle.cancelled:
                delays.append(delay)
                callback()
        return delays


class _Handle:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
