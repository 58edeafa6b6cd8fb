"""The ``state`` scenario: SDK clients in one stateful room that ticks at the plan's rate.

The room is :data:`ROOM`, of the built-in ``drift`` type
(:mod:`rtctl.services.drift`), made by the first join with the plan's
``entities``, ``movers``, its rate as ``tick_rate``, and ``stamp``: every
version then carries the server's Unix time of its tick (``sent_at``, ms).
Each client is what a game runs: a :class:`~rtctl.client.Client` (picows;
binary, or JSON as ``plan.encoding`` says) whose
:class:`~rtctl.client.SyncedRoom` keeps a :class:`~rtctl.client.StateStore`,
which checks every version and asks for a snapshot after a gap.

One attempt is one version reaching one client. Its latency is the client's
clock when its store applied the version minus ``sent_at``: the server's
commit, encode and send, the network, and the client's decode. With the
gateway on this machine both are the same clock; across machines they must be
synchronised (NTP, PTP), and a version that seems applied before it was
stamped is counted as ``early`` (and as 0 ms). A version stamped in the window
that a client never applied by itself -- it resynced over a gap, was sent one
catch-up delta for several because it fell behind, or had not come by the end
of the drain -- is expected but not completed: ``lost``. Which version was the
window's last is pinned by the clients of a worker together
(:class:`~rtctl.bench.state_counts.WindowEnd`), so what one client missed does
not depend on which client closes first. Bytes and sync counts over the window
are :mod:`rtctl.bench.state_counts`'s, and one client reads the room's own cost
(``state.info``) at both ends of the window.

:meth:`StateSync.prepare` first asks for the room's schema (``state.schema``):
a gateway without the ``drift`` type fails the run there, in one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from rtctl.bench.plan import Plan
from rtctl.bench.scenario import Context, Scenario
from rtctl.bench.session import CLOSED, CONNECT, TIMEOUT
from rtctl.bench.state_counts import RoomCost, StateTotals, SyncCounts
from rtctl.client import Client, StateStore, SyncedRoom
from rtctl.client.backoff import Backoff
from rtctl.client.errors import AuthRefused, CallTimeout, ClientError, ConnectionLost, ServerError
from rtctl.exceptions import ConfigError, RtctlError
from rtctl.protocol.codes import ErrorCode
from rtctl.services.drift import LIMITS, StampedArena
from rtctl.state import Change

__all__ = ["ENCODINGS", "ROOM", "NoRoomType", "StateSync", "SyncClient", "join_error_class",
           "require_room_type", "retried", "sdk_client", "until"]

ROOM = "drift:bench"
ENCODINGS = ("binary", "json", "mixed")  # mixed: even clients binary, odd ones JSON
CALL_TIMEOUT = 3.0  # s: a reply or snapshot lost on a simulated link is asked for again
JOIN_ATTEMPTS = 5
INFO_ATTEMPTS = 3
_RECONNECTS = Backoff(max_attempts=3)  # a refused start fails in under a second
_NO_TYPE_CODES = frozenset({ErrorCode.METHOD_NOT_FOUND, ErrorCode.INVALID_PARAMS})
_STATUS = re.compile(r"\bHTTP (\d{3})\b")  # how the SDK words a refused upgrade


class NoRoomType(RtctlError):
    """The gateway has no room type the scenario needs: the run cannot be made."""


def sdk_client(url: str, token: str | None, *, binary: bool, backoff: Backoff = _RECONNECTS,
               ping_interval: float | None = None, call_timeout: float = CALL_TIMEOUT
               ) -> Client:
    """An SDK client as the bench's scenarios run them: picows, calls that are asked again
    after :data:`CALL_TIMEOUT`, a start that gives up quickly."""
    return Client(url, token=token, binary=binary, transport="picows",
                  call_timeout=call_timeout, ping_interval=ping_interval, backoff=backoff)


async def retried(join: Callable[[], Awaitable[object]]) -> None:
    """``join()``, again on a timeout (a reply or snapshot lost on a simulated link), at
    most :data:`JOIN_ATTEMPTS` times."""
    for _ in range(JOIN_ATTEMPTS - 1):
        with contextlib.suppress(CallTimeout):
            await join()
            return
    await join()


def join_error_class(exc: ClientError) -> str:
    """A countable class for why a client could not join, in :mod:`rtctl.bench.session`'s
    terms where they apply (``http 429`` has an explanation in the report)."""
    if isinstance(exc, ServerError):
        return f"rpc {exc.code}"
    if isinstance(exc, AuthRefused):
        return "http 401"
    if isinstance(exc, CallTimeout):
        return TIMEOUT
    if isinstance(exc, ConnectionLost):
        return CLOSED
    status = _STATUS.search(str(exc))
    return f"http {status[1]}" if status else CONNECT


class SyncClient:
    """One client: its connection, its store, and the versions it applied."""

    def __init__(self, ctx: Context, totals: StateTotals, client: Client, *,
                 binary: bool) -> None:
        self.ctx = ctx
        self.totals = totals
        self.client = client
        self.encoding = "binary" if binary else "json"
        self.store = StateStore(StampedArena)
        self.last: int | None = None  # the version applied last
        self.accounted: int | None = None  # the last one stamped before the window's end
        self.after_window = asyncio.Event()  # set once a version stamped after it is applied
        self.store.on_change("sent_at", self._applied)
        totals.window.expect_client()

    def _applied(self, change: Change) -> None:
        """A version was applied (its stamp changed): one delivery, after any it skipped."""
        now = time.monotonic()
        latency = time.time() - change.value / 1000
        intended = now - latency  # the stamp, on this clock
        version = self.store.version or 0
        skipped = 0 if self.last is None else max(0, version - self.last - 1)
        recorder = self.ctx.recorder
        if intended < recorder.end:
            self.accounted = version
            self.totals.window.applied_before(version, recorder.end - intended)
            if recorder.expect(intended, 1 + skipped):
                recorder.completed(intended, now)
                self.totals.early += latency < 0
        elif not self.after_window.is_set():
            self.totals.window.passed(version)
            self.after_window.set()
        self.last = version

    def unapplied(self) -> int:
        """Versions stamped in the window that this client never applied nor skipped over
        before it: those it was still behind on, or jumped over at the window's end."""
        end = self.totals.window.version(self.totals.tick_rate)
        accounted = self.accounted
        return 0 if end is None or accounted is None else max(0, end - accounted)

    def counts(self) -> SyncCounts:
        return SyncCounts.of(self.store.version, self.store.stats, self.client.netstats())

    async def join(self, plan: Plan) -> None:
        """Join the room (and make it, if first); a lost reply or snapshot is tried again."""
        options = {"entities": plan.entities, "movers": plan.movers,
                   "tick_rate": int(plan.rate or 0), "stamp": True}
        await retried(lambda: SyncedRoom.join(self.client, ROOM, self.store, options=options,
                                              timeout=CALL_TIMEOUT))

    async def info(self) -> dict[str, Any] | None:
        """``state.info`` of the room (asked again if lost), or None if it did not come."""
        for _ in range(INFO_ATTEMPTS):
            try:
                info = await self.client.call("state.info", {"room": ROOM})
            except CallTimeout:
                continue
            except ClientError:
                return None
            return info if isinstance(info, dict) else None
        return None


