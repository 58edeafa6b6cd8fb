"""The failover drill: players in rooms behind HAProxy, one fault mid-stream, and the proof.

Given a running :class:`~rtctl.bench.cluster.Cluster` (Redis, NATS, ``rtctl serve``
nodes, HAProxy), :func:`run_drill` connects ``clients`` SDK clients through HAProxy
(:class:`~rtctl.client.Client`, one user each), puts them in rooms of ``room_size``
(:class:`~rtctl.client.Rooms`), and has one member of each room publish numbered
messages as requests (``Rooms.publish``: acknowledged once in the room's history,
re-sent after a reconnect with the same idempotency key). Mid-stream it injects a
:class:`Fault`:

- ``kill``: SIGKILL one gateway (a crash). Its players reconnect through HAProxy to a
  survivor, resume their sessions and rejoin with ``since``: every room recovered.
- ``drain``: SIGTERM one gateway. HAProxy stops sending it players; it closes its own
  with 1001 after its ``--drain``; they resume elsewhere as above.
- ``redis``: Redis stopped and started again, empty. Nobody's connection drops, but
  every room's history and epoch are gone: each member is told ``recovered: false``
  (``epoch_changed``), a clean reset, and the stream goes on in the new epoch.
- ``nats``: NATS stopped and started again. Nobody's connection drops and nothing is
  reset: publishes are refused while a node has no bus (the publisher tries again),
  and a message that missed a node is filled in from the room's history.

It measures the time from the fault to each affected player's recovery (or reset), and
checks what every member was handed against what its room's publisher got acknowledged
(:mod:`rtctl.bench.recovery_counts`, the judge of the ``reconnect-storm`` scenario too):
each acknowledged message whose offset lies in the stretch of the stream the member was
told it has must reach it exactly once, in order of its number. With one publisher per
room that publishes one message at a time, and no unacknowledged publish, every offset of
the stream is such a message, so this is every offset once, in order. The client side
runs on one event loop, so at 1,000 clients its own CPU counts in the times;
docs/deploy.md says how to read them.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import secrets
import signal
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rtctl.bench.cluster import Cluster
from rtctl.bench.histogram import Histogram
from rtctl.bench.recovery_counts import Inbox, Ledger, MessageCounts
from rtctl.bench.results import percentile_ms
from rtctl.client import (
    Client,
    ClientError,
    ClientState,
    Recovered,
    RoomMessage,
    RoomRecovery,
    Rooms,
    ServerError,
    StateChanged,
)
from rtctl.exceptions import ConfigError
from rtctl.protocol.streams import position_in

__all__ = ["DEFAULT_CLIENTS", "DEFAULT_RATE", "Drill", "DrillResult", "Fault", "run_drill"]

DEFAULT_CLIENTS = 300
DEFAULT_RATE = 5.0  # messages a second from each room's publisher
_CONNECTING = 100  # clients opening their connection at once: HAProxy's and the nodes' backlog
_RETRY_PAUSE = 0.1  # s before a publish the gateway refused (Redis away, say) is tried again


class Fault(enum.Enum):
    KILL = "kill"
    DRAIN = "drain"
    REDIS = "redis"
    NATS = "nats"


@dataclass(frozen=True, kw_only=True)
class Drill:
    """What to run: the fault, the players and their traffic, and the bound of every wait."""

    fault: Fault
    clients: int = DEFAULT_CLIENTS
    room_size: int = 10
    rate: float = DEFAULT_RATE
    before: float = 1.0  # s of traffic before the fault
    after: float = 1.0  # s of traffic after the last affected player recovered
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.room_size < 2 or self.clients < self.room_size:
            raise ConfigError("a room needs a publisher and a member: room_size >= 2, "
                              "clients >= room_size")
        if self.rate <= 0 or self.timeout <= 0:
            raise ConfigError("the publish rate and the timeout must be above 0")


@dataclass
class DrillResult:
    """What happened. ``recovery`` holds ns from the fault to each affected player's
    room recovery or reset; ``taken_out`` is s from the fault until HAProxy stopped
    sending the node players (DOWN after a kill, NOLB while draining)."""

    drill: Drill
    on_victim: int = 0  # players the faulty gateway held (HAProxy's count before)
    dropped: int = 0  # players whose connection dropped
    publishers_dropped: int = 0  # of those, publishers (their acks re-sent)
    recovered: int = 0  # players whose room replayed what they missed
    resumed: int = 0  # reconnected players that kept their session
    replayed: int = 0
    resets: Counter[str] = field(default_factory=Counter)  # by reason
    recovery: Histogram = field(default_factory=Histogram)
    taken_out: float | None = None
    messages: MessageCounts = field(default_factory=MessageCounts)
    unacked: int = 0  # publishes that timed out: maybe in the stream, maybe not
    refused: int = 0  # publishes the gateway refused (no bus, no history) and were tried again
    # Offsets a member's SDK was handed twice and dropped: members never publish, so each
    # is a duplicate the gateway sent (the counts above are taken after the SDK).
    resent: int = 0
    timed_out: str | None = None  # which wait ran out, if one did

    def summary(self) -> dict[str, Any]:
        """The figures, JSON-ready."""
        return {
            "fault": self.drill.fault.value, "clients": self.drill.clients,
            "rate": self.drill.rate, "on_victim": self.on_victim, "dropped": self.dropped,
            "publishers_dropped": self.publishers_dropped, "recovered": self.recovered,
            "resumed": self.resumed, "replayed": self.replayed, "resets": dict(self.resets),
            "recovery_ms": {name: percentile_ms(self.recovery, p) for name, p in
                            (("p50", 50.0), ("p99", 99.0), ("max", 100.0))},
            "taken_out_s": self.taken_out, **self.messages.to_json(), "unacked": self.unacked,
            "refused": self.refused, "resent": self.resent, "timed_out": self.timed_out,
        }


class _Player:
    """One client in one room, and what it went through after the fault."""

    def __init__(self, client: Client, room: str, *, publishes: bool, run: _Run) -> None:
        self.client = client
        self.rooms = Rooms(client)
        self.room = room
        self.publishes = publishes
        self.inbox: Inbox | None = None  # once its join answered
        self.dropped = False
        self.outcome: RoomRecovery | None = None
        self.session: Recovered | None = None
        self._run = run
        self.rooms.on_message(self._message)
        self.rooms.on_recovery(lambda event: run.recovered(self, event))
        client.on_state_change(lambda change: run.changed_state(self, change))
        client.on_recovered(self._resumed)

    def _resumed(self, event: Recovered) -> None:
        self.session = event

    async def join(self) -> None:
        reply = await self.rooms.join(self.room)
        self.inbox = Inbox(position_in(reply))

    def _message(self, message: RoomMessage) -> None:
        assert self.inbox is not None, "no message before the join's answer (Rooms holds them)"
        self.inbox.delivered(int(message.data["n"]), message.position)
        self._run.progress.set()


class _Run:
    """One drill's players, what their publishers got acknowledged, and when things
    happened (the fault, each player's recovery)."""

    def __init__(self, cluster: Cluster, drill: Drill) -> None:
        self.cluster, self.drill = cluster, drill
        self.progress = asyncio.Event()  # set at every event a wait may be waiting for
        self.fault_at: float | None = None
        self.recovered_at: dict[_Player, float] = {}
        self.stop = asyncio.Event()
        tag = secrets.token_hex(4)
        tokens = cluster.tokens
        self.players = [
            _Player(Client(cluster.haproxy.url, token=tokens.for_user(f"drill-{tag}-{i}")),
                    f"drill-{tag}-{i // drill.room_size}", publishes=i % drill.room_size == 0,
                    run=self)
            for i in range(drill.clients - drill.clients % drill.room_size)]
        self.publishers = [p for p in self.players if p.publishes]
        self.members = [p for p in self.players if not p.publishes]
        self.ledgers = {p.room: Ledger() for p in self.publishers}
        self.unacked = 0  # publishes that timed out
        self.refused = 0  # publishes refused, then tried again

    def changed_state(self, player: _Player, change: StateChanged) -> None:
        if self.fault_at is not None and change.old is ClientState.CONNECTED:
            player.dropped = True
            self.progress.set()

    def recovered(self, player: _Player, event: RoomRecovery) -> None:
        assert player.inbox is not None
        if event.error is not None:  # out of the room: it has the stream up to where it was
            player.inbox.leave()
        elif not event.recovered:
            player.inbox.reset(event.position)
        if self.fault_at is not None and player.outcome is None:
            player.outcome = event
            self.recovered_at[player] = time.monotonic()
            self.progress.set()

    async def until(self, done: Callable[[], bool], what: str, result: DrillResult) -> None:
        """Wait for ``done()``, woken by each event; on time out note ``what`` and go on."""
        try:
            async with asyncio.timeout(self.drill.timeout):
                while not done():
                    self.progress.clear()
                    await self.progress.wait()
        except TimeoutError:
            result.timed_out = result.timed_out or what

    async def publish(self, publisher: _Player) -> None:
        """Numbered messages at the drill's rate until told to stop. A refusal (an error
        reply: nothing was appended) is tried again; a publish that timed out may or may
        not be in the room, so its number counts as unacknowledged."""
        n, interval = 0, 1.0 / self.drill.rate
        ledger = self.ledgers[publisher.room]
        while not self.stop.is_set():
            n += 1
            deadline = time.monotonic() + self.drill.timeout
            while True:
                try:
                    position = await publisher.rooms.publish(publisher.room, {"n": n})
                    ledger.record(n, position, measured=True)
                    break
                except ServerError:
                    self.refused += 1
                    if time.monotonic() > deadline:
                        self.unacked += 1
                        break
                    await asyncio.sleep(_RETRY_PAUSE)
                except ClientError:
                    self.unacked += 1
                    break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), interval)  # the rate, or stop

    async def inject(self, result: DrillResult) -> list[_Player]:
        """Cause the fault; return the players who must each be told of a reset before
        the drill goes on (every member after Redis lost the history; none otherwise: for
        a gateway the drill waits on the players it dropped, for NATS on nothing)."""
        cluster, fault = self.cluster, self.drill.fault
        if fault in (Fault.REDIS, Fault.NATS):
            backend = cluster.redis if fault is Fault.REDIS else cluster.nats
            self.fault_at = time.monotonic()
            await asyncio.to_thread(backend.stop)
            await asyncio.to_thread(backend.start)
            return self.members if fault is Fault.REDIS else []
        victim = cluster.gateways[0]
        server = cluster.server_of(victim)
        result.on_victim = cluster.haproxy.connections()[server]
        self.fault_at = time.monotonic()
        victim.signal(signal.SIGKILL if fault is Fault.KILL else signal.SIGTERM)
        await asyncio.to_thread(cluster.haproxy.wait_states,
                                {server: "DOWN" if fault is Fault.KILL else "NOLB"},
                                self.drill.timeout)
        result.taken_out = time.monotonic() - self.fault_at
        return []


