"""A stateful room the TUI watches: joined, decoded, its changes kept until drawn.

:meth:`WatchedRoom.join` decodes the room with the schema class the TUI has
for its type (:attr:`rtctl.tui.stack.Stack.schemas`, the room types this
process registered), or else with one built from the gateway's own
description (``state.schema {room}``, :func:`rtctl.state.reflect.build`), so
a room of a game whose code is not here shows all the same. A room that is not
stateful fails there, with the gateway's reason, before anything is joined.
Then :class:`~rtctl.client.SyncedRoom` joins it over the observer and keeps
its :class:`~rtctl.client.StateStore`.

Every change the store announces (a pattern at each depth of the schema: the
store reports changes at exact depths) is kept for the screen, which takes
them when it redraws (:meth:`WatchedRoom.take_changes`). After a whole
snapshot (a ``replace`` at the root) the rest of the batch is not kept: the
screen redraws everything from the state. The screen is told once a message
is applied, not at each of its changes: the store applies it inside the
connection's reader, which is no place to draw, and a message's changes are
drawn together.

:meth:`WatchedRoom.refresh` asks ``state.info {room}`` for the server's side
(tick rate, encode time per patch, coalesced patches, catch-ups) and measures
the patches applied per second since the previous answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

from rtctl.client import Client, StateStore, SyncedRoom
from rtctl.state import Change, Schema
from rtctl.state.nodes import FieldType, ListOf, MapOf, SchemaOf
from rtctl.state.reflect import build

__all__ = ["MIN_RATE_SPAN", "WatchedRoom"]

MIN_RATE_SPAN = 0.5  # seconds: a patch rate over less is mostly noise; wait for more


def _depth(kind: FieldType) -> int:
    """How many segments the deepest path below a value of type ``kind`` has."""
    if isinstance(kind, SchemaOf):
        return 1 + max(_depth(field.type) for field in kind.cls.fields())
    if isinstance(kind, MapOf | ListOf):
        return 1 + _depth(kind.item)
    return 0


class WatchedRoom:
    """One room's store, the server's figures for it, and the changes not drawn yet."""

    def __init__(self, synced: SyncedRoom[Any], changes: list[Change]) -> None:
        self.synced = synced
        self.info: dict[str, Any] | None = None  # the last state.info answer
        self.patch_rate: float | None = None  # patches applied per second, once measured
        self._changes = changes  # what the store's subscriptions (see join) keep
        self._counted = (time.monotonic(), synced.store.stats.patches)  # the rate counts from

    @classmethod
    async def join(cls, client: Client, room: str, schemas: Mapping[str, type[Schema]],
                   changed: Callable[[], object]) -> WatchedRoom:
        """Join ``room``; ``changed()`` is called soon after its state changed (once for
        all the changes of one message: they are kept before it runs).

        Raises what the client raises for ``state.schema`` and ``room.join`` (a
        room that is not stateful: the gateway's invalid-params error), and
        :class:`~rtctl.state.StateError` for a description it cannot build.
        """
        schema = schemas.get(room.partition(":")[0])  # type "drift": "drift", "drift:1"
        if schema is None:
            schema = build(await client.call("state.schema", {"room": room}))
        store = StateStore(schema)
        kept: list[Change] = []
        told = True  # changed() ran since the last change was kept

        def tell() -> None:
            nonlocal told
            told = True
            changed()

        def seen(change: Change) -> None:
            nonlocal told
            if not change.path:
                kept[:] = [change]  # a whole new state: drawn anew, what came before is moot
            elif not kept or kept[0].path:
                kept.append(change)  # (else: the snapshot's own details, drawn with it)
            if told:  # the first change of a message: tell once the store is done with it
                told = False
                asyncio.get_running_loop().call_soon(tell)

        for depth in range(_depth(SchemaOf(schema)) + 1):
            store.on_change(("*",) * depth, seen)
        return cls(await SyncedRoom.join(client, room, store), kept)

    @property
    def name(self) -> str:
        return self.synced.name

    @property
    def store(self) -> StateStore[Any]:
        return self.synced.store

    def take_changes(self) -> list[Change]:
        """The changes since the last call, in order (a snapshot: just its root ``replace``)."""
        taken = self._changes[:]
        self._changes.clear()
        return taken

    async def refresh(self) -> None:
        """Ask ``state.info``, and measure the patch rate since the last time it was measured."""
        info = await self.synced.client.call("state.info", {"room": self.name})
        now, patches = time.monotonic(), self.store.stats.patches
        since, counted = self._counted
        if now - since >= MIN_RATE_SPAN:
            self.patch_rate = (patches - counted) / (now - since)
            self._counted = (now, patches)
        self.info = info

    async def leave(self) -> None:
        await self.synced.leave()
