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
binary state frames on ``rtctl.v1.binary`` (:mod:`rtctl.protocol.frames`) or
``state.patch {room, message}`` notifications on ``rtctl.v1``; frames of other
types are reserved and ignored (docs/state-sync.md).

When the store needs a snapshot (:mod:`rtctl.client.state`: a gap, a corrupt
message) the room asks for one with ``state.resync {room}``, one request at a
time, again if the reply or the snapshot is lost on the way, after a backoff
if the gateway answers a retryable error. A connection that drops ends the
room memberships it carried, so after the client reconnects the room is joined
again, and that join's snapshot replaces the state. An error that retrying
cannot cure stops the repairs until the next reconnect; it is logged and kept
in :attr:`SyncedRoom.last_error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from typing import Any, ClassVar, Generic

from rtctl.client.backoff import Backoff
from rtctl.client.calls import NotificationReceived
from rtctl.client.connection import Client
from rtctl.client.errors import CallTimeout, ClientError, ServerError
from rtctl.client.state import S, StateStore
from rtctl.client.states import ClientState, StateChanged
from rtctl.protocol.frames import STATE_FRAME, parse_state_frame

__all__ = ["SyncedRoom"]

logger = logging.getLogger("rtctl.client")

_RETRY = Backoff()  # its nominal delays pace resyncs the gateway asks to retry later


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
        self._synced = asyncio.Event()  # set while the store holds the room's current state
        self._rejoin = False  # the connection that carried the membership dropped
        self._drops = 0  # connections lost while this room was synced
        self._stuck = False  # a repair failed for good: none until the next reconnect
        self._repair: asyncio.Task[None] | None = None

    @classmethod
    async def join(cls, client: Client, room: str, store: StateStore[S] | type[S], *,
                   options: dict[str, Any] | None = None,
                   timeout: float | None = None) -> SyncedRoom[S]:
        """Join ``room`` and return once its snapshot is in ``store`` (or a new
        store of that schema); ``options`` go to the room type's ``on_create``.

        Raises what ``client.call`` raises for ``room.join``, ValueError if this
        client already syncs ``room``, and :class:`CallTimeout` (after leaving
        again) if no snapshot comes within ``timeout`` twice over, once asked again.
        """
        if not isinstance(store, StateStore):
            store = StateStore(store)
        self = cls(client, room, store, options)
        routes = _Routes.of(client)
        routes.add(self)  # before the join is sent: its snapshot may come first
        store.expect_snapshot(f"joining {room}")
        try:
            self.joined = await client.call("room.join", self._join_params(), timeout=timeout)
            await self._first_snapshot(client.call_timeout if timeout is None else timeout)
        except BaseException:
            self._stop(routes)
            raise
        return self

    @property
    def state(self) -> S:
        return self.store.state

    async def synced(self, *, timeout: float | None = None) -> None:
        """Return once the store holds the room's current state (at once if it does)."""
        async with asyncio.timeout(timeout):
            await self._synced.wait()

    async def leave(self, *, timeout: float | None = None) -> None:
        """Stop keeping the state and leave the room (``room.leave``) unless the
        membership already ended with its connection."""
        self._stop(_Routes.of(self.client))
        if not self._rejoin:
            await self.client.call("room.leave", {"room": self.name}, timeout=timeout)

    # -- what the routes call ------------------------------------------------------

    def _feed(self, message: Any) -> None:
        self.store.apply(message)
        if not self.store.needs_resync:
            self._synced.set()
            return
        self._synced.clear()
        if not self._rejoin and not self._stuck:
            self._repair_soon()

    def _connection_lost(self) -> None:
        self._rejoin = True
        self._drops += 1
        self._synced.clear()
        self.store.expect_snapshot("connection lost")

    def _connected(self) -> None:
        self._stuck = False
        if self._rejoin:
            self._repair_soon()

    # -- repairs ---------------------------------------------------------------------

    def _join_params(self) -> dict[str, Any]:
        if self._options is None:
            return {"room": self.name}
        return {"room": self.name, "options": self._options}

    async def _first_snapshot(self, wait: float) -> None:
        for ask_again in (True, False):
            with contextlib.suppress(TimeoutError):
                return await self.synced(timeout=wait)
            if ask_again:
                self._repair_soon()  # the snapshot was lost on the way: ask for one
        with contextlib.suppress(ClientError):
            await self.client.call("room.leave", {"room": self.name}, timeout=wait)
        raise CallTimeout(f"room {self.name}: no state snapshot within {2 * wait:g}s",
                          sent=True)

    def _repair_soon(self) -> None:
        if self._repair is None or self._repair.done():
            self._repair = asyncio.get_running_loop().create_task(
                self._repairs(), name=f"state repairs {self.name}")
            self._repair.add_done_callback(_log_failure)

    async def _repairs(self) -> None:
        """Join again or ask for a snapshot until the store holds one; one call at a time."""
        attempt = 0
        while self.store.needs_resync and self.client.state is ClientState.CONNECTED:
            drops = self._drops
            try:
                if self._rejoin:
                    self.rejoins += 1
                    self.joined = await self.client.call("room.join", self._join_params())
                    self._rejoin = False
                else:
                    self.resync_calls += 1
                    await self.client.call("state.resync", {"room": self.name})
                await self.synced(timeout=self.client.call_timeout)  # the snapshot came first
            except TimeoutError:
                continue  # the reply or the snapshot was lost (CallTimeout included)
            except ClientError as exc:
                if self._drops != drops:
                    continue  # the answer of a connection since lost: its rooms are gone
                if not exc.retryable:
                    self._give_up(exc)
                    return
                if isinstance(exc, ServerError):
                    attempt += 1
                    await asyncio.sleep(_RETRY.delay(attempt))
                # a dropped connection ends the loop; the reconnect starts it again

    def _give_up(self, error: ClientError) -> None:
        self.last_error = error
        self._stuck = True
        logger.warning("room %s: cannot get a state snapshot (%s); will retry after a "
                       "reconnect", self.name, error)

    def _stop(self, routes: _Routes) -> None:
        routes.discard(self)
        if self._repair is not None:
            self._repair.cancel()


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("state repairs failed", exc_info=task.exception())


class _Routes:
    """A client's state messages to the rooms it syncs; one per client, made on first use."""

    # A client's routes hold its rooms, which hold the client: dropped when it closes.
    _by_client: ClassVar[weakref.WeakKeyDictionary[Client, _Routes]] = (
        weakref.WeakKeyDictionary())

    @classmethod
    def of(cls, client: Client) -> _Routes:
        routes = cls._by_client.get(client)
        if routes is None:
            routes = cls._by_client[client] = cls()
            client.on_binary(routes._binary)
            client.on_notification(routes._patch, "state.patch")
            client.on_state_change(routes._state_changed)
        return routes

    def __init__(self) -> None:
        self._rooms: dict[str, SyncedRoom[Any]] = {}

    def add(self, room: SyncedRoom[Any]) -> None:
        if room.name in self._rooms:
            raise ValueError(f"this client already syncs room {room.name!r}")
        self._rooms[room.name] = room

    def discard(self, room: SyncedRoom[Any]) -> None:
        if self._rooms.get(room.name) is room:
            del self._rooms[room.name]

    def _binary(self, data: bytes) -> None:
        if data[:1] != bytes((STATE_FRAME,)):
            return  # another frame type: reserved, ignored
        try:
            name, message = parse_state_frame(data)
        except ValueError as exc:  # whose room is unknown: its next patch shows the gap
            logger.warning("unreadable state frame dropped: %s", exc)
            return
        if (room := self._rooms.get(name)) is not None:
            room._feed(message)

    def _patch(self, event: NotificationReceived) -> None:
        params = event.params
        name = params.get("room") if isinstance(params, dict) else None
        if not isinstance(name, str):
            logger.warning("state.patch without a room dropped: %r", params)
        elif (room := self._rooms.get(name)) is not None:
            room._feed(params.get("message"))

    def _state_changed(self, event: StateChanged) -> None:
        if event.new is ClientState.CLOSED:
            for room in list(self._rooms.values()):
                room._stop(self)  # and the client, no longer held here, may be collected
            return
        if event.old is ClientState.CONNECTED:
            for room in self._rooms.values():
                room._connection_lost()
        if event.new is ClientState.CONNECTED:
            for room in self._rooms.values():
                room._connected()
