"""What the TUI looks at: an observing client, the gateway's tap, and whatever is embedded.

A :class:`Stack` is built either by :func:`rtctl.tui.demo.start_demo` (gateway,
simulator, bots and the demo arena in this process) or by :func:`attach` (a
running gateway reached over the network). The screens only ever read it:
``gateway``, ``proxy``, ``bots`` and ``arena`` are None when attached, and each
screen says so instead of showing numbers it does not have. The observer's
``rooms`` (:class:`~rtctl.client.Rooms`) recover their streams when its link
drops, and ``recovery`` says how that went (:mod:`rtctl.tui.recovery`): in the
demo the observer is in the bots' room; attached, it joins none of the game's. ``schemas`` are
the state schemas of the room types this process registered (the demo's
``drift`` and ``arena``): the state screen decodes those rooms with them, any
other one with the schema the gateway describes (``state.schema``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from rtctl.client import Client, ClientError, ClientState, Rooms, SyncedRoom, TransportError
from rtctl.client.connection import DEFAULT_PING_INTERVAL
from rtctl.client.endpoint import endpoint_url
from rtctl.demo.bots import Brain
from rtctl.demo.game import ArenaState, Input
from rtctl.demo.player import ArenaPlayer
from rtctl.gateway.server import Gateway
from rtctl.inspect.listener import listen
from rtctl.protocol.tap import TAP_PATH, TapEvent
from rtctl.state import Schema
from rtctl.tap import Subscription
from rtctl.tui.bots import BotCrowd
from rtctl.tui.recovery import RecoveryStatus
from simulator.proxy import WebSocketProxy

__all__ = ["DEFAULT_ATTACH_TIMEOUT", "OBSERVER", "Arena", "Stack", "attach", "close_players"]

OBSERVER = "observer"  # the user name of the TUI's own client in the demo
DEFAULT_ATTACH_TIMEOUT = 5.0  # seconds to reach the gateway before giving up
_ATTACHED_PING = 1.0  # seconds between the observer's pings


@dataclass(eq=False, kw_only=True)
class Arena:
    """The demo arena as the TUI plays and watches it.

    ``player`` is the TUI's own, played by ``brain`` until :meth:`steer` or
    :meth:`fire` take over and :meth:`autopilot` gives it back; ``bots`` play by
    themselves. ``truth`` is the arena's state as the server has it: a room
    synced over a client straight to the gateway, past the simulator.
    """

    player: ArenaPlayer
    bots: list[ArenaPlayer]
    truth: SyncedRoom[ArenaState]
    brain: Brain

    def __post_init__(self) -> None:
        self.player.on_frame.append(self._fired)

    def steer(self, dx: int, dy: int) -> None:
        """Head along (dx, dy), aiming there; heading back the way it goes stops it.

        A terminal reports key presses, never releases, so a key sets a heading
        that lasts (a held key only repeats it) instead of a step per press.
        """
        steer = self._taken()
        if (dx, dy) == (-steer.dx, -steer.dy):
            self.player.steer = steer._replace(dx=0, dy=0)
        else:
            self.player.steer = steer._replace(dx=dx, dy=dy, aim=math.atan2(dy, dx))

    def fire(self) -> None:
        """Pull the trigger for one frame (while reloading, that pull does not shoot)."""
        self.player.steer = self._taken()._replace(fire=True)

    def _taken(self) -> Input:
        """The player's input, taken over from the brain (standing, aiming where it did)."""
        player = self.player
        if player.brain is not None:
            player.brain = None
            own = player.scene.own if player.scene is not None else None
            player.steer = Input(aim=own["angle"] if own is not None else 0.0)
        return player.steer

    def autopilot(self) -> None:
        """Give the player back to its brain."""
        self.player.brain = self.brain
        self.player.steer = Input()

    def _fired(self, scene: object) -> None:
        """A frame has carried the trigger pull: let go of it."""
        if self.player.steer.fire:
            self.player.steer = self.player.steer._replace(fire=False)

    async def close(self) -> None:
        """The truth and every player leave, then their clients close."""
        with contextlib.suppress(ClientError):
            await self.truth.leave()
        await close_players([self.player, *self.bots], self.truth.client)


