"""The load scenarios: what each simulated client does, on asyncio.

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

Scenarios (JSON-RPC 2.0 methods named in ``docs/api.md``):

``echo``            ``sys.echo`` round trips.
``fanout``          one publisher, every other client in one room; latency is
                    publish → ``room.message`` at each subscriber.
``rooms``           rooms of :attr:`Plan.room_size`; every member publishes.
``presence-churn``  connect, ``sys.ping``, disconnect; latency is the session.
``reconnect-storm`` drop the connection (no close handshake), reconnect and
                    ``sys.ping``; latency is drop → first reply. With a rate,
                    every client drops at the same instants (rate storms/s).

A closed-loop echo runs in the connection's frame callback
(:meth:`~rtctl.bench.session.Session.repeat`), the fastest path; the other
loops are coroutines. :func:`scenario_for` finds a plan's scenario and checks
the plan against it.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from rtctl.bench.plan import Plan
from rtctl.bench.results import Recorder
from rtctl.bench.session import (
    CLOSED,
    TIMEOUT,
    ConnectFailed,
    Notification,
    Session,
    request_head,
)
from rtctl.exceptions import ConfigError

__all__ = ["QUIET", "SCENARIOS", "Context", "Scenario", "scenario_for"]

_BEFORE = float("-inf")  # the intended time of set-up calls: never measured
_PING = request_head("sys.ping")
# Seconds without a delivery after which a room scenario stops listening, at least; over
# a slow link, twice the slowest delivery seen, so what is still in flight is not lost.
QUIET = 0.2


@dataclass
class Context:
    """What a worker's clients share: the plan, the recorder and the phase times."""

    plan: Plan
    recorder: Recorder
    ramp_start: float
    start: float = float("inf")  # load begins (the warm-up starts here)
    end: float = float("inf")
    slowest: float = 0.0  # seconds: the longest a room delivery took so far

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
        replied = await session.call(_PING, _BEFORE)
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


class Scenario(ABC):
    """One kind of client behaviour; ``unit`` names what one completion is."""

    name: str
    unit: str  # plural: throughput is reported in unit/s
    min_clients = 1

    def check(self, plan: Plan) -> None:
        """Raise :class:`ConfigError` when ``plan`` cannot run this scenario."""
        if plan.clients < self.min_clients:
            raise ConfigError(f"{self.name} needs {self.min_clients} clients at least")

    async def open(self, ctx: Context, index: int) -> Session | None:
        """Start client ``index`` at its place in the ramp."""
        await ctx.ramp(index)
        return await ctx.session(index)

    @abstractmethod
    async def load(self, ctx: Context, index: int, session: Session | None) -> Session | None:
        """Generate this client's load until ``ctx.end``; return the session to close."""

    async def close(self, ctx: Context, session: Session | None) -> None:
        if session is not None:
            await session.drain(ctx.plan.drain)
            await session.close()


class Echo(Scenario):
    name = "echo"
    unit = "calls"

    async def load(self, ctx: Context, index: int, session: Session | None) -> Session | None:
        if session is None:
            return None
        head = request_head("sys.echo", ["x" * ctx.plan.payload_bytes])
        if ctx.plan.rate is None:
            await session.repeat(head, ctx.end)
            return session
        async for intended in ctx.attempts(index, ctx.plan.clients):
            session.send(head, intended)
            if session.closed.done():
                break
        return session


class Rooms(Scenario):
    """Rooms of ``plan.room_size`` where everyone publishes (``rooms``), or one big
    room with a single publisher, client 0 (``fanout``)."""

    unit = "deliveries"  # one publish counts once per member it reaches

    def __init__(self, name: str) -> None:
        self.name = name
        self.fanout = name == "fanout"
        self.min_clients = 2 if self.fanout else 1  # a publisher and a subscriber

    def _room(self, plan: Plan, index: int) -> tuple[str, int]:
        """The room of client ``index`` and how many members it has."""
        if self.fanout:
            return "bench-fanout", plan.clients
        number = index // plan.room_size
        return f"bench-room-{number}", min(plan.room_size, plan.clients - number * plan.room_size)

    async def open(self, ctx: Context, index: int) -> Session | None:
        recorder = ctx.recorder

        def delivered(message: dict[str, Any], now: float) -> None:
            params = message.get("params")
            if message["method"] == "room.message" and isinstance(params, dict):
                data = params.get("data")
                if isinstance(data, dict) and isinstance(t := data.get("t"), float):
                    ctx.slowest = max(ctx.slowest, now - t)
                    if data.get("m"):
                        recorder.completed(t, now)

        await ctx.ramp(index)
        session = await ctx.session(index, delivered)
        if session is not None:
            room = self._room(ctx.plan, index)[0]
            await session.call(request_head("room.join", {"room": room}), _BEFORE)
        return session

    async def load(self, ctx: Context, index: int, session: Session | None) -> Session | None:
        if session is None:
            return None
        if self.fanout and index != 0:  # a subscriber listens to the end of the window
            await asyncio.sleep(max(0.0, ctx.end - time.monotonic()))
            return session
        room, members = self._room(ctx.plan, index)
        publishers = 1 if self.fanout else ctx.plan.clients
        closed_loop = ctx.plan.rate is None
        async for intended in ctx.attempts(index, publishers):
            measured = ctx.recorder.expect(intended, members - 1)
            data = {"t": intended, "m": measured}
            head = request_head("room.publish", {"room": room, "data": data})
            if closed_loop:  # paced by the gateway's answer; the answer is not measured
                await session.call(head, _BEFORE)
            else:
                session.notify(head)
            if session.closed.done():
                break
        return session

    async def close(self, ctx: Context, session: Session | None) -> None:
        """Deliveries still on their way are awaited until none came for :data:`QUIET` s,
        or twice the slowest delivery so far if longer (at most the plan's drain)."""
        if session is not None:
            await session.quiet(max(QUIET, 2 * ctx.slowest), ctx.plan.drain)
        await super().close(ctx, session)


class PresenceChurn(Scenario):
    name = "presence-churn"
    unit = "sessions"

    async def open(self, ctx: Context, index: int) -> Session | None:
        return None  # every attempt is a session of its own

    async def load(self, ctx: Context, index: int, session: Session | None) -> Session | None:
        async for intended in ctx.attempts(index, ctx.plan.clients):
            churned = await ctx.connect_and_ping(index, intended)
            if churned is not None:
                await churned.close()
        return None


class ReconnectStorm(Scenario):
    name = "reconnect-storm"
    unit = "reconnects"

    async def load(self, ctx: Context, index: int, session: Session | None) -> Session | None:
        plan = ctx.plan
        storms = (ctx.schedule(0, 1, plan.rate) if plan.rate is not None
                  else ctx.attempts(index, plan.clients))
        async for intended in storms:
            if session is not None:
                session.abort()
                await session.closed
            session = await ctx.connect_and_ping(index, intended)
        return session


SCENARIOS: dict[str, Scenario] = {
    s.name: s for s in (Echo(), Rooms("fanout"), Rooms("rooms"), PresenceChurn(),
                        ReconnectStorm())
}


def scenario_for(plan: Plan) -> Scenario:
    """``plan``'s scenario, once the plan is checked against it (else :class:`ConfigError`)."""
    scenario = SCENARIOS.get(plan.scenario)
    if scenario is None:
        raise ConfigError(f"unknown scenario {plan.scenario!r} "
                          f"(choose from {', '.join(SCENARIOS)})")
    scenario.check(plan)
    return scenario
