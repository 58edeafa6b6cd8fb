"""``state.*`` and the rooms whose state the server owns: ticks, patches, snapshots, writes.

A room whose name names a registered type (``arena`` or ``arena:7`` for type
``arena``, see :mod:`rtctl.services.state_room`) is *stateful*. ``room.join``
creates it on the node that handles the first join (see "Ownership" in
docs/state-sync.md), and each of its ticks:

1. runs the game's ``on_tick(dt)``;
2. commits what changed since the last tick as the next version, if anything
   did (:class:`~rtctl.state.Encoder`), and
3. sends the delta to every member: one binary state frame
   (:mod:`rtctl.protocol.frames`) encoded once for all members on
   ``rtctl.v1.binary``, one ``state.patch {room, message}`` notification
   (JSON, RFC 7396) for those on ``rtctl.v1``.

A member whose outbound queue still holds state (its ``state`` lane: room
events and chat queued behind do not count) when a patch is due is
*behind*: it is sent nothing that tick, and once that has drained it gets
one delta from the last version it was sent (``Encoder.since``), or the full
state if that is beyond the encoder's history. A slow reader's queue therefore
holds at most about one patch, however many ticks it misses.

A joining member, and one that calls ``state.resync`` (its client saw a gap),
gets the full state of the current version. Every ``snapshot_every`` versions,
and when its players are all disconnected, the room keeps a full snapshot in
the backends' snapshot store, where another node resumes it if this one dies.

Methods (besides ``room.*``): ``state.resync {room}``, ``state.input {room,
data}``, ``state.update {room, path, value, expect_version?, clock?}``,
``state.schema {room}`` and ``state.info {room}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
from collections.abc import Mapping
from typing import Any, cast

from rtctl.backends.base import BackendUnavailable
from rtctl.exceptions import InvalidParams, RpcError
from rtctl.host import Host
from rtctl.protocol.codes import ErrorCode
from rtctl.protocol.upgrade import takes_binary
from rtctl.router import CallContext, Peer, Router
from rtctl.services.state_live import LiveRoom, Member
from rtctl.services.state_room import Policy, StateRoom, resolve
from rtctl.services.state_wire import Resynced, SchemaDescription, StateInfo, StatePatch, Updated
from rtctl.state import Decoder, StateError
from rtctl.state.hlc import Stamp, StampParam
from rtctl.state.reflect import describe

__all__ = ["MAX_CLOCK_AHEAD_MS", "ROOM_TYPE_NAME", "RoomTypes", "StateService"]

logger = logging.getLogger("rtctl.services.state")

RoomTypes = Mapping[str, type[StateRoom[Any]]]
ROOM_TYPE_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")
MAX_CLOCK_AHEAD_MS = 60_000  # an LWW stamp further ahead of this node's clock is refused


class StateService:
    """The stateful rooms of one gateway node, and the ``state.*`` methods."""

    def __init__(self, host: Host, types: RoomTypes) -> None:
        self.check(types)
        self._types = dict(types)
        self._host = host
        self._rooms: dict[str, LiveRoom] = {}
        self._opening: dict[str, tuple[asyncio.Lock, int]] = {}  # lock, joins waiting on it
        self._keeping: dict[str, asyncio.Task[None]] = {}  # snapshot writes in flight
        self._unsaved: dict[str, tuple[int, bytes, float]] = {}  # the newest, waiting for it
        self._renewer: asyncio.Task[None] | None = None
        self._closing: dict[str, asyncio.Task[None]] = {}  # rooms ending: joins wait for it
        host.on_shutdown(self._close)
        self.router = Router()
        self.router.add_method(self.resync, name="state.resync", errors=[ErrorCode.FORBIDDEN])
        self.router.add_method(self.input, name="state.input",  # on_input may raise more
                               errors=[ErrorCode.FORBIDDEN, ErrorCode.METHOD_NOT_FOUND])
        self.router.add_method(self.update, name="state.update",
                               errors=[ErrorCode.FORBIDDEN, ErrorCode.CONFLICT])
        self.router.add_method(self.schema, name="state.schema")
        self.router.add_method(self.info, name="state.info", errors=[ErrorCode.FORBIDDEN])
        self.router.notification("state.patch", StatePatch, doc=(  # sent by LiveRoom
            "A stateful room's full state or delta for a member on `rtctl.v1` (the JSON "
            "twin of the binary state frame), in the state lane."))

    @staticmethod
    def check(types: RoomTypes) -> None:
        """Refuse a bad registration at start-up rather than at the first join."""
        for name, kind in types.items():
            if not ROOM_TYPE_NAME.fullmatch(name):
                raise ValueError(f"room type {name!r}: a name is 1 to 32 of A-Z a-z 0-9 _ -")
            if not (isinstance(kind, type) and issubclass(kind, StateRoom)):
                raise ValueError(f"room type {name!r}: {kind!r} is not a StateRoom subclass")
            if not isinstance(getattr(kind, "schema", None), type):
                raise ValueError(f"room type {name!r}: {kind.__name__} sets no schema")
            kind.schema.fields()
            if not kind.tick_rate > 0:
                raise ValueError(f"room type {name!r}: tick_rate must be above 0")
            for policy in kind.writable.values():
                Policy(policy)

    def handles(self, room: str) -> bool:
        """Whether ``room`` is of a registered type."""
        return room.partition(":")[0] in self._types

    def room(self, name: str) -> LiveRoom | None:
        return self._rooms.get(name)

    async def _close(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        # Connections close before shutdown hooks run, so rooms have ended (their final
        # snapshots kept) by now; this stops whatever a late join left running.
        for live in list(self._rooms.values()):
            await live.stop()
        self._rooms.clear()
        await asyncio.gather(*self._keeping.values(), *self._closing.values(),
                             return_exceptions=True)

    # -- ownership and snapshots -------------------------------------------------

    async def _open(self, room: str, options: Mapping[str, Any] | None) -> LiveRoom:
        """Claim ``room`` for this node and start it, from its kept snapshot if it has one
        (its last owner died): the room goes on from that version."""
        backends = self._host.backends
        node = backends.node_id
        owner = await backends.snapshots.own(room, node, ttl=backends.node_ttl)
        if owner != node:
            raise RpcError(ErrorCode.WRONG_NODE, f"Room {room!r} lives on gateway node "
                           f"{owner!r}: join it through that node", {"room": room, "node": owner})
        try:
            kept = await backends.snapshots.get(room)
            instance = self._types[room.partition(":")[0]](room, options or {})
            instance.on_create()
            version = 0 if kept is None else self._restore(instance, *kept)
        except BaseException:
            await backends.snapshots.release(room, node)
            raise
        if self._renewer is None:
            self._renewer = asyncio.get_running_loop().create_task(self._renew())
        return LiveRoom(instance, version=version,
                        keep=functools.partial(self._keep, ttl=instance.snapshot_ttl))

    @staticmethod
    def _restore(instance: StateRoom[Any], version: int, snapshot: bytes) -> int:
        decoder = Decoder(type(instance.state))  # on_create may have chosen a subclass
        try:
            decoder.apply(snapshot)
        except StateError as exc:
            logger.warning("room %s: its kept snapshot (version %d) is unreadable, so it "
                           "starts afresh: %s", instance.name, version, exc)
            return 0
        instance.state = decoder.state
        instance.on_restore()
        logger.info("room %s resumed here from its snapshot at version %d", instance.name,
                    version)
        return version

    def _keep(self, room: str, version: int, snapshot: bytes, *, ttl: float) -> None:
        """Store a snapshot where any node can find it: one write per room at a time, and
        while one is under way only the newest snapshot waits for the next."""
        self._unsaved[room] = (version, snapshot, ttl)
        if room not in self._keeping:
            self._keeping[room] = asyncio.get_running_loop().create_task(self._save(room))

    async def _save(self, room: str) -> None:
        snapshots = self._host.backends.snapshots
        try:
            while (unsaved := self._unsaved.pop(room, None)) is not None:
                version, snapshot, ttl = unsaved
                try:
                    await snapshots.put(room, version, snapshot, ttl=ttl)
                except BackendUnavailable as exc:
                    logger.warning("room %s: snapshot at version %d not kept: %s", room,
                                   version, exc.message)
        finally:
            del self._keeping[room]

    async def _renew(self) -> None:
        """Renew this node's claim on its rooms well within the node TTL."""
        backends = self._host.backends
        while True:
            await asyncio.sleep(backends.node_ttl / 3)
            for room in list(self._rooms):
                try:
                    owner = await backends.snapshots.own(room, backends.node_id,
                                                         ttl=backends.node_ttl)
                except BackendUnavailable as exc:
                    logger.warning("room %s: claim not renewed: %s", room, exc.message)
                    continue
                except Exception:  # the renewer must outlive any one failure
                    logger.exception("room %s: claim not renewed", room)
                    continue
                if owner != backends.node_id:
                    logger.error("room %s is claimed by node %s: this node was silent longer "
                                 "than the node TTL and both now run it; its members here "
                                 "should rejoin", room, owner)

    async def _end(self, live: LiveRoom, *, resumable: bool) -> None:
        """The last member is gone. If they left, the room ends: its next life starts
        afresh. If their connections ended (a network cut, this node draining), its final
        state is kept as its snapshot: players who come back within ``snapshot_ttl``,
        through any node, find the room where it was. A join meanwhile waits for this."""
        del self._rooms[live.name]
        closing = asyncio.get_running_loop().create_task(self._close_room(live, resumable))
        self._closing[live.name] = closing
        try:
            await closing
        finally:
            if self._closing.get(live.name) is closing:
                del self._closing[live.name]

    async def _close_room(self, live: LiveRoom, resumable: bool) -> None:
        await live.stop()
        if resumable:
            live.flush()
            self._keep(live.name, live.encoder.version, live.full(),
                       ttl=live.instance.snapshot_ttl)
            saving = self._keeping.get(live.name)
            if saving is not None:  # stored before the claim goes: no node resumes older
                await saving
        await self._release(live.name, forget=not resumable)

    async def _release(self, room: str, *, forget: bool) -> None:
        snapshots = self._host.backends.snapshots
        try:
            if forget:
                await snapshots.forget(room)
            await snapshots.release(room, self._host.backends.node_id)
        except BackendUnavailable as exc:
            logger.warning("room %s closed here, but its claim lingers until it lapses: %s",
                           room, exc.message)

    # -- membership (called by RoomService) ------------------------------------

    async def joined(self, room: str, peer: Peer,
                     options: Mapping[str, Any] | None) -> dict[str, Any]:
        """``peer`` joined ``room``: create it if new, run on_join, send the full state."""
        live = self._rooms.get(room)
        if live is not None:
            return self._enter(live, peer, created=False)
        lock, waiting = self._opening.get(room, (asyncio.Lock(), 0))
        self._opening[room] = (lock, waiting + 1)
        try:
            async with lock:  # joins racing to create the room: the first creates it
                live = self._rooms.get(room)
                if live is not None:
                    return self._enter(live, peer, created=False)
                closing = self._closing.get(room)
                if closing is not None:  # its last life is still storing its snapshot
                    with contextlib.suppress(Exception):  # that life's trouble, logged there
                        await asyncio.shield(closing)
                live = await self._open(room, options)
                try:
                    return self._enter(live, peer, created=True)
                except BaseException:  # refused: the room never was
                    await self._release(room, forget=False)
                    raise
        finally:
            lock, waiting = self._opening[room]
            if waiting == 1:
                del self._opening[room]
            else:
                self._opening[room] = (lock, waiting - 1)

    def _enter(self, live: LiveRoom, peer: Peer, *, created: bool) -> dict[str, Any]:
        member = live.members.get(peer.id)
        if member is None:
            live.instance.on_join(peer.user)  # may refuse: then a new room is not kept
            if created:
                self._rooms[live.name] = live
                live.start()
        live.flush()  # the join's own changes reach those already in as a delta
        if member is None:
            member = live.members[peer.id] = Member(peer, takes_binary(peer.subprotocol),
                                                    live.encoder.version)
        live.send_full(member)
        return {"version": live.encoder.version, "encoding": "binary" if member.binary else "json"}

    async def left(self, room: str, connection_id: str, *, leaving: bool) -> None:
        """``connection_id`` left ``room`` (``leaving``) or its connection ended."""
        live = self._rooms.get(room)
        if live is None or (member := live.members.pop(connection_id, None)) is None:
            return
        try:
            live.instance.on_leave(member.peer.user)
        except Exception:
            logger.exception("room %s: on_leave failed", room)
        if not live.members:
            await self._end(live, resumable=not leaving)

    # -- methods -----------------------------------------------------------------

    def _member(self, ctx: CallContext, room: str) -> tuple[LiveRoom, Member]:
        live = self._rooms.get(room)
        member = live.members.get(ctx.connection_id) if live is not None else None
        if live is None or member is None:
            if not self.handles(room):
                raise InvalidParams(f"Invalid params: {room!r} is not a stateful room",
                                    {"room": room})
            raise RpcError(ErrorCode.FORBIDDEN, f"Not in room {room!r}: join it first",
                           {"room": room})
        return live, member

    def schema(self, room: str) -> SchemaDescription:
        """``state.schema {room}`` → the room type's schema as data, its fields in wire
        order (``{root, types}``, §9.1; :mod:`rtctl.state.reflect`): a client without the
        game's code decodes with it."""
        kind = self._types.get(room.partition(":")[0])
        if kind is None:
            raise InvalidParams(f"Invalid params: {room!r} is not a stateful room",
                                {"room": room})
        live = self._rooms.get(room)  # an instance may pick its schema from its options
        return cast(SchemaDescription,
                    describe(type(live.instance.state) if live is not None else kind.schema))

    def info(self, ctx: CallContext, room: str) -> StateInfo:
        """``state.info {room}`` → what the room costs here: version, rate, bytes, CPU."""
        live, _ = self._member(ctx, room)
        patches = max(live.patches, 1)
        return {"room": room, "type": type(live.instance).__name__,
                "version": live.encoder.version, "tick_rate": live.instance.tick_rate,
                "ticks": live.ticks, "members": len(live.members), "patches": live.patches,
                "bytes_per_patch": live.patch_bytes / patches,
                "encode_us_per_patch": live.encode_ns / patches / 1000,
                "coalesced": live.coalesced, "catch_ups": live.catch_ups,
                "fulls": live.fulls,
                "snapshot_version": live.snapshot[0] if live.snapshot else None}

    def resync(self, ctx: CallContext, room: str) -> Resynced:
        """``state.resync {room}`` → ``{version}``; the full state follows as a state frame."""
        live, member = self._member(ctx, room)
        live.flush()
        live.send_full(member)
        return {"version": live.encoder.version}

    def input(self, ctx: CallContext, room: str, data: Any = None) -> Any:
        """``state.input {room, data}``: hands ``data`` and the caller's user to the room
        type's input handler (``on_input(user, data)``) and answers what it returns."""
        live, _ = self._member(ctx, room)
        return live.instance.on_input(ctx.user, data)

    def update(self, ctx: CallContext, room: str, path: str | list[str], value: Any,
               expect_version: int | None = None, clock: StampParam | None = None) -> Updated:
        """``state.update {room, path, value, expect_version?, clock?}`` → ``{applied,
        version, value}``: a client's write to a field the room type allows."""
        live, _ = self._member(ctx, room)
        segments = tuple(path.split(".") if isinstance(path, str) else map(str, path))
        target = resolve(live.instance.state, segments)
        policy = live.instance.policy(target.path)
        dotted = target.dotted
        if policy is Policy.SERVER:
            raise RpcError(ErrorCode.FORBIDDEN, f"field {dotted} is server-only",
                           {"field": dotted})
        live.flush()  # versions below are those of committed state
        if policy is Policy.CAS:
            if expect_version is None:
                raise InvalidParams(f"Invalid params: {dotted} is compare-and-set: give "
                                    "'expect_version', the version you read", {"path": dotted})
            if expect_version > live.encoder.version:
                raise InvalidParams(f"Invalid params: 'expect_version' {expect_version} is "
                                    f"ahead of the room's {live.encoder.version}",
                                    {"expect_version": expect_version})
            if target.version > expect_version:
                raise RpcError(ErrorCode.CONFLICT, f"{dotted} changed since version "
                               f"{expect_version}: read it again and retry",
                               {"path": dotted, "version": target.version,
                                "value": target.value})
            target.set(value)
            live.flush()
            return {"applied": True, "version": target.version, "value": target.value}
        stamp = self._stamp(clock)
        held = live.instance.clocks.get(target.path)
        if held is not None and stamp <= held:
            return {"applied": False, "version": target.version, "value": target.value,
                    "clock": held.to_json()}
        target.set(value)
        live.instance.clocks[target.path] = stamp
        live.flush()
        return {"applied": True, "version": target.version, "value": target.value,
                "clock": stamp.to_json()}

    def _stamp(self, clock: Any) -> Stamp:
        try:
            stamp = Stamp.from_json(clock)
        except ValueError as exc:
            raise InvalidParams(f"Invalid params: 'clock': {exc} (this field is "
                                "last-writer-wins)", {"clock": clock}) from None
        ahead = stamp.ms - int(self._host.clock() * 1000)
        if ahead > MAX_CLOCK_AHEAD_MS:  # it would win against every honest write for that long
            raise InvalidParams(f"Invalid params: 'clock' is {ahead} ms ahead of the server's",
                                {"clock": clock})
        return stamp
