"""A client's state messages to the stateful rooms it syncs, and their recovery hooks.

One :class:`StateRoutes` per :class:`~rtctl.client.Client`, made the first time
a :class:`~rtctl.client.SyncedRoom` joins over it. It reads the room's name
off each state message -- a binary state frame on ``rtctl.v1.binary``
(:mod:`rtctl.protocol.frames`; other frame types are reserved and ignored) or a
``state.patch {room, message}`` notification on ``rtctl.v1`` -- and feeds the
room's store. It also tells the rooms what happens to the connection: a drop
out of ``connected`` at once (their repairs stop waiting on it), and each new
link, before anything queued is sent (a reconnect step,
:mod:`rtctl.client.recovery`), so they join again on it.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Protocol

from rtctl.client.calls import NotificationReceived
from rtctl.client.connection import Client
from rtctl.client.recovery import Reconnection
from rtctl.client.states import ClientState, StateChanged
from rtctl.protocol.frames import STATE_FRAME, parse_state_frame

__all__ = ["RoutedRoom", "StateRoutes"]

logger = logging.getLogger("rtctl.client")


class RoutedRoom(Protocol):
    """A room as its client's routes see it: a :class:`~rtctl.client.SyncedRoom`, whose
    module imports this one. Its hooks are the package's, not the game's: underscored."""

    name: str

    def _feed(self, message: Any) -> None:
        """A state message of this room (a snapshot or a patch) for its store."""

    def _connection_lost(self) -> None:
        """The connection dropped out of ``connected``: the membership ended with it."""

    def _connected(self) -> None:
        """The client is ``connected`` again: repairs may go on."""

    async def _reconnected(self, call: Callable[..., Awaitable[Any]]) -> None:
        """A new link, before anything queued: join again with ``call``, straight on it."""

    def _stop(self, routes: StateRoutes) -> None:
        """Stop keeping the state (the client closed) and leave ``routes``."""


class StateRoutes:
    """A client's state messages to the rooms it syncs; one per client, made on first use."""

    # The client holds its routes through the callbacks they registered; the routes
    # hold the rooms, which hold the client: a cycle the collector frees with the
    # client, closed or not. This table only finds a client's routes: it holds neither.
    _by_client: ClassVar[weakref.WeakKeyDictionary[Client, weakref.ref[StateRoutes]]] = (
        weakref.WeakKeyDictionary())

    @classmethod
    def of(cls, client: Client) -> StateRoutes:
        found = cls._by_client.get(client)
        routes = None if found is None else found()
        if routes is None:
            routes = cls()
            cls._by_client[client] = weakref.ref(routes)
            client.on_binary(routes._binary)
            client.on_notification(routes._patch, "state.patch")
            client.on_state_change(routes._state_changed)
            client.add_reconnect_step(routes._rejoin)
        return routes

    def __init__(self) -> None:
        self._rooms: dict[str, RoutedRoom] = {}

    def add(self, room: RoutedRoom) -> None:
        if room.name in self._rooms:
            raise ValueError(f"this client already syncs room {room.name!r}")
        self._rooms[room.name] = room

    def discard(self, room: RoutedRoom) -> None:
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

    async def _rejoin(self, link: Reconnection) -> None:
        await asyncio.gather(*(room._reconnected(link.call) for room in self._rooms.values()),
                             return_exceptions=True)

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
