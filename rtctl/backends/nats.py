"""The event bus on NATS core pub/sub, through nats-py.

Messages are JSON objects on plain subjects (``rtctl.presence``,
``rtctl.room.NAME``; ``docs/integration.md`` lists them). NATS core delivers
at most once: what is published while a node is cut off is lost, which is why
the services resynchronise from the stores when the bus comes back (the
:meth:`NatsBus.on_recovered` hook). nats-py reconnects forever and resends
subscriptions itself; while it is disconnected, :meth:`NatsBus.publish` fails
at once with :class:`~rtctl.backends.base.BackendUnavailable` rather than
buffering messages nobody may ever see. ``publish`` and ``subscribe`` are timed, their
failures and the reconnects counted, in :attr:`NatsBus.stats` (``/metrics``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription
from nats.errors import Error as NatsError

from rtctl.backends.base import BackendUnavailable, MessageHandler, RecoveryHook
from rtctl.backends.stats import BackendStats
from rtctl.protocol import jsonrpc
from rtctl.protocol.redact import redact

__all__ = ["NATS_OPERATIONS", "NatsBus"]

logger = logging.getLogger("rtctl.backends.nats")

DEFAULT_TIMEOUT = 2.0  # the first connection must succeed within this
RECONNECT_WAIT = 0.25  # between reconnection attempts after a loss
NATS_OPERATIONS = ("publish", "subscribe")  # the bus' calls, as /metrics names them


class _Subscription:
    def __init__(self, sub: NatsSubscription) -> None:
        self._sub = sub

    async def unsubscribe(self) -> None:
        try:
            await self._sub.unsubscribe()
        except NatsError as exc:  # closed or draining: nothing left to undo
            logger.debug("unsubscribe: %s", exc)


class NatsBus:
    """An :class:`~rtctl.backends.base.EventBus` and a watched connection."""

    name = "nats"

    def __init__(self, url: str, *, node_id: str = "rtctl",
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.url = url
        self._node_id = node_id
        self._timeout = timeout
        self._nc: Client | None = None
        self._failure: str | None = "not started"
        self._hooks: list[RecoveryHook] = []
        self.stats = BackendStats(NATS_OPERATIONS)

    async def start(self) -> None:
        try:
            self._nc = await asyncio.wait_for(nats.connect(
                self.url, name=self._node_id, connect_timeout=self._timeout,
                allow_reconnect=True, max_reconnect_attempts=-1,
                reconnect_time_wait=RECONNECT_WAIT,
                error_cb=self._error, disconnected_cb=self._disconnected,
                reconnected_cb=self._reconnected), self._timeout)
        except (TimeoutError, OSError, NatsError) as exc:
            why = str(exc) or f"no answer within {self._timeout:g}s"
            raise BackendUnavailable(
                "nats", f"cannot connect to {redact(self.url)}: {why}") from None
        self._failure = None

    async def close(self) -> None:
        self._failure = "closed"  # before: nats-py reports its own close as a disconnect
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.close()
            logger.info("nats connection closed")

    def failure(self) -> str | None:
        return self._failure

    def on_recovered(self, hook: RecoveryHook) -> None:
        self._hooks.append(hook)

    async def _error(self, exc: Exception) -> None:
        logger.debug("nats: %s", exc)

    async def _disconnected(self) -> None:
        if self._failure is None:
            logger.warning("nats disconnected; reconnecting")
            self._failure = "disconnected"

    async def _reconnected(self) -> None:
        logger.info("nats reconnected")
        self._failure = None
        self.stats.reconnects += 1
        for hook in self._hooks:
            hook()

    def _client(self) -> Client:
        if self._nc is None or not self._nc.is_connected:
            raise BackendUnavailable("nats", self._failure or "not connected")
        return self._nc

    async def publish(self, subject: str, message: dict[str, Any]) -> None:
        with self.stats.timed("publish"):
            try:
                await self._client().publish(subject, jsonrpc.dumps(message))
            except (NatsError, OSError) as exc:
                raise BackendUnavailable("nats", str(exc) or type(exc).__name__) from None

    async def subscribe(self, subject: str, handler: MessageHandler) -> _Subscription:
        async def deliver(msg: Msg) -> None:
            try:
                message = jsonrpc.loads(msg.data)
            except ValueError:
                logger.warning("dropped a message on %s that is not JSON", subject)
                return
            handler(message)

        with self.stats.timed("subscribe"):
            if self._nc is None:
                raise BackendUnavailable("nats", "not started")
            # Subscribing while reconnecting is fine: nats-py resends it on reconnect.
            return _Subscription(await self._nc.subscribe(subject, cb=deliver))
