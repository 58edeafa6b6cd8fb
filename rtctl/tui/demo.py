"""``rtctl tui --demo``: the whole stack in one process, on free ports.

::

         bots ─┐
     observer ─┼─► simulator (ws proxy, port 0) ─► gateway (port 0, embedded defaults)
arena players ─┘                                     ▲  │ tap (in process)
  arena truth ───────────────────────────────────────┘  └──► the TUI

Every client but the arena's truth, the TUI's own observer included, connects
through the simulator, so a change of latency or loss there shows at once in
the observer's RTT, in the bots' traffic and in what the arena's player sees.
The observer is a member of the bots' room, so when its link drops it has
their messages to recover (the connection screen says how that went).
The gateway signs tokens with a fresh random secret that never leaves the
process. It registers the built-in stateful room types ``drift``
(:mod:`rtctl.services.drift`), so the state screen has a room to show
(``drift:1`` is made when it is first joined), and ``arena``
(:mod:`rtctl.demo.room`), where the arena screen plays.

The arena (:class:`~rtctl.tui.stack.Arena`) is :data:`PLAYER`, the TUI's own
player, and :data:`ARENA_BOTS`, each an :class:`~rtctl.demo.player.ArenaPlayer`
with a seeded :class:`~rtctl.demo.bots.Brain`, all through the simulator; and
the truth, the room synced over a client straight to the gateway. The truth
joins as :data:`PLAYER` too: the arena gives every user one player however
many connections it plays from, so watching adds no player of its own.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rtctl.client import Client, SyncedRoom
from rtctl.config import GatewayConfig
from rtctl.demo.bots import Brain
from rtctl.demo.game import ArenaState
from rtctl.demo.player import ROOM, ArenaPlayer
from rtctl.demo.room import ArenaRoom
from rtctl.gateway.auth import AuthConfig
from rtctl.gateway.server import Gateway
from rtctl.protocol.tap import ADMIN_ROLE
from rtctl.services import builtin_services
from rtctl.services.drift import DriftRoom
from rtctl.services.state_room import StateRoom
from rtctl.tokens import issue_token
from rtctl.tui.bots import BotConfig, BotCrowd
from rtctl.tui.stack import OBSERVER, Arena, Stack, close_players
from simulator.proxy import WebSocketProxy
from simulator.scenario import Conditions

__all__ = ["ARENA_BOTS", "DEFAULT_OBSERVER_PING", "PLAYER", "ROOM_TYPES", "ArenaConfig",
           "DemoConfig", "start_demo"]

DEFAULT_OBSERVER_PING = 0.5  # seconds: often enough that the RTT follows a change at once
_TOKEN_TTL = 24 * 3600.0
ROOM_TYPES: dict[str, type[StateRoom[Any]]] = {"drift": DriftRoom, "arena": ArenaRoom}
PLAYER = "you"  # the user name of the TUI's own arena player
ARENA_BOTS = ("ivan", "judy", "mallory")  # after the bots' names (rtctl.tui.bots.BOT_NAMES)


@dataclass(frozen=True, kw_only=True)
class ArenaConfig:
    """The arena's knobs: how many bots play beside the TUI's player, and its seeds."""

    bots: int = len(ARENA_BOTS)
    room: str = ROOM
    seed: int = 1  # the room's spawns; the brains are seeded seed, seed + 1, ...

    def __post_init__(self) -> None:
        if not 0 <= self.bots <= len(ARENA_BOTS):
            raise ValueError(f"between 0 and {len(ARENA_BOTS)} arena bots, not {self.bots}")


@dataclass(frozen=True, kw_only=True)
class DemoConfig:
    """The demo's knobs; tests use fewer bots and faster timers."""

    bots: BotConfig = field(default_factory=BotConfig)
    observer_ping: float = DEFAULT_OBSERVER_PING
    call_timeout: float = 2.0
    host: str = "127.0.0.1"
    seed: int | None = None  # seeds the simulator's impairments
    arena: ArenaConfig | None = field(default_factory=ArenaConfig)  # None: no arena


async def start_demo(config: DemoConfig | None = None) -> Stack:
    """Start gateway, simulator, observer, bots and arena; the caller must ``await
    stack.close()``."""
    config = config or DemoConfig()
    secret = secrets.token_urlsafe(32)

    def token_for(user: str, **claims: str) -> str:
        return issue_token(secret, sub=user, ttl=_TOKEN_TTL, claims=claims)

    gateway = Gateway(GatewayConfig(auth=AuthConfig(secret=secret), host=config.host, port=0),
                      services=builtin_services(room_types=ROOM_TYPES))
    await gateway.start()
    tap = gateway.tap.subscribe()  # before anyone connects: the inspector sees it all
    proxy = WebSocketProxy(gateway.url, Conditions(), host=config.host, port=0,
                           seed=config.seed)
    try:
        await proxy.start()
    except BaseException:
        await gateway.shutdown(drain=0)
        raise
    token = token_for(OBSERVER, role=ADMIN_ROLE)  # the TUI may read /profile
    observer = Client(proxy.url, token=token, ping_interval=config.observer_ping,
                      call_timeout=config.call_timeout)
    bots = BotCrowd(proxy.url, token_for, config.bots)
    arena = config.arena
    players = [PLAYER, *ARENA_BOTS[: arena.bots]] if arena is not None else []
    stack = Stack(observer=observer, url=proxy.url, ping_interval=config.observer_ping,
                  token=token, gateway_url=gateway.url,
                  gateway=gateway, proxy=proxy, bots=bots, tap=tap,
                  known_users=[OBSERVER, *bots.names, *players], room=bots.config.room,
                  schemas={name: kind.schema for name, kind in ROOM_TYPES.items()})
    try:
        await observer.connect()
        await stack.rooms.join(bots.config.room, timeout=config.call_timeout)
        if arena is not None:
            stack.arena = await _start_arena(arena, config, gateway.url, proxy.url, token_for)
    except BaseException:
        await stack.close()
        raise
    bots.start()
    return stack


async def _start_arena(arena: ArenaConfig, config: DemoConfig, gateway_url: str,
                       proxy_url: str, token_for: Callable[[str], str]) -> Arena:
    """The players, each joined before the next (the first makes the room, with the
    seed), then the truth; whatever started is stopped again if one fails."""
    options = {"seed": arena.seed}
    brain = Brain(arena.seed)
    players: list[ArenaPlayer] = []
    truth_client = Client(gateway_url, token=token_for(PLAYER), ping_interval=None,
                          call_timeout=config.call_timeout)
    try:
        for index, name in enumerate([PLAYER, *ARENA_BOTS[: arena.bots]]):
            # Only the TUI's own player pings: its RTT is one of the numbers shown.
            client = Client(proxy_url, token=token_for(name), call_timeout=config.call_timeout,
                            ping_interval=config.observer_ping if name == PLAYER else None)
            players.append(ArenaPlayer(client, name, room=arena.room, options=options,
                                       brain=Brain(arena.seed + index) if index else brain))
            await client.connect()
            await players[-1].join(timeout=config.call_timeout)
        await truth_client.connect()
        truth = await SyncedRoom.join(truth_client, arena.room, ArenaState, options=options,
                                      timeout=config.call_timeout)
    except BaseException:
        await close_players(players, truth_client)
        raise
    return Arena(player=players[0], bots=players[1:], truth=truth, brain=brain)
