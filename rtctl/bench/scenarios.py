"""The load scenarios: what each simulated client does, on asyncio.

Scenarios (JSON-RPC 2.0 methods named in ``docs/api.md``):

``echo``            ``sys.echo`` round trips.
``fanout``          one publisher, every other client in one room; latency is
                    publish → ``room.message`` at each subscriber.
``rooms``           rooms of :attr:`Plan.room_size`; every member publishes.
``presence-churn``  connect, ``sys.ping``, disconnect; latency is the session.
``reconnect-storm`` clients in rooms lose their links while publishers keep
                    publishing; latency is drop → the room recovered and its
                    replay in (:mod:`rtctl.bench.recovery_scenario`).
``state``           one stateful room that ticks at the rate; latency is the
                    server's commit of a version → a client applying it
                    (:mod:`rtctl.bench.state_scenario`).
``arena``           bots play the demo arena; latency is a snapshot's age, and
                    the netcode is measured as they play
                    (:mod:`rtctl.bench.arena_scenario`).

The steps and the two loop modes are :mod:`rtctl.bench.scenario`'s. A
closed-loop echo runs in the connection's frame callback
(:meth:`~rtctl.bench.session.Session.repeat`), the fastest path; the other
loops are coroutines. :func:`scenario_for` finds a plan's scenario and checks
the plan against it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from rtctl.bench.arena_scenario import Arena
from rtctl.bench.plan import Plan
from rtctl.bench.recovery_scenario import ReconnectStorm
from rtctl.bench.scenario import UNMEASURED, Context, Scenario
from rtctl.bench.session import Session, request_head
from rtctl.bench.state_scenario import StateSync
from rtctl.exceptions import ConfigError

__all__ = ["QUIET", "SCENARIOS", "SessionScenario", "scenario_for"]

# Seconds without a delivery after which a room scenario stops listening, at least; over
# a slow link, twice the slowest delivery seen, so what is still in flight is not lost.
QUIET = 0.2


class SessionScenario(Scenario[Session]):
    """A scenario whose clients are bench sessions (:mod:`rtctl.bench.session`)."""

    async def open(self, ctx: Context, index: int) -> Session | None:
        await ctx.ramp(index)
        return await ctx.session(index)

    async def close(self, ctx: Context, session: Session | None) -> None:
        if session is not None:
            await session.drain(ctx.plan.drain)
            await session.close()


class Echo(SessionScenario):
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


class Rooms(SessionScenario):
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
            await session.call(request_head("room.join", {"room": room}), UNMEASURED)
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
                await session.call(head, UNMEASURED)
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


class PresenceChurn(SessionScenario):
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


SCENARIOS: dict[str, Scenario[Any]] = {
    s.name: s for s in (Echo(), Rooms("fanout"), Rooms("rooms"), PresenceChurn(),
                        ReconnectStorm(), StateSync(), Arena())
}


def scenario_for(plan: Plan) -> Scenario[Any]:
    """``plan``'s scenario, once the plan is checked against it (else :class:`ConfigError`)."""
    scenario = SCENARIOS.get(plan.scenario)
    if scenario is None:
        raise ConfigError(f"unknown scenario {plan.scenario!r} "
                          f"(choose from {', '.join(SCENARIOS)})")
    scenario.check(plan)
    return scenario
