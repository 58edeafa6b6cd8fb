"""The ``reconnect-storm`` scenario: clients in rooms lose their links and recover them.

Each client is what a game runs: an SDK :class:`~rtctl.client.Client`
(picows, JSON) with :class:`~rtctl.client.Rooms`, as user ``bench-<i>``
(:class:`~rtctl.bench.recovery_member.Member`). A
worker's clients are dealt into rooms of ``plan.room_size``; the first member
of each room is its publisher, which publishes numbered messages
(``{"n": 1}``, ``{"n": 2}`` ...) as requests at ``plan.publish_rate`` a
second for the whole run, each acknowledged with its place in the room's
stream. The other members are subscribers, and their links drop: at each
storm (``plan.rate`` storms a second, every subscriber at the same instants;
closed loop: each one again once it recovered and stayed connected
:data:`BACKOFF_RESET_AFTER`) the bench cuts each
subscriber's :class:`~rtctl.bench.cable.Cable`, as a network would. The
client notices, reconnects with its recovery token (the session resumes) and
joins its room again with ``since``; the gateway replays what it missed, or
resets it. A link that drops by itself (a ``reset`` outage of the simulator
in between, a gateway going away) is a recovery to count too, from the moment
the client saw it drop.

One attempt is one recovery. It completes when the client's new link is
ready (it ran its reconnect steps: ``Recovered``), its room is recovered and
every replayed message has reached it: its latency is *time to recover*,
from the cut's intended time (open loop: a stalled generator does not hide
its own stall) to the later of the two. A reset is an error of
class ``reset <reason>``, a join again that failed ``rejoin failed`` (the
room is joined afresh), and an attempt still open after the drain is
``lost`` (``unfinished`` in the counts: an attempt that did not succeed). A
cut that finds its client still recovering from the last one is no new
attempt (``overlapped``). The counts and the messages checked by number are
:mod:`rtctl.bench.recovery_counts`'s.

Calls wait the SDK's default 10 s, as a game's do: a link stalled by the
simulator's 3 s handover gap delays them, it does not fail them. A client's
backoff starts over once it was connected for
:data:`BACKOFF_RESET_AFTER`, so each storm is a first drop to it; with the
SDK's default (10 s) storms a few seconds apart would look like a gateway
that keeps failing, and the backoff would grow from storm to storm.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time

from rtctl.bench.cable import Cable
from rtctl.bench.plan import Plan
from rtctl.bench.recovery_counts import RecoveryTotals
from rtctl.bench.recovery_member import Member, StormRoom
from rtctl.bench.scenario import Context, Scenario
from rtctl.bench.state_scenario import join_error_class, sdk_client
from rtctl.client import Backoff, ClientError, ClientState
from rtctl.client.connection import DEFAULT_CALL_TIMEOUT
from rtctl.exceptions import ConfigError

__all__ = ["BACKOFF_RESET_AFTER", "DEFAULT_STORM_RATE", "ROOM", "ReconnectStorm"]

ROOM = "bench-storm"  # + a tag of the worker's run, the worker and the room's number
DEFAULT_STORM_RATE = 0.2  # storms/s: every 5 s, each storm over long before the next
BACKOFF_RESET_AFTER = 0.5  # s connected after which a client's backoff starts over
_BACKOFF = Backoff(reset_after=BACKOFF_RESET_AFTER)


class ReconnectStorm(Scenario[Member]):
    name = "reconnect-storm"
    unit = "recoveries"
    min_clients = 2  # a publisher and a subscriber
    default_rate = DEFAULT_STORM_RATE
    through_mode = "tcp"  # a WebSocket rides TCP: the link stalls, it never loses a message

    def check(self, plan: Plan) -> None:
        super().check(plan)
        if plan.room_size < 2:
            raise ConfigError("reconnect-storm: a room needs a publisher and a subscriber "
                              "(room size 2 at least)")
        if not 0 < plan.publish_rate <= 1000:
            raise ConfigError("reconnect-storm: the publish rate must be above 0 and at "
                              "most 1000 messages/s per room")

    def _room(self, ctx: Context, index: int) -> tuple[StormRoom, bool]:
        """Client ``index``'s room (its worker's clients only, so a worker counts whole
        rooms) and whether it publishes there."""
        plan = ctx.plan
        rooms: dict[int, StormRoom] = ctx.shared.setdefault("rooms", {})
        tag = ctx.shared.setdefault("tag", secrets.token_hex(3))  # one run's rooms are new
        local = index // plan.workers
        number = local // plan.room_size
        room = rooms.get(number)
        if room is None:
            room = rooms[number] = StormRoom(f"{ROOM}-{tag}-{index % plan.workers}-{number}")
        return room, local % plan.room_size == 0

    async def open(self, ctx: Context, index: int) -> Member | None:
        plan = ctx.plan
        totals = ctx.recorder.recovery
        if totals is None:
            totals = ctx.recorder.recovery = RecoveryTotals(publish_rate=plan.publish_rate)
        room, publisher = self._room(ctx, index)
        await ctx.ramp(index)
        ctx.recorder.connects += 1
        cable = Cable(plan.url)
        await cable.start()
        client = sdk_client(cable.url, plan.tokens.for_client(index), binary=False,
                            backoff=_BACKOFF, call_timeout=DEFAULT_CALL_TIMEOUT)
        member = Member(ctx, room, client, cable, publisher=publisher)
        try:
            await client.connect()
            await member.join()
        except ClientError as exc:
            ctx.recorder.failed(join_error_class(exc))
            await member.close()
            if publisher:
                room.settle()  # nothing will be published: its subscribers need not wait
            return None
        totals.members += 1
        totals.rooms += publisher
        return member

    async def load(self, ctx: Context, index: int, member: Member | None) -> Member | None:
        if member is None:
            return None
        if member.publisher:
            number = 0
            async for intended in ctx.schedule(0, 1, ctx.plan.publish_rate):
                number += 1
                member.publish(number, intended)
            return member
        if ctx.plan.rate is not None:
            async for intended in ctx.schedule(0, 1, ctx.plan.rate):
                member.cut(intended)
            return member
        async for intended in ctx.attempts(index, ctx.plan.clients):
            attempt = member.cut(intended)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, ctx.end - time.monotonic())):
                    await attempt.done.wait()
                    await member.client.wait_for(ClientState.CONNECTED)
                    await asyncio.sleep(BACKOFF_RESET_AFTER)  # its backoff starts over
        return member

    async def close(self, ctx: Context, member: Member | None) -> None:
        """A publisher waits for its last answers; a subscriber for every message up to
        the room's last acknowledged one, and for its recovery under way (all within
        ``plan.drain``). Then its recovery still under way, if any, and a subscriber's
        messages are counted."""
        if member is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(ctx.plan.drain):
                await member.settle()
        if member.publisher:
            member.room.settle()
        member.tally()
        await member.close()

