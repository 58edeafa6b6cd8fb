"""A stateful room joined over a live :class:`~rtctl.client.Client`, its state kept in a store.

::

    store = StateStore(Arena)
    store.on_change("entities.*", on_entity)     # before the join: the first snapshot's
                                                 # entities are announced too
    room = await SyncedRoom.join(client, "arena:1", store)   # or pass Arena for a new store
    room.state.entities["e1"].hp                 # current once join returns
    ...
    await room.leave()

:meth:`SyncedRoom.join` starts routing the room's state messages to the store
*before* it sends ``room.join`` (the gateway sends the snapshot ahead of the
reply), and returns once the reply and the snapshot are in. The messages are
binary state frames on ``rtctl.v1.binary`` or ``state.patch`` notifications on
``rtctl.v1`` (:mod:`rtctl.client.state_routes`, docs/state-sync.md).

When the store needs a snapshot (:mod:`rtctl.client.state`: a gap, a corrupt
message) the room asks for one with ``state.resync {room}``, one request at a
time, again if the reply or the snapshot is lost on the way (after the
connection's retransmission timeout, RFC 6298, once it has a measured RTT, doubled
at each timeout in a row up to the call timeout, RFC 6298 §5.5) or if a gap
follows the snapshot before the reply, after a backoff if the gateway answers
a retryable error. A connection that drops ends the room memberships it
carried, and a new one carries none, so the room is joined again on each new
link before anything queued is sent (a reconnect step,
:mod:`rtctl.client.recovery`; retried once connected if it fails), and that
join's snapshot replaces the state. An error that retrying cannot cure stops
the repairs until the next reconnect; it is logged and kept in
:attr:`SyncedRoom.last_error`. So is a snapshot that does not decode with the
store's schema (:class:`~rtctl.client.errors.SnapshotUnreadable`) three times
in a row; at the join, one such snapshot fails the join at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Generic, NamedTuple

from rtctl.client.backoff import Backoff
from rtctl.client.connection import Client
from rtctl.client.errors import CallTimeout, ClientError, ServerError, SnapshotUnreadable
from rtctl.client.state import S, StateStore
from rtctl.client.state_routes import StateRoutes
from rtctl.client.states import ClientState
from rtctl.protocol.codes import ErrorCode

__all__ = ["SyncedRoom"]

logger = logging.getLogger("rtctl.client")

_RETRY = Backoff()  # its nominal delays pace resyncs the gateway asks to retry later
_DOUBLINGS = 16  # a bound on the exponent: the call timeout caps the patience long before
_UNREADABLE_LIMIT = 3  # snapshots in a row that do not decode: the schema is not the room's
_JOIN_ATTEMPTS = 3  # room.join sent at most this often when no reply comes in time


class _Membership(enum.Enum):
    """The client's membership of the room on the gateway, as far as it knows."""

    HELD = "held"  # joined on the current connection
    LOST = "lost"  # ended with the connection that carried it
    REJOINING = "rejoining"  # room.join sent again on this connection, no answer yet
    UNSURE = "unsure"  # that room.join failed: its reply may be what was lost


class _Seen(NamedTuple):
    """What had happened when a snapshot was asked for: any change is its answer."""

    snapshots: int
    corrupt: int
    drops: int


