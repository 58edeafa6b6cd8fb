"""The ``arena`` scenario: bots play the demo arena, and its netcode is measured as they play.

Each client is what a game runs: a :class:`~rtctl.client.Client` (picows,
binary, a ``sys.ping`` every :data:`PING_INTERVAL` so its RTT is known) driving
an :class:`~rtctl.demo.player.ArenaPlayer` as user ``bench-<i>`` with
``Brain(seed=i)``, in room :data:`ROOM` of the built-in ``arena`` type
(:mod:`rtctl.demo.room`, ticking :data:`~rtctl.demo.game.TICK_RATE` times a
second). One completion is one snapshot applied by one bot; its latency is the
snapshot's age, from the server's stamp of its tick (``sent_at``) to the bot
applying it, as the ``state`` scenario times versions (one clock on one
machine; across machines they must be synchronised). Ticks a bot skipped over
(a resync after a lost patch, a catch-up delta) were expected and are ``lost``.

Over the measured window every bot also feeds its worker's
:class:`~rtctl.bench.netcode_counts.NetcodeTotals`: each reconciliation, each
acknowledged input, each rendered frame. The remote players it draws (at most
:data:`REMOTES_PER_FRAME` a frame, taken in turn) are judged against the
server's truth at the render time, as drawn with interpolation and as a client
without it would draw them. That truth comes from one observer client per
worker which joins the room straight at the gateway (``plan.gateway``: never
through the simulator) as user ``bench-observer-<w>`` and records every tick's
positions (:class:`~rtctl.bench.netcode_counts.Truth`). The observer is a
player too, one that never moves (bots may shoot it), and is left out of the
samples.

:meth:`Arena.prepare` asks for the room's schema (``state.schema``) first: a
gateway without the ``arena`` type fails the run there, in one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Iterable
from typing import Any, NamedTuple

from rtctl.bench.netcode_counts import NetcodeTotals, Position, Truth
from rtctl.bench.plan import Plan
from rtctl.bench.scenario import Context, Scenario
from rtctl.bench.state_scenario import (
    CALL_TIMEOUT,
    join_error_class,
    require_room_type,
    retried,
    sdk_client,
    until,
)
from rtctl.client import Client, ClientError, StateStore, SyncedRoom
from rtctl.demo.bots import Brain
from rtctl.demo.game import TICK_RATE, ArenaState
from rtctl.demo.networks import unplayable
from rtctl.demo.player import ArenaPlayer
from rtctl.demo.view import MAX_UNACKED, Scene, Seen
from rtctl.exceptions import ConfigError, RtctlError
from rtctl.state import Change
from simulator.profiles import load_profile

__all__ = ["OBSERVER", "PING_INTERVAL", "REMOTES_PER_FRAME", "ROOM", "Arena", "Bot",
           "ObserverFailed", "Table"]

ROOM = "arena:bench"
OBSERVER = "bench-observer-"  # + the worker's number: the user that records the truth
PING_INTERVAL = 1.0  # s: RTT known within a second of the start, at a negligible cost
REMOTES_PER_FRAME = 8  # remote players judged per frame: bounds the cost at many bots


class ObserverFailed(RtctlError):
    """The observer could not join the arena: there is no truth to judge remotes against."""


class Table:
    """What one worker's bots share: the totals, and the observer recording the truth."""

    def __init__(self, plan: Plan, worker: int) -> None:
        through = plan.through
        self.totals = NetcodeTotals(
            profile=through, unplayable=unplayable(load_profile(through)) if through else None)
        self.truth = Truth(self.totals)
        self.members = 0  # bots opened and not closed yet
        self.url = plan.gateway or plan.url
        self.observer = sdk_client(self.url, plan.tokens.for_user(f"{OBSERVER}{worker}"),
                                   binary=True)
        self._store: StateStore[ArenaState] = StateStore(ArenaState)
        self._store.on_change("tick", self._ticked)
        self.ready = asyncio.get_running_loop().create_task(self._join())

    async def _join(self) -> None:
        try:
            await self.observer.connect()
            await retried(lambda: SyncedRoom.join(self.observer, ROOM, self._store,
                                                  timeout=CALL_TIMEOUT))
        except ClientError as exc:
            await self.observer.close()
            raise ObserverFailed(f"the arena's observer could not join {ROOM} at {self.url}: "
                                 f"{exc}") from None

    def _ticked(self, change: Change) -> None:
        state = self._store.state
        self.truth.record(state.tick, {name: (p.x, p.y) for name, p in state.players.items()})

    async def close(self) -> None:
        self.truth.finish()
        await self.observer.close()


class _Counts(NamedTuple):
    """One bot's running totals at one instant."""

    at: float
    sent: int
    missed: int
    bytes_in: int
    bytes_out: int


def _xy(fields: dict[str, Any]) -> Position:
    return fields["x"], fields["y"]


