"""Bot players: a few :class:`~rtctl.client.Client` instances that behave like a game's.

Each bot connects with its own token, joins a room, announces itself with
``presence.set`` and then, every ``interval`` seconds (± half, seeded), does one
thing a player does: chat or move (``room.publish``), change status
(``presence.set``), or leave and come back a moment later (close the client,
open a new one). They exist so the TUI has real traffic to show, but they are
plain SDK users: anything here works the same against any rtctl gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass

from rtctl.client import Client, ClientState
from rtctl.exceptions import RtctlError

__all__ = ["BOT_NAMES", "DEFAULT_ROOM", "Bot", "BotConfig", "BotCrowd"]

BOT_NAMES = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi")
DEFAULT_ROOM = "lobby"
_STATUSES = ("online", "away", "busy")
_LINES = ("gg", "anyone up for a match?", "brb", "nice shot", "lag!", "who's hosting?")
# What a bot does on each turn, with weights: mostly moving, sometimes talking.
_ACTIONS = ("move", "chat", "status", "away")
_WEIGHTS = (6, 2, 1, 1)


@dataclass(frozen=True, kw_only=True)
class BotConfig:
    """How many bots, how busy, and how long one stays away when it leaves."""

    count: int = 4
    interval: float = 1.0  # seconds between two actions of one bot, on average
    away: float = 3.0  # seconds a bot stays disconnected when it leaves
    room: str = DEFAULT_ROOM
    call_timeout: float = 2.0
    seed: int | None = None


class Bot:
    """One player: connects, plays until :meth:`stop`, leaving and coming back now and then."""

    def __init__(self, name: str, url: str, token: str, config: BotConfig,
                 rng: random.Random) -> None:
        self.name = name
        self.url = url
        self.token = token
        self.config = config
        self.client: Client | None = None
        self.actions = 0
        self.errors = 0  # calls that failed: timeouts under loss, refusals during an outage
        self.last_error: BaseException | None = None
        self._rng = rng
        self._task: asyncio.Task[None] | None = None

    @property
    def state(self) -> ClientState:
        return ClientState.DISCONNECTED if self.client is None else self.client.state

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._play(), name=f"bot {self.name}")

    async def stop(self) -> None:
        """Stop playing and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.client is not None:
            await self.client.close()

    def _pause(self, mean: float) -> float:
        return mean * (0.5 + self._rng.random())

    async def _play(self) -> None:
        while True:
            client = Client(self.url, token=self.token, ping_interval=None,
                            call_timeout=self.config.call_timeout, rng=self._rng)
            self.client = client
            try:
                await client.connect()
                await client.call("room.join", {"room": self.config.room})
                await client.call("presence.set", {"status": "online"})
                while (action := self._rng.choices(_ACTIONS, _WEIGHTS)[0]) != "away":
                    await self._act(client, action)
                    await asyncio.sleep(self._pause(self.config.interval))
            except RtctlError as exc:
                self.errors += 1
                self.last_error = exc
            await client.close()
            await asyncio.sleep(self._pause(self.config.away))

    async def _act(self, client: Client, action: str) -> None:
        """One turn; a failed call counts and play goes on (the client reconnects by itself)."""
        rng, room = self._rng, self.config.room
        if action == "move":
            data: object = {"x": rng.randint(0, 99), "y": rng.randint(0, 99)}
            method, params = "room.publish", {"room": room, "data": data}
        elif action == "chat":
            method, params = "room.publish", {"room": room, "data": {"say": rng.choice(_LINES)}}
        else:
            method, params = "presence.set", {"status": rng.choice(_STATUSES)}
        self.actions += 1
        try:
            await client.call(method, params)
        except RtctlError as exc:
            self.errors += 1
            self.last_error = exc


class BotCrowd:
    """``config.count`` bots named from :data:`BOT_NAMES`, each with a token from ``token_for``."""

    def __init__(self, url: str, token_for: Callable[[str], str],
                 config: BotConfig | None = None) -> None:
        self.config = config or BotConfig()
        if not 0 <= self.config.count <= len(BOT_NAMES):
            raise ValueError(f"between 0 and {len(BOT_NAMES)} bots")
        rng = random.Random(self.config.seed)
        self.bots = [Bot(name, url, token_for(name), self.config, random.Random(rng.random()))
                     for name in BOT_NAMES[: self.config.count]]

    @property
    def names(self) -> list[str]:
        return [bot.name for bot in self.bots]

    @property
    def errors(self) -> int:
        return sum(bot.errors for bot in self.bots)

    def start(self) -> None:
        for bot in self.bots:
            bot.start()

    async def stop(self) -> None:
        await asyncio.gather(*(bot.stop() for bot in self.bots))