async def run_drill(cluster: Cluster, drill: Drill) -> DrillResult:
    """Run ``drill`` on ``cluster``; every client is closed on the way out, whatever
    happened. The cluster is left as the fault left it (``Cluster.restore`` mends it)."""
    run, result = _Run(cluster, drill), DrillResult(drill)
    publishing: list[asyncio.Task[None]] = []
    try:
        gate = asyncio.Semaphore(_CONNECTING)

        async def enter(player: _Player) -> None:
            async with gate:
                await player.client.connect()
            await player.join()

        await asyncio.gather(*(enter(player) for player in run.players))
        publishing = [asyncio.create_task(run.publish(p)) for p in run.publishers]
        await asyncio.sleep(drill.before)
        watched = await run.inject(result)
        if drill.fault in (Fault.REDIS, Fault.NATS):
            await run.until(lambda: all(p.outcome for p in watched), "resets", result)
        else:
            await run.until(lambda: _all_back(run.players, result.on_victim),
                            "recoveries", result)
        await asyncio.sleep(drill.after)
        run.stop.set()
        await asyncio.gather(*publishing)
        await run.until(lambda: _all_delivered(run), "deliveries", result)
        _score(run, result)
        return result
    finally:
        for task in publishing:
            task.cancel()
        await asyncio.gather(*(player.client.close() for player in run.players),
                             return_exceptions=True)


