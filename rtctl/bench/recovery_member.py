"""One client of the ``reconnect-storm`` scenario: its room, its recoveries, its messages.

A :class:`Member` is an SDK :class:`~rtctl.client.Client` with
:class:`~rtctl.client.Rooms`, in one :class:`StormRoom`, behind its own
:class:`~rtctl.bench.cable.Cable`. A publisher numbers its messages and
records each acknowledged one in the room's ledger; a subscriber keeps what
it was handed in its inbox (:mod:`rtctl.bench.recovery_counts`). Each drop
opens an attempt (the bench's cut, at its intended time, or a drop the
client saw by itself) that the client's own events close: the room's
``RoomRecovery``, the link's ``Recovered``, the replayed messages.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any

from rtctl.bench.cable import Cable
from rtctl.bench.recovery_counts import Inbox, Ledger, RecoveryTotals
from rtctl.bench.scenario import Context
from rtctl.bench.state_scenario import retried
from rtctl.client import (
    Client,
    ClientClosed,
    ClientError,
    ClientState,
    Recovered,
    RoomMessage,
    RoomRecovery,
    Rooms,
    StateChanged,
)
from rtctl.protocol.streams import StreamPosition, position_in

__all__ = ["JOIN_AGAIN_ATTEMPTS", "REJOIN_FAILED", "Attempt", "Member", "StormRoom"]

JOIN_AGAIN_ATTEMPTS = 5  # after a join again failed: the room is joined afresh, or given up
REJOIN_FAILED = "rejoin failed"  # the error class of a join again that failed


class StormRoom:
    """One room of a worker: its publisher's ledger, and whether publishing ended."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.ledger = Ledger()
        self.settled = asyncio.Event()  # the publisher is done: ledger.end is final

    def settle(self) -> None:
        acked = [entry.position for entry in self.ledger.acked.values()]
        self.ledger.end = max(acked, key=lambda p: p.offset) if acked else None
        self.settled.set()


class Attempt:
    """A recovery under way: since when, whether it counts, what it waits for.

    It ends once a new link is ready (the client's ``Recovered``) and the
    room's outcome is in: a reset at once, a recovery once its replay is. A
    link that drops again before then is the same recovery carrying on: its
    joins again add to what was replayed, and a reset on any of them makes the
    whole a reset (what was missed is gone). It is counted once, as it ends.
    """

    def __init__(self, start: float, measured: bool) -> None:
        self.start = start
        self.measured = measured
        self.link: Recovered | None = None  # the new link, once it ran its reconnect steps
        self.target: StreamPosition | None = None  # recovered: the replay ends there
        self.replayed = 0  # messages replayed, over every join again it took
        self.reset: str | None = None  # the gateway's reason, once a join again reset
        self.failed = False  # a join again failed: the room is joined afresh
        self.done = asyncio.Event()

    @property
    def failure(self) -> str | None:
        """The error class it ends with, if it is no recovery."""
        if self.failed:
            return REJOIN_FAILED
        return None if self.reset is None else f"reset {self.reset}"

    def dropped(self) -> None:
        """The link dropped again: the next one must be ready, and its room joined again."""
        self.link, self.target = None, None


