"""The gateway's room history with faults a test scripts, for clients against a real gateway.

:func:`faulty_gateway` starts a gateway whose memory history store is wrapped
in a :class:`FaultyHistory`: appends and ``since`` reads wait at gates the
test closes and opens, and ``since`` fails while ``failures`` are left, as
Redis restarting makes it (-32050 to the join that reads it; nothing joined).
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from rtctl.backends import memory_backends
from rtctl.backends.base import BackendUnavailable, HistoryStore, Replay, Unrecoverable
from rtctl.gateway.server import Gateway
from rtctl.protocol.streams import StreamPosition
from tests.conftest import GatewayFactory

__all__ = ["FaultyHistory", "Gate", "faulty_gateway"]


class Gate:
    """Open unless closed; ``entered`` is set once a call came to it."""

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._open.set()
        self.entered = asyncio.Event()

    def close(self) -> None:
        self._open.clear()

    def open(self) -> None:
        self._open.set()

    async def through(self) -> None:
        self.entered.set()
        await self._open.wait()


class FaultyHistory:
    """A :class:`~rtctl.backends.base.HistoryStore` over ``inner``, with scripted faults."""

    def __init__(self, inner: HistoryStore) -> None:
        self.inner = inner
        self.limits = inner.limits
        self.appends = Gate()
        self.reads = Gate()  # the since reads of joins with since
        self.failures = 0  # since reads still to fail

    async def append(self, room: str, message: dict[str, Any], *, key: str | None = None
                     ) -> tuple[StreamPosition, bool]:
        await self.appends.through()
        return await self.inner.append(room, message, key=key)

    async def since(self, room: str, since: StreamPosition) -> Replay | Unrecoverable:
        await self.reads.through()
        if self.failures:
            self.failures -= 1
            raise BackendUnavailable("redis", "restarting")
        return await self.inner.since(room, since)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def faulty_gateway(start_gateway: GatewayFactory, **config: Any
                         ) -> tuple[Gateway, FaultyHistory]:
    """A gateway started with ``config`` on memory backends, and its faulty history."""
    backends = memory_backends()
    history = FaultyHistory(backends.history)
    gateway: Gateway = await start_gateway(
        backends=dataclasses.replace(backends, history=history), **config)
    return gateway, history