class StateSync(Scenario[SyncClient]):
    name = "state"
    unit = "versions"  # one version applied by one client
    default_rate = float(LIMITS["tick_rate"][2])

    def check(self, plan: Plan) -> None:
        super().check(plan)
        low, high, default = LIMITS["tick_rate"]
        rate = plan.rate
        if rate is None or not low <= rate <= high or rate != int(rate):
            raise ConfigError(f"state: the room ticks --rate times a second, a whole number "
                              f"from {low} to {high} (default {default}; no --closed)")
        for flag, value in (("entities", plan.entities), ("movers", plan.movers)):
            low, high, _ = LIMITS[flag]
            if not low <= value <= high:
                raise ConfigError(f"--{flag} must be from {low} to {high}")
        if plan.encoding not in ENCODINGS:
            raise ConfigError(f"--encoding must be one of {', '.join(ENCODINGS)}")

    async def prepare(self, plan: Plan) -> None:
        await require_room_type(plan, ROOM, "drift")

    async def open(self, ctx: Context, index: int) -> SyncClient | None:
        plan = ctx.plan
        if ctx.recorder.state is None:
            ctx.recorder.state = StateTotals(room=ROOM, entities=plan.entities,
                                             movers=plan.movers, tick_rate=plan.rate or 0.0)
        binary = plan.encoding == "binary" or (plan.encoding == "mixed" and index % 2 == 0)
        await ctx.ramp(index)
        ctx.recorder.connects += 1
        client = sdk_client(plan.url, plan.tokens.for_client(index), binary=binary)
        member = SyncClient(ctx, ctx.recorder.state, client, binary=binary)
        try:
            await member.client.connect()
            await member.join(plan)
        except ClientError as exc:
            ctx.recorder.failed(join_error_class(exc))
            member.totals.window.passed(None)
            await member.client.close()
            return None
        return member

    async def load(self, ctx: Context, index: int, member: SyncClient | None
                   ) -> SyncClient | None:
        """Count what came over the window; client 0 also reads the room's cost."""
        if member is None:
            return None
        await until(ctx.recorder.start)
        first = await member.info() if index == 0 else None
        start = member.counts()
        await until(ctx.end)
        member.totals.add(member.encoding, member.counts().since(start))
        if first is not None and (last := await member.info()) is not None:
            with contextlib.suppress(KeyError, TypeError):
                member.totals.server = RoomCost.between(first, last)
        return member

    async def close(self, ctx: Context, member: SyncClient | None) -> None:
        """Wait until a version stamped after the window is applied: each one stamped in it
        then came, or was skipped; and until the window's last version is known, whichever
        client closes first (at most ``plan.drain`` s; what has not come by then is lost)."""
        if member is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(ctx.plan.drain):
                await member.after_window.wait()
                await member.totals.window.settled.wait()
        ctx.recorder.expected += member.unapplied()  # not come by now: lost
        await member.client.close()


async def require_room_type(plan: Plan, room: str, kind: str) -> None:
    """Ask the gateway for ``room``'s schema (``state.schema``): no ``kind`` type there, no
    run. A gateway that cannot be reached is left for the clients to count."""
    client = sdk_client(plan.url, plan.tokens.for_client(0), binary=False,
                        backoff=Backoff(max_attempts=0))
    try:
        await client.connect()
        await client.call("state.schema", {"room": room})
    except ServerError as exc:
        if exc.code in _NO_TYPE_CODES:
            raise NoRoomType(f"the gateway has no '{kind}' room type: start it with "
                             f"`rtctl serve --room-type {kind}`") from None
    except ClientError:
        pass
    finally:
        await client.close()


async def until(when: float) -> None:
    """Sleep until ``time.monotonic()`` reaches ``when`` (a point of the run's schedule)."""
    await asyncio.sleep(max(0.0, when - time.monotonic()))