class Bot:
    """One bench client: a player whose snapshots and frames are measured in the window."""

    def __init__(self, ctx: Context, table: Table, player: ArenaPlayer) -> None:
        self.ctx, self.table, self.player = ctx, table, player
        self.after_window = asyncio.Event()  # a snapshot stamped after the window came
        self._tick: int | None = None
        # (the last input applied, the time of the frame that first showed it)
        self._shown: deque[tuple[int, float]] = deque(maxlen=MAX_UNACKED)
        self._frames = 0  # rendered: which remotes the next frame samples
        player.on_snapshot.append(self._snapshot)
        player.on_frame.append(self._frame)

    def _second(self, now: float) -> int | None:
        """The second of the window ``now`` falls in; None outside it."""
        recorder = self.ctx.recorder
        return int(now - recorder.start) if recorder.start <= now < recorder.end else None

    def counts(self) -> _Counts:
        metrics, net = self.player.view.metrics, self.player.client.netstats()
        return _Counts(time.monotonic(), metrics.inputs_sent, metrics.inputs_missed,
                       net.bytes_in, net.bytes_out)

    def _snapshot(self, seen: Seen) -> None:
        now = time.monotonic()  # the player's clock: ArenaPlayer's default
        recorder = self.ctx.recorder
        if seen.age is not None:
            intended = now - seen.age  # the server's stamp, on this clock
            skipped = 0 if self._tick is None else max(0, seen.tick - self._tick - 1)
            if recorder.expect(intended, 1 + skipped):
                recorder.completed(intended, now)
            elif intended >= recorder.end:
                self.after_window.set()
        self._tick = seen.tick
        second = self._second(now)
        if second is None:
            return
        totals = self.table.totals
        if seen.reconciliation is not None:
            totals.reconciled(second, seen.reconciliation, respawned=seen.respawned)
        if seen.acked:
            totals.acked(second, shown=self._shown_after(seen.acked),
                         seen=[now - made for _, made in seen.acked])

    def _shown_after(self, acked: Iterable[tuple[int, float]]) -> list[float]:
        """For each acknowledged (seq, made at): how long until a frame showed it."""
        shown, delays = self._shown, []
        for seq, made in acked:
            while shown and shown[0][0] < seq:
                shown.popleft()
            if shown:
                delays.append(shown[0][1] - made)
        return delays

    def _frame(self, scene: Scene) -> None:
        view = self.player.view
        applied = view.metrics.inputs_sent
        if view.predictor is not None and (not self._shown or applied > self._shown[-1][0]):
            self._shown.append((applied, scene.now))
        second = self._second(scene.now)
        if second is None:
            return
        totals, truth, remotes = self.table.totals, self.table.truth, scene.remotes
        totals.rendered(second, remotes)
        names = self._sample(scene)
        truth.judge(totals.interpolation_error, second, remotes.time,
                    {name: _xy(remotes.entities[name]) for name in names})
        truth.judge(totals.latest_error, second, scene.latest_time,
                    {name: _xy(scene.latest[name]) for name in names})

    def _sample(self, scene: Scene) -> list[str]:
        """The bots drawn in both pictures, at most :data:`REMOTES_PER_FRAME`, in turn."""
        names = [name for name in scene.remotes.entities
                 if name in scene.latest and not name.startswith(OBSERVER)]
        if len(names) > REMOTES_PER_FRAME:
            start = self._frames * REMOTES_PER_FRAME % len(names)
            names = (names + names)[start:start + REMOTES_PER_FRAME]
        self._frames += 1
        return names


class Arena(Scenario[Bot]):
    name = "arena"
    unit = "snapshots"  # one snapshot applied by one bot

    def check(self, plan: Plan) -> None:
        super().check(plan)
        if plan.rate is not None:
            raise ConfigError(f"arena: the room ticks {TICK_RATE} times a second by itself; "
                              "--rate does not apply")
        if plan.tokens.token is not None:
            raise ConfigError("arena: each bot is a player of its own: give --jwt-secret "
                              "(a user per client), not --token")

    async def prepare(self, plan: Plan) -> None:
        await require_room_type(plan, ROOM, "arena")

    def _table(self, ctx: Context, index: int) -> Table:
        table = ctx.shared.get(ROOM)
        if not isinstance(table, Table):  # the worker's first client: its index is the worker's
            table = ctx.shared[ROOM] = Table(ctx.plan, index % ctx.plan.workers)
            ctx.recorder.netcode = table.totals
        return table

    async def open(self, ctx: Context, index: int) -> Bot | None:
        table = self._table(ctx, index)
        table.members += 1
        await asyncio.shield(table.ready)  # no bot plays before the truth is recorded
        await ctx.ramp(index)
        ctx.recorder.connects += 1
        client: Client = sdk_client(ctx.plan.url, ctx.plan.tokens.for_client(index),
                                    binary=True, ping_interval=PING_INTERVAL)
        player = ArenaPlayer(client, f"bench-{index}", room=ROOM, brain=Brain(seed=index))
        bot = Bot(ctx, table, player)
        try:
            await client.connect()
            await retried(lambda: player.join(timeout=CALL_TIMEOUT))
        except ClientError as exc:
            ctx.recorder.failed(join_error_class(exc))
            await client.close()
            return None
        return bot

    async def load(self, ctx: Context, index: int, bot: Bot | None) -> Bot | None:
        """The bot plays by itself; its inputs, losses and bytes are counted over the window."""
        if bot is None:
            return None
        await until(ctx.recorder.start)
        start = bot.counts()
        await until(ctx.end)
        end = bot.counts()
        seconds = end.at - start.at
        bot.table.totals.played(sent=end.sent - start.sent, lost=end.missed - start.missed,
                                bytes_in_per_s=(end.bytes_in - start.bytes_in) / seconds,
                                bytes_out_per_s=(end.bytes_out - start.bytes_out) / seconds)
        return bot

    async def close(self, ctx: Context, bot: Bot | None) -> None:
        """Wait for a snapshot stamped after the window (those stamped in it have come, or
        been skipped; at most ``plan.drain`` s), leave; the last bot stops the observer."""
        table = ctx.shared[ROOM]
        if bot is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(ctx.plan.drain):
                    await bot.after_window.wait()
            await bot.player.leave()
            await bot.player.client.close()
        table.members -= 1
        if table.members == 0:
            await table.close()