def _all_back(players: Sequence[_Player], expected: int) -> bool:
    dropped = [p for p in players if p.dropped]
    return len(dropped) >= expected and all(p.outcome is not None for p in dropped)


def _all_delivered(run: _Run) -> bool:
    """Has every member been handed every acknowledged message its stream covers?"""
    return all(p.inbox is not None and not p.inbox.count(run.ledgers[p.room],
                                                         recovering=True).late
               for p in run.members)


def _score(run: _Run, result: DrillResult) -> None:
    assert run.fault_at is not None
    dropped = [p for p in run.players if p.dropped]
    result.dropped = len(dropped)
    result.publishers_dropped = sum(p.publishes for p in dropped)
    result.resumed = sum(bool(p.session and p.session.resumed) for p in dropped)
    for player, at in run.recovered_at.items():
        outcome = player.outcome
        assert outcome is not None
        result.recovery.record(int((at - run.fault_at) * 1e9))
        if outcome.recovered:
            result.recovered += 1
            result.replayed += outcome.replayed
        else:
            result.resets[outcome.reason or type(outcome.error).__name__] += 1
    for player in run.members:
        assert player.inbox is not None
        result.messages.add(player.inbox.count(run.ledgers[player.room]))
        result.resent += player.rooms.counters.duplicates
    result.unacked = run.unacked
    result.refused = run.refused