class SyncedRoom(Generic[S]):
    """One stateful room this client is in; made by :meth:`join`."""

    def __init__(self, client: Client, name: str, store: StateStore[S],
                 options: dict[str, Any] | None) -> None:
        self.client = client
        self.name = name
        self.store = store
        self.joined: Any = None  # the last room.join result: members, total, version, encoding
        self.last_error: ClientError | None = None
        self.resync_calls = 0  # state.resync requests sent
        self.rejoins = 0  # room.join requests sent again after a reconnect
        self._options = options
        self._membership = _Membership.HELD
        self._active = False  # repairs run: from the join's first answer until leave or close
        self._drops = 0  # connections lost while in the room
        self._stuck = False  # a repair failed for good: none until the next reconnect
        self._news = asyncio.Event()  # a message fed, a drop, a rejoin's answer, a give-up
        self._repair: asyncio.Task[None] | None = None

    @classmethod
    async def join(cls, client: Client, room: str, store: StateStore[S] | type[S], *,
                   options: dict[str, Any] | None = None,
                   timeout: float | None = None) -> SyncedRoom[S]:
        """Join ``room`` and return once its snapshot is in ``store`` (or a new
        store of that schema); ``options`` go to the room type's ``on_create``.

        Raises what ``client.call`` raises for ``room.join`` (after
        :data:`_JOIN_ATTEMPTS` timeouts), ValueError if this client already syncs
        ``room``, and, after leaving again:
        :class:`SnapshotUnreadable` as soon as a snapshot does not decode with the
        schema, the error that stopped the repairs (a refused ``state.resync``),
        or :class:`CallTimeout` if no snapshot comes within ``timeout`` twice
        over, once asked again.
        """
        if not isinstance(store, StateStore):
            store = StateStore(store)
        self = cls(client, room, store, options)
        routes = StateRoutes.of(client)
        routes.add(self)  # before the join is sent: its snapshot may come first
        store.expect_snapshot(f"joining {room}")
        try:
            seen = self._seen()
            for attempts_left in reversed(range(_JOIN_ATTEMPTS)):  # a lossy link lost the reply:
                try:  # joining again is harmless (the gateway answers with the state again)
                    self.joined = await client.call("room.join", self._join_params(),
                                                    timeout=timeout)
                    break
                except CallTimeout:
                    if not attempts_left:
                        raise
            await self._first_snapshot(seen, client.call_timeout if timeout is None else timeout)
        except BaseException:
            self._stop(routes)
            raise
        return self

    @property
    def state(self) -> S:
        return self.store.state

    async def synced(self, *, timeout: float | None = None) -> None:
        """Return once the store holds the room's current state (at once if it does)."""
        if not await self._until(lambda: not self.store.needs_resync, timeout):
            raise TimeoutError(f"room {self.name}: not in sync within {timeout}s")

    async def leave(self, *, timeout: float | None = None) -> None:
        """Stop keeping the state and leave the room (``room.leave``) unless the
        membership ended with its connection.

        A ``room.join`` sent again after a reconnect is waited for first: the
        gateway runs a connection's calls side by side, so a ``room.leave`` sent
        before its answer could overtake it. If it failed (its reply may be what
        was lost), the leave is sent anyway and a -32003 (not in the room) is
        taken as done.
        """
        self._active = False
        await self._until(lambda: self._membership is not _Membership.REJOINING, None)
        self._stop(StateRoutes.of(self.client))
        if self._membership is _Membership.HELD:
            await self.client.call("room.leave", {"room": self.name}, timeout=timeout)
        elif (self._membership is _Membership.UNSURE
              and self.client.state is ClientState.CONNECTED):
            try:
                await self.client.call("room.leave", {"room": self.name}, timeout=timeout)
            except ServerError as exc:
                if exc.code != ErrorCode.FORBIDDEN:
                    raise

    # -- what the routes call ------------------------------------------------------

    def _feed(self, message: Any) -> None:
        self.store.apply(message)
        self._news.set()
        self._repair_soon()  # if the store now needs a snapshot

    def _connection_lost(self) -> None:
        self._membership = _Membership.LOST
        self._drops += 1
        self.store.expect_snapshot("connection lost")
        self._news.set()  # a repair waiting for an answer on that connection goes round

    async def _reconnected(self, call: Callable[..., Awaitable[Any]]) -> None:
        """A new link, before anything queued: it carries no membership, whatever the
        last one did. A link that dropped before ``connected`` (during a later step, or
        the queue) changed no state, so only here is its membership known lost."""
        if not self._active:
            return  # the join's first answer is not in yet, or the room was left
        if self._membership is not _Membership.LOST:
            self._connection_lost()
        await self._join_again(call)

    def _connected(self) -> None:
        self._stuck = False
        self._repair_soon()

    # -- repairs ---------------------------------------------------------------------

    def _join_params(self) -> dict[str, Any]:
        if self._options is None:
            return {"room": self.name}
        return {"room": self.name, "options": self._options}

    def _seen(self) -> _Seen:
        return _Seen(self.store.stats.snapshots, self.store.stats.corrupt, self._drops)

    async def _until(self, done: Callable[[], bool], timeout: float | None) -> bool:
        """Wait until ``done()``, checked again at each piece of news, or ``timeout``;
        return ``done()``."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while not done():
                    self._news.clear()
                    await self._news.wait()
        return done()

    async def _first_snapshot(self, seen: _Seen, wait: float) -> None:
        """Wait for the join's snapshot. If it was lost, or a gap or a drop came
        after it, the repairs take over, and ``wait`` more is given to them."""
        await self._until(partial(self._answered_since, seen), wait)
        # A snapshot that does not decode fails the join: asking again would bring the same.
        if not (self.store.needs_resync and self._unreadable_since(seen)):
            self._active = True  # from here on, gaps and drops are repaired
            self._repair_soon()  # if the snapshot was lost, or a gap or a drop followed it
            await self._until(lambda: not self.store.needs_resync or self._stuck
                              or self._unreadable_since(seen), wait)
        if not self.store.needs_resync:
            return
        error: ClientError
        if self._unreadable_since(seen):
            error = self._unreadable()
        elif self._stuck and self.last_error is not None:
            error = self.last_error
        else:
            error = CallTimeout(f"room {self.name}: no state snapshot within {2 * wait:g}s",
                                sent=True)
        with contextlib.suppress(ClientError):
            await self.leave(timeout=wait)
        raise error

    def _repair_soon(self) -> None:
        if (self._active and not self._stuck and self.store.needs_resync
                and (self._repair is None or self._repair.done())):
            self._repair = asyncio.get_running_loop().create_task(
                self._repairs(), name=f"state repairs {self.name}")
            self._repair.add_done_callback(_log_failure)

    async def _repairs(self) -> None:
        """Join again or ask for a snapshot until the store holds one; one call at a time."""
        attempt = unreadable = timeouts = 0  # timeouts in a row: each doubles the patience
        while (self._active and self.store.needs_resync
               and self.client.state is ClientState.CONNECTED):
            seen = self._seen()
            try:
                if self._membership is _Membership.HELD:
                    self.resync_calls += 1
                    await self.client.call("state.resync", {"room": self.name},
                                           timeout=self._patience(timeouts))
                else:
                    await self._join_again(self.client.call)
            except TimeoutError:
                timeouts += 1  # the reply was lost, or is slower than the patience
                continue
            except ClientError as exc:
                if self._dropped_since(seen):
                    continue  # the answer of a connection since lost: its rooms are gone
                if not exc.retryable:
                    self._give_up(exc)
                    return
                if isinstance(exc, ServerError):
                    attempt += 1  # wait, unless the connection drops: then rejoin at once
                    await self._until(partial(self._dropped_since, seen),
                                      max(_RETRY.delay(attempt), exc.retry_after))
                continue  # a dropped connection ends the loop; the reconnect starts it again
            # The snapshot may have come before the reply, and a gap after it; a drop
            # ends the membership: either way, go round at once.
            if not await self._until(partial(self._answered_since, seen),
                                     self._patience(timeouts)):
                timeouts += 1
            elif self.store.stats.snapshots != seen.snapshots:
                unreadable = timeouts = 0
            elif self._unreadable_since(seen):
                unreadable += 1
                if unreadable == _UNREADABLE_LIMIT:
                    self._give_up(self._unreadable())
                    return

    def _patience(self, timeouts: int) -> float:
        """How long a resync's reply, then its snapshot, may take before it is asked for
        again: the connection's retransmission timeout, from its pings (a lost message
        on a lossy link then costs about a round trip, not a call timeout), doubled for
        each of the last ``timeouts`` in a row (RFC 6298 §5.5: a reply slower than the
        estimate is then still waited for, not asked for again and again), at most the
        call timeout, which is also the wait before the first ping."""
        rto = self.client.netstats().retransmission_timeout()
        call_timeout = self.client.call_timeout
        if rto is None:
            return call_timeout
        return min(rto * float(2 ** min(timeouts, _DOUBLINGS)), call_timeout)

    async def _join_again(self, call: Callable[..., Awaitable[Any]]) -> None:
        self.rejoins += 1
        self._membership = _Membership.REJOINING
        outcome = _Membership.UNSURE
        try:
            self.joined = await call("room.join", self._join_params())
            outcome = _Membership.HELD
        finally:
            if self._membership is _Membership.REJOINING:  # else its connection dropped
                self._membership = outcome
            self._news.set()  # leave() waits for this answer

    def _answered_since(self, seen: _Seen) -> bool:
        return self._seen() != seen

    def _dropped_since(self, seen: _Seen) -> bool:
        return self._drops != seen.drops

    def _unreadable_since(self, seen: _Seen) -> bool:
        # While a snapshot is awaited patches are dropped unread: what did not decode was one.
        return self.store.stats.corrupt != seen.corrupt

    def _unreadable(self) -> SnapshotUnreadable:
        return SnapshotUnreadable(
            f"room {self.name}: its state snapshot does not decode as "
            f"{self.store.schema.__name__} ({self.store.resync_reason}); "
            "is that the room's schema?")

    def _give_up(self, error: ClientError) -> None:
        self.last_error = error
        self._stuck = True
        self._news.set()
        logger.warning("room %s: cannot get a state snapshot (%s); will retry after a "
                       "reconnect", self.name, error)

    def _stop(self, routes: StateRoutes) -> None:
        self._active = False
        routes.discard(self)
        if self._repair is not None:
            self._repair.cancel()


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("state repairs failed", exc_info=task.exception())