async def close_players(players: Sequence[ArenaPlayer], *clients: Client) -> None:
    """Each player leaves (its frames stop; through a bad link, within its call timeout),
    then its client and ``clients`` close."""
    await asyncio.gather(*(player.leave() for player in players))
    await asyncio.gather(*(player.client.close() for player in players),
                         *(client.close() for client in clients))


@dataclass(eq=False, kw_only=True)
class Stack:
    """The parts the screens read; :meth:`close` stops everything this process started."""

    observer: Client
    url: str  # where the observer connects (the simulator's address in the demo)
    ping_interval: float = DEFAULT_PING_INTERVAL  # the observer's: how often an RTT arrives
    token: str | None = None  # the observer's token; with role=admin it opens /tap and /profile
    gateway_url: str = ""  # the gateway itself (HTTP: /profile), "" for ``url``
    gateway: Gateway | None = None
    proxy: WebSocketProxy | None = None
    bots: BotCrowd | None = None
    arena: Arena | None = None
    tap: Subscription | None = None  # in-process tap; None: listen to the remote /tap
    known_users: list[str] = field(default_factory=list)
    schemas: Mapping[str, type[Schema]] = field(default_factory=dict)  # by room type name
    room: str | None = None  # the room the observer joins (the demo: the bots'), if any
    rooms: Rooms = field(init=False)  # the observer's
    recovery: RecoveryStatus = field(init=False)  # the observer's last recovery

    def __post_init__(self) -> None:
        self.rooms = Rooms(self.observer)
        self.recovery = RecoveryStatus.watch(self.observer, self.rooms)

    @property
    def admin_url(self) -> str:
        """Where the gateway's own HTTP endpoints are (not through the simulator)."""
        return self.gateway_url or self.url

    @property
    def embedded(self) -> bool:
        """True when the gateway runs in this process."""
        return self.gateway is not None

    async def events(self) -> AsyncIterator[list[TapEvent]]:
        """The tap's events in batches, until it ends (a remote tap needs ``role=admin``)."""
        if self.tap is not None:
            while True:
                yield await self.tap.next_batch()
        else:
            parts = urlsplit(endpoint_url(self.admin_url))  # the tap sits beside the endpoint
            tap = urlunsplit(parts._replace(path=TAP_PATH, query=""))
            async with contextlib.aclosing(listen(tap, token=self.token)) as events:
                async for event in events:
                    yield [event]

    async def close(self) -> None:
        """Arena, bots, observer, tap, simulator, gateway: in that order, each only if
        started here."""
        if self.arena is not None:
            await self.arena.close()
        if self.bots is not None:
            await self.bots.stop()
        await self.observer.close()
        if self.tap is not None:
            self.tap.close()
        if self.proxy is not None:
            await self.proxy.stop()
        if self.gateway is not None:
            await self.gateway.shutdown(drain=0)


async def attach(url: str, token: str | None, *,
                 timeout: float = DEFAULT_ATTACH_TIMEOUT) -> Stack:
    """Observe the gateway at ``url``: connect a client within ``timeout`` s, or raise."""
    observer = Client(url, token=token, ping_interval=_ATTACHED_PING, call_timeout=2.0)
    try:
        async with asyncio.timeout(timeout):
            await observer.connect()
    except TimeoutError:
        raise TransportError(f"cannot reach {observer.url} within {timeout:g}s "
                             f"({observer.last_error or 'no answer'})") from None
    finally:
        if observer.state is not ClientState.CONNECTED:
            await observer.close()
    return Stack(observer=observer, url=url, ping_interval=_ATTACHED_PING, token=token)
