"""What a scenario of ``rtctl conformance client`` plays with: its checks, the verdicts it
records, and :class:`Play` (the gateway, the timeout, the client's backoff attempt count).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from websockets.protocol import State

from rtctl.client.backoff import DEFAULT_RESET_AFTER
from rtctl.conformance.results import Outcome
from rtctl.conformance.scripted import Conn, ScriptedGateway

__all__ = ["Check", "Play", "Player", "Scenario", "Verdicts"]


@dataclass(frozen=True, slots=True)
class Check:
    id: str
    section: str
    title: str


@dataclass(slots=True)
class Verdicts:
    """What a scenario found, check id → (outcome, detail)."""

    found: dict[str, tuple[Outcome, str]] = field(default_factory=dict)

    def judge(self, check: str, ok: bool, detail: str) -> None:
        self.found[check] = (Outcome.PASS if ok else Outcome.FAIL, detail)

    def skip(self, check: str, detail: str) -> None:
        self.found[check] = (Outcome.SKIP, detail)


@dataclass(slots=True)
class Play:
    """What a scenario plays with: the gateway, the per-step timeout, and the count of
    backoff reconnections since the client's last connection that stayed up
    ``reset_after`` (§8.2: the attempt number of the next one)."""

    gw: ScriptedGateway
    timeout: float
    verdicts: Verdicts
    streak: int = 0

    async def connected(self) -> Conn:
        """The client's open connection, waiting for one if it is between connections,
        once the client is ready: a call asked for was made and reported, so the client
        is past its own start (``session.info``, rooms joined again) when a scenario acts."""
        conn = self.gw.current
        if conn is None or conn.ws.state is not State.OPEN:
            conn = await self.gw.next_connection(self.timeout, "connection from the client")
        await conn.notify("conformance.call", {"method": "ready.check"})
        ready = await self.gw.take("ready.check", self.timeout, "call of ready.check")
        await ready.answer(True)
        await self.outcome("ready.check")
        return conn

    def ended(self, conn: Conn, *, backoff: bool) -> None:
        """``conn`` is being ended by the gateway now; count the attempt that follows."""
        if asyncio.get_running_loop().time() - conn.upgrade.at >= DEFAULT_RESET_AFTER:
            self.streak = 0
        self.streak += backoff

    async def outcome(self, method: str) -> dict[str, object]:
        call = await self.gw.take(f"outcome:{method}", self.timeout,
                                  f"conformance.outcome for {method}")
        return call.params if isinstance(call.params, dict) else {}


Player = Callable[[Play], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    checks: tuple[Check, ...]
    play: Player
    final: bool = False  # the client must not come back: the run ends with it