class Member:
    """One client in one room: its connection, its inbox, and its recovery under way."""

    def __init__(self, ctx: Context, room: StormRoom, client: Client, cable: Cable, *,
                 publisher: bool) -> None:
        self.ctx = ctx
        self.room = room
        self.client = client
        self.cable = cable
        self.publisher = publisher
        self.rooms = Rooms(client)
        self.inbox: Inbox | None = None  # a subscriber's, once joined
        self._early: list[tuple[int, StreamPosition]] = []  # handed over before the join's answer
        self.attempt: Attempt | None = None
        self.caught_up = asyncio.Event()  # had every message up to the room's end
        self._tasks: set[asyncio.Task[None]] = set()  # publishes, a join afresh
        client.on_state_change(self.changed)
        client.on_recovered(self.recovered)
        self.rooms.on_recovery(self.room_recovered)
        self.rooms.on_message(self.received)

    @property
    def totals(self) -> RecoveryTotals:
        totals = self.ctx.recorder.recovery
        assert totals is not None  # made by the scenario before any member
        return totals

    async def join(self) -> None:
        """Join the room (again on a timeout); a subscriber's inbox starts where it did."""
        async def join() -> None:
            reply = await self.rooms.join(self.room.name)
            start = position_in(reply)
            if self.inbox is not None:
                self.inbox.reset(start)
            elif not self.publisher:
                self.inbox = Inbox(start)
                for number, at in self._early:
                    self.inbox.delivered(number, at)
                self._early.clear()

        await retried(join)

    # -- the storm ---------------------------------------------------------------

    def cut(self, intended: float) -> Attempt:
        """Drop the link now; the recovery counts from ``intended``."""
        attempt = self.attempt
        if attempt is not None:
            self.totals.overlapped += 1
        else:
            attempt = self._open(intended)
        self.cable.cut()
        return attempt

    def _open(self, start: float) -> Attempt:
        self.attempt = Attempt(start, self.ctx.recorder.expect(start))
        return self.attempt

    # -- the client's events ------------------------------------------------------------

    def changed(self, event: StateChanged) -> None:
        """A drop the bench did not make opens a recovery; one during a recovery is part
        of it."""
        if event.old is ClientState.CONNECTED and event.new is ClientState.RECONNECTING:
            if self.attempt is None:  # a drop the bench did not make
                self._open(time.monotonic())
            else:  # dropped again before the replay was in
                self.attempt.dropped()

    def recovered(self, event: Recovered) -> None:
        """A new link ran its reconnect steps."""
        self.ctx.recorder.connects += 1
        if self.attempt is not None:
            self.attempt.link = event
            self._check(self._position())

    def room_recovered(self, event: RoomRecovery) -> None:
        """The room was joined again: replayed, reset, or the join failed."""
        attempt = self.attempt
        if event.recovered:
            if attempt is not None:
                attempt.replayed += event.replayed
                attempt.target = event.position
        elif event.error is not None:
            if attempt is not None:
                attempt.failed = True
            if self.inbox is not None:
                self.inbox.leave()
            self._spawn(self._join_afresh())
        else:
            if attempt is not None:
                attempt.reset = event.reason or "none"
            if self.inbox is not None:
                self.inbox.reset(event.position)
        self._check(self._position())

    async def _join_afresh(self) -> None:
        """The room is no longer joined: join it afresh (what was missed meanwhile is
        skipped), on the next connection if this one drops; give up after a few tries."""
        for _ in range(JOIN_AGAIN_ATTEMPTS):
            try:
                await self.join()
                return
            except ClientClosed:
                return
            except ClientError:
                await self.client.wait_for(ClientState.CONNECTED, ClientState.CLOSED)

    def received(self, message: RoomMessage) -> None:
        """A message of the room, handed over by the SDK in stream order."""
        at = message.position
        data = message.data
        if not self.publisher and isinstance(data, dict) and type(data.get("n")) is int:
            if self.inbox is None:
                self._early.append((data["n"], at))
            else:
                self.inbox.delivered(data["n"], at)
        self._check(at)

    def _position(self) -> StreamPosition | None:
        """Up to where the member has the room's stream: what a subscriber was handed (or
        started at); a publisher's own acknowledged messages count for it (the SDK's)."""
        return self.inbox.last if self.inbox is not None else self.rooms.position(self.room.name)

    def _check(self, at: StreamPosition | None) -> None:
        """Given the stream at ``at``: is the recovery under way over, and is everything
        up to where publishing ended in?"""
        attempt = self.attempt
        if attempt is not None and attempt.link is not None and (
                attempt.failure is not None
                or (at is not None and attempt.target is not None
                    and _reached(at, attempt.target))):
            self._end(attempt, attempt.link)
        if at is not None and self.room.settled.is_set() and _reached(at, self.room.ledger.end):
            self.caught_up.set()

    def _end(self, attempt: Attempt, link: Recovered) -> None:
        """Count the recovery that just ended (if it is in the window)."""
        self.attempt = None
        attempt.done.set()
        if not attempt.measured:
            return
        totals, recorder, failure = self.totals, self.ctx.recorder, attempt.failure
        if failure is None:
            totals.recovered += 1
            totals.replayed.record(attempt.replayed)
            recorder.completed(attempt.start, time.monotonic())
        else:
            if attempt.failed:
                totals.failed += 1
            else:
                totals.resets[attempt.reset or "none"] += 1
            recorder.failed(failure)
        if link.resumed:
            totals.resumed += 1
        else:
            totals.not_resumed[link.resume_error or "none"] += 1

    # -- publishing ------------------------------------------------------------------

    def publish(self, number: int, intended: float) -> None:
        """Publish message ``number`` (a task: the schedule does not wait for the answer)."""
        self._spawn(self._publish(number, intended))

    def _spawn(self, call: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(call)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(self, number: int, intended: float) -> None:
        measured = self.ctx.recorder.start <= intended < self.ctx.recorder.end
        try:
            position = await self.rooms.publish(self.room.name, {"n": number})
        except (ClientError, asyncio.CancelledError) as exc:  # cancelled: not answered in time
            self.totals.unacked += measured
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        self.room.ledger.record(number, position, measured=measured)
        self.totals.published += measured

    async def settle(self) -> None:
        """Wait for what is still on its way, bounded by the caller: a publisher's answers;
        a subscriber's messages up to the room's last acknowledged one, and its recovery
        under way."""
        if self.publisher:
            if self._tasks:
                await asyncio.wait(set(self._tasks))
            return
        await self.room.settled.wait()
        self._check(self._position())
        await self.caught_up.wait()
        if self.attempt is not None:
            await self.attempt.done.wait()

    def tally(self) -> None:
        """At the end (after :meth:`settle`): a recovery still under way is unfinished; a
        subscriber's messages are counted, and the offsets its SDK dropped as handed twice
        (the client's own publishes are dropped so too: a publisher has none to count)."""
        totals, attempt = self.totals, self.attempt
        if attempt is not None and attempt.measured:
            totals.unfinished += 1
        if self.inbox is not None:
            totals.messages.add(self.inbox.count(self.room.ledger,
                                                 recovering=attempt is not None))
            totals.resent += self.rooms.counters.duplicates

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.client.close()
        await self.cable.close()


def _reached(at: StreamPosition, end: StreamPosition | None) -> bool:
    return end is None or (at.epoch == end.epoch and at.offset >= end.offset)
