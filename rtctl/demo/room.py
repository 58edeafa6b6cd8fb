"""``arena``: the demo arena's server side, a :class:`~rtctl.services.state_room.StateRoom`.

Each joining user gets a player at a random spot (seeded: option ``seed``);
``state.input {room, data: {"inputs": [[seq, dx, dy, aim, fire, view], ...]}}``
(usually a notification) queues the user's inputs; every tick, at
:data:`~rtctl.demo.game.TICK_RATE`:

1. each player, in name order, runs the inputs its queue releases
   (:class:`~rtctl.services.netcode.InputQueue`: in order, one a tick on
   average and at most three, gaps skipped and a standing backlog trimmed, both
   counted in ``missed``) through
   :func:`~rtctl.demo.game.move`, and ``ack`` becomes the last one's number;
2. an input with ``fire`` set (and the player reloaded) shoots along its aim at
   the other players *where the shooter saw them*: rewound to the input's
   ``view`` tick by :class:`~rtctl.services.netcode.LagCompensation`, at most
   one second back (Valve's ``sv_maxunlag``), never between the two places of a
   respawn. A hit costs the target
   :data:`~rtctl.demo.game.DAMAGE`; a player shot down scores its shooter a point
   and respawns at once at a random spot, with full health;
3. the positions are recorded for later rewinds, and ``sent_at`` is stamped.

A stall of the event loop does not slow the game down: the ticks it owes are run at
once (up to :data:`MAX_CATCH_UP`) and go out as one patch. A player's ``spawns``
counts the times the server placed it (joined, shot down): clients see a teleport
there, not motion to interpolate or an error of their prediction.

Register it with ``rtctl serve --room-type arena`` (or
``builtin_services(room_types={"arena": ArenaRoom})``); the room is made by its
first ``room.join``, whose only option is ``seed``.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from typing import Any

from rtctl.demo.game import (
    DAMAGE,
    HEIGHT,
    MAX_HP,
    RADIUS,
    RELOAD_TICKS,
    TELEPORT,
    TICK_RATE,
    WIDTH,
    ArenaState,
    Body,
    Input,
    Player,
    body_of,
    hit,
    move,
)
from rtctl.exceptions import InvalidParams
from rtctl.services.netcode import InputQueue, LagCompensation
from rtctl.services.state_room import StateRoom

__all__ = ["MAX_CATCH_UP", "MAX_INPUTS", "ArenaRoom"]

MAX_INPUTS = 32  # inputs in one state.input: a client re-sends at most its unacknowledged ones
MAX_CATCH_UP = TICK_RATE  # ticks run at once after a stall (1 s); the rest of a longer one
# is skipped, and the inputs sent meanwhile then wait on the input queues' budget
_SEED = 7


class ArenaRoom(StateRoom[ArenaState]):
    """The demo arena: players that move and shoot under their inputs."""

    schema = ArenaState
    tick_rate = float(TICK_RATE)

    def on_create(self) -> None:
        unknown = set(self.options) - {"seed"}
        if unknown:
            raise InvalidParams(f"Invalid params: unknown options {sorted(unknown)}; an arena "
                                "takes only 'seed'", {"options": sorted(unknown)})
        seed = self.options.get("seed", _SEED)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise InvalidParams("Invalid params: options.seed must be an integer",
                                {"seed": seed})
        self._rng = random.Random(seed)
        self._queues: dict[str, InputQueue[Input]] = {}
        self._connections: Counter[str] = Counter()  # a user may play from several
        self._lag: LagCompensation[str] = LagCompensation(tick_rate=TICK_RATE, snap=TELEPORT)
        self._owed = 0.0  # ticks due, carried between calls

    def on_join(self, user: str) -> None:
        self._connections[user] += 1
        if user not in self.state.players:  # a restored room may hold the player already
            self.state.players[user] = Player(hp=MAX_HP)
            self._spawn(self.state.players[user])
        self._queues.setdefault(user, InputQueue())

    def on_leave(self, user: str) -> None:
        self._connections[user] -= 1
        if self._connections[user] <= 0:
            del self._connections[user]
            self._queues.pop(user, None)
            self.state.players.pop(user, None)

    def on_input(self, user: str, data: Any) -> dict[str, int]:
        """Queue the inputs (all of them checked first: a bad one refuses the message);
        a call (not a notification) is answered with the input acknowledged so far."""
        inputs = data.get("inputs") if isinstance(data, dict) and len(data) == 1 else None
        if not isinstance(inputs, list) or not inputs or len(inputs) > MAX_INPUTS:
            raise InvalidParams("Invalid params: 'data' must be {\"inputs\": [[seq, dx, dy, "
                                f"aim, fire, view], ...]}} with 1 to {MAX_INPUTS} inputs",
                                {"data": data})
        parsed = []
        for index, item in enumerate(inputs):
            try:
                parsed.append(Input.from_wire(item))
            except ValueError as exc:
                raise InvalidParams(f"Invalid params: data.inputs[{index}]: {exc}",
                                    {"input": item}) from None
        queue = self._queues[user]
        queue.receive(parsed)
        return {"ack": queue.last}

    def on_restore(self) -> None:
        """Resumed from a snapshot (its node died): the clock goes on, the players rejoin
        afresh (their inputs were numbered for a queue that is gone)."""
        self.state.players.clear()

    def on_tick(self, dt: float) -> None:
        """Run the ticks due since the last call: one, or after a stall of the event loop
        as many as it lasted, up to :data:`MAX_CATCH_UP` (a fixed timestep: Fiedler, "Fix
        Your Timestep!"), so that ``tick / TICK_RATE`` keeps pace with the wall clock the
        clients interpolate against. One patch carries them all."""
        self._owed = min(self._owed + dt * TICK_RATE, MAX_CATCH_UP)
        due = max(round(self._owed), 1)
        self._owed -= due
        state = self.state
        for _ in range(due):
            state.tick += 1
            for name in sorted(state.players):
                self._play(name, state.players[name], state.tick)
            self._lag.record(state.tick, {name: (p.x, p.y)
                                          for name, p in state.players.items()})
        state.sent_at = time.time() * 1000

    def _play(self, name: str, player: Player, tick: int) -> None:
        queue = self._queues[name]
        body = body_of(player)
        for seq, command in queue.take():
            body = move(body, command)
            if command.fire and (player.shot == 0 or tick - player.shot >= RELOAD_TICKS):
                player.shot = tick
                self._shoot(name, player, body, command.view, tick)
            player.ack = seq
        player.x, player.y, player.angle = body  # an unchanged value is not sent again
        player.missed = queue.lost + queue.throttled

    def _shoot(self, name: str, shooter: Player, body: Body, view: float, tick: int) -> None:
        seen = self._lag.at(view, tick).positions
        targets = [(other, *seen[other]) for other in sorted(seen)
                   if other != name and other in self.state.players]
        victim_name = hit((body.x, body.y), body.angle, targets)
        if victim_name is None:
            return
        victim = self.state.players[victim_name]
        if victim.hp > DAMAGE:
            victim.hp -= DAMAGE
            return
        shooter.score = min(shooter.score + 1, 0xFFFF)
        victim.hp = MAX_HP
        self._spawn(victim)

    def _spawn(self, player: Player) -> None:
        rng = self._rng
        player.x = rng.uniform(RADIUS, WIDTH - RADIUS)
        player.y = rng.uniform(RADIUS, HEIGHT - RADIUS)
        player.spawns += 1
