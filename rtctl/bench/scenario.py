"""What a scenario is: the steps every one of its clients takes, and what they share.

Every scenario has the same three steps per client: :meth:`Scenario.open`
(during the ramp: connect, join rooms), :meth:`Scenario.load` (until the end
of the window) and :meth:`Scenario.close`. Load runs in one of two modes:

* **open loop** at a fixed total rate: each client has a schedule of intended
  start times (evenly spaced, phase-shifted per client) and latency counts from
  the intended time, so a stall in the server or in the sender itself shows as
  latency instead of fewer samples (no coordinated omission);
* **closed loop** (``rate is None``): each client starts its next attempt when
  the previous one completed; throughput is then clients / mean latency
  (Little's law).

A client is whatever its scenario's :meth:`Scenario.open` makes: a bench
:class:`~rtctl.bench.session.Session` for most, an SDK client for ``state``, a
bot playing the demo arena for ``arena``.
The scenarios themselves are in :mod:`rtctl.bench.scenarios`.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from rtctl.bench.plan import Plan
from rtctl.bench.results import Recorder
from rtctl.bench.session import CLOSED, TIMEOUT, ConnectFailed, Notification, Session, request_head
from rtctl.exceptions import ConfigError

__all__ = ["UNMEASURED", "Context", "Scenario"]

UNMEASURED = float("-inf")  # the intended time of set-up calls: never measured
_PING = request_head("sys.ping")

C = TypeVar("C")  # one client, as the scenario's open() makes it


@dataclass
class Context:
    """What a worker's clients share: the plan, the recorder and the phase times."""

    plan: Plan
    recorder: Recorder
    ramp_start: float
    start: float = float("inf")  # load begins (the warm-up starts here)
    end: float = float("inf")
    slowest: float = 0.0  # seconds: the longest a room delivery took so far
    shared: dict[str, Any] = field(default_factory=dict)  # by a scenario's clients (arena)

    async def session(self, index: int,
                      on_notification: Notification | None = None) -> Session | None:
        """Open client ``index``'s connection; a failure is counted and gives None."""
        self.recorder.connects += 1
        try:
            return await Session.open(self.plan.url, self.plan.tokens.for_client(index),
                                      self.recorder, on_notification)
        except ConnectFailed as exc:
            self.recorder.failed(exc.kind)
            return None

    async def connect_and_ping(self, index: int, intended: float) -> Session | None:
        """One attempt meant for ``intended``: connect client ``index``, ``sys.ping``."""
        measured = self.recorder.expect(intended)
        session = await self.session(index)
        if session is None:
            return None
        replied = await session.call(_PING, UNMEASURED)
        if measured:
            if replied:
                self.recorder.completed(intended, time.monotonic())
            else:
                self.recorder.failed(CLOSED if session.closed.done() else TIMEOUT)
        return session

    async def ramp(self, index: int) -> None:
        """Wait for client ``index``'s place in the ramp (clients start evenly over it)."""
        delay = self.ramp_start + self.plan.ramp * index / self.plan.clients - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    async def schedule(self, index: int, clients: int, rate: float) -> AsyncIterator[float]:
        """Intended start times for one of ``clients`` sharing ``rate``/s, until the end."""
        interval = clients / rate
        first = self.start + interval * (index % clients) / clients
        intended, sent = first, 0
        while intended < self.end:
            delay = intended - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            yield intended
            sent += 1
            intended = first + sent * interval  # no drift from adding up rounding errors

    async def attempts(self, index: int, clients: int) -> AsyncIterator[float]:
        """Open loop on the plan's rate, else closed loop: 'now' after each attempt."""
        if self.plan.rate is not None:
            async for intended in self.schedule(index, clients, self.plan.rate):
                yield intended
            return
        while (now := time.monotonic()) < self.end:
            yield now


class Scenario(ABC, Generic[C]):
    """One kind of client behaviour; ``unit`` names what one completion is."""

    name: str
    unit: str  # plural: throughput is reported in unit/s
    min_clients = 1
    default_rate: float | None = None  # the rate when none is given; None: closed loop
    through_mode = "ws"  # the simulator's mode with ``--through`` (``rtctl simulate --mode``)

    def check(self, plan: Plan) -> None:
        """Raise :class:`ConfigError` when ``plan`` cannot run this scenario."""
        if plan.clients < self.min_clients:
            raise ConfigError(f"{self.name} needs {self.min_clients} clients at least")

    async def prepare(self, plan: Plan) -> None:
        """Once per run, before any client: raise an
        :class:`~rtctl.exceptions.RtctlError` saying why the server cannot run it."""

    @abstractmethod
    async def open(self, ctx: Context, index: int) -> C | None:
        """Start client ``index`` at its place in the ramp (None: it could not start)."""

    @abstractmethod
    async def load(self, ctx: Context, index: int, client: C | None) -> C | None:
        """Generate this client's load until ``ctx.end``; return the client to close."""

    @abstractmethod
    async def close(self, ctx: Context, client: C | None) -> None:
        """Wait for what is still on its way (at most ``ctx.plan.drain``), then close."""
