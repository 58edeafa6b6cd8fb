"""What both proxy modes share: conditions, metrics, per-connection links, the clock, resets.

The models run on *elapsed* time (seconds since the proxy started, from the
event loop's monotonic clock), so outages and phases given as ``@30s`` mean
30 s after start. Each connection gets its own pair of
:class:`~simulator.link.Link` objects, seeded from ``seed`` and the connection's
number, so a seeded run impairs the n-th connection the same way every time.
"""

from __future__ import annotations

import asyncio
import random
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from socket import socket
from typing import Any, Protocol

from rtctl.protocol.codes import CloseCode
from rtctl.protocol.tap import Connected, Disconnected
from rtctl.tap import Tap
from simulator.link import Link, Outcome
from simulator.metrics import ProxyMetrics
from simulator.scenario import Client, Conditions, Outage

__all__ = ["Pair", "ShapingProxy", "connected_event"]


class Listener(Protocol):
    """What both asyncio's and websockets' servers offer."""

    @property
    def sockets(self) -> Sequence[socket]: ...

    def close(self) -> Any: ...

    def wait_closed(self) -> Awaitable[None]: ...


@dataclass(eq=False)
class Pair:
    """The two links of one proxied connection and how to cut it."""

    client: Client
    up: Link
    down: Link
    abort: Callable[[], None]
    key: tuple[int, int] = field(default=(-1, -1))
    going_away: Callable[[], None] | None = None  # ws mode: close both sides with 1001
    id: str = ""  # names the connection on the tap
    opened_us: int = 0  # when, in Unix microseconds

    @property
    def user(self) -> str:
        """The token's user, else the client's address: who this is on the tap."""
        return self.client.user or self.client.address


class ShapingProxy(ABC):
    """A proxy whose connections suffer :class:`Conditions`; subclasses move the bytes."""

    stream: bool  # tcp mode: links shape byte streams

    def __init__(self, conditions: Conditions, *, host: str = "127.0.0.1", port: int = 0,
                 seed: int | None = None) -> None:
        self.conditions = conditions
        self.host = host
        self.requested_port = port
        self.seed = seed
        self.metrics = ProxyMetrics()
        self.pairs: set[Pair] = set()
        self.tap = Tap()  # the same stream as the gateway's, frames annotated by their fate
        self._count = 0
        self._t0 = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Listener | None = None

    @property
    def port(self) -> int:
        """The port bound."""
        assert self._server is not None, "the proxy is not started"
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        """Where clients connect."""
        return f"ws://{self.host}:{self.port}"

    @abstractmethod
    async def _listen(self) -> Listener:
        """Bind and return the server."""

    async def start(self) -> None:
        """Bind and listen; outages given up front are scheduled from now."""
        self._loop = asyncio.get_running_loop()
        self._t0 = self._loop.time()
        self._server = await self._listen()
        for outage in self.conditions.outages:
            self._schedule_reset(outage)

    async def stop(self) -> None:
        """Stop listening and close connections (ws mode: with 1001), then cut what is left."""
        for pair in list(self.pairs):
            if pair.going_away is not None:
                pair.going_away()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for pair in list(self.pairs):
            pair.abort()

    async def __aenter__(self) -> ShapingProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def elapsed(self) -> float:
        assert self._loop is not None, "the proxy is not started"
        return self._loop.time() - self._t0

    def loop_time(self, elapsed: float) -> float:
        return self._t0 + elapsed

    def add_outage(self, outage: Outage) -> None:
        self.conditions.add_outage(outage)
        self._schedule_reset(outage)

    def _schedule_reset(self, outage: Outage) -> None:
        if outage.kind == "reset" and self._loop is not None:
            self._loop.call_at(self.loop_time(outage.start), self._reset_all)

    def _reset_all(self) -> None:
        for pair in list(self.pairs):
            self.metrics.resets += 1
            pair.abort()

    # -- per connection ----------------------------------------------------

    def open_pair(self, client: Client, abort: Callable[[], None]) -> Pair:
        """Links for a new connection, registered until :meth:`close_pair`."""
        self._count += 1
        seeds = [None, None] if self.seed is None else \
            [f"{self.seed}:{self._count}:{d}" for d in ("up", "down")]
        pair = Pair(client, Link(rng=random.Random(seeds[0]), stream=self.stream),
                    Link(rng=random.Random(seeds[1]), stream=self.stream), abort,
                    id=f"sim-{self._count}", opened_us=self.tap.clock_us())
        self.refresh(pair)
        self.pairs.add(pair)
        self.metrics.connections_opened += 1
        self.metrics.connections_open += 1
        if self.tap.active:
            self.tap.publish(connected_event(pair))
        return pair

    def close_pair(self, pair: Pair) -> None:
        if pair in self.pairs:
            self.pairs.remove(pair)
            self.metrics.connections_open -= 1
            if self.tap.active:  # the proxy relays the close frame without reading it: 1005
                self.tap.publish(Disconnected(t_us=self.tap.clock_us(), conn=pair.id,
                                              user=pair.user, code=CloseCode.NO_STATUS, reason=""))

    def refresh(self, pair: Pair) -> None:
        """Reconfigure ``pair``'s links if the conditions changed since the last message."""
        elapsed = self.elapsed()
        key = self.conditions.key(elapsed)
        if key != pair.key:
            spec = self.conditions.spec_for(pair.client, elapsed)
            holes = self.conditions.blackholes()
            pair.up.configure(spec.up, holes)
            pair.down.configure(spec.down, holes)
            pair.key = key

    def shape(self, pair: Pair, direction: str, size: int) -> Outcome:
        """Run one message through ``pair``'s link for ``direction`` and count it."""
        self.refresh(pair)
        link = pair.up if direction == "up" else pair.down
        outcome = link.send(size, self.elapsed())
        self.metrics.record(direction, size, outcome)
        return outcome


def connected_event(pair: Pair) -> Connected:
    """The tap's :class:`Connected` for a proxied connection (no path: the proxy keeps it)."""
    client = pair.client
    return Connected(t_us=pair.opened_us, conn=pair.id, user=pair.user,
                     remote=f"{client.address}:{client.port}", local=None, path="",
                     subprotocol=None)
