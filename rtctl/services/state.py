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

A member whose outbound queue still holds bytes when a patch is due is
*behind*: it is sent nothing that tick, and once its queue has drained it gets
one delta from the last version it was sent (``Encoder.since``), or the full
state if that is beyond the encoder's history. A slow reader's queue therefore
holds at most about one patch, however many ticks it misses.

A joining member, and one that calls ``state.resync`` (its client saw a gap),
gets the full state of the current version. Every ``snapshot_every`` versions
the room keeps a full snapshot.

Methods (besides ``room.*``): ``state.resync {room}``, ``state.input {room,
data}``, ``state.update {room, path, value, expect_version?, clock?}``,
``state.schema {room}`` and ``state.info {room}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rtctl.exceptions import InvalidParams, RpcError
from rtctl.host import Host
from rtctl.protocol import jsonrpc
from rtctl.protocol.codes import ErrorCode
from rtctl.protocol.frames import state_frame
from rtctl.protocol.upgrade import takes_binary
from rtctl.router import CallContext, Peer, Router
from rtctl.services.state_room import Policy, StateRoom, resolve
from rtctl.state import Encoder, HistoryLost
from rtctl.state.hlc import Stamp
from rtctl.state.reflect import describe

__all__ = ["MAX_CLOCK_AHEAD_MS", "ROOM_TYPE_NAME", "LiveRoom", "RoomTypes", "StateService"]

logger = logging.getLogger("rtctl.services.state")

RoomTypes = Mapping[str, type[StateRoom[Any]]]
ROOM_TYPE_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")
MAX_CLOCK_AHEAD_MS = 60_000  # an LWW stamp further ahead of this node's clock is refused


@dataclass(slots=True, eq=False)
class _Member:
    peer: Peer
    binary: bool
    sent: int  # the version this member's copy is at, once what was pushed is read


class LiveRoom:
    """One stateful room on this node: the game's instance, its encoder and its members."""

    def __init__(self, instance: StateRoom[Any]) -> None:
        self.instance = instance
        self.encoder = Encoder(instance.state)
        self.members: dict[str, _Member] = {}
        self.snapshot: tuple[int, bytes] | None = None  # the last kept (version, full state)
        self.ticks = 0
        self.patches = 0  # deltas committed and sent
        self.patch_bytes = 0  # their binary size, summed
        self.encode_ns = 0  # time spent committing and encoding them
        self.coalesced = 0  # patches not sent to a member that was behind
        self.catch_ups = 0  # single deltas sent to members that had fallen behind
        self.fulls = 0  # full states sent (joins, resyncs, members beyond the history)
        self._full: tuple[int, bytes] | None = None  # the full state of the current version
        self._task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.instance.name

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(),
                                                            name=f"state-room {self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        """Tick at the room type's rate; a late tick is run at once, missed ones are not."""
        loop = asyncio.get_running_loop()
        interval = 1.0 / self.instance.tick_rate
        last = deadline = loop.time()
        while True:
            deadline += interval
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            now = loop.time()
            deadline = max(deadline, now - interval)
            try:
                self.instance.on_tick(now - last)
            except Exception:
                logger.exception("room %s: on_tick failed; the room ticks on", self.name)
            last = now
            self.ticks += 1
            self.flush()

    def full(self) -> bytes:
        """The full state at the committed version (one encoding per version, shared)."""
        if self._full is None or self._full[0] != self.encoder.version:
            self._full = (self.encoder.version, self.encoder.full())
        return self._full[1]

    def flush(self) -> None:
        """Commit what changed as a version, send it to members, catch up those behind."""
        base = self.encoder.version
        started = time.perf_counter_ns()
        delta = self.encoder.delta()
        if delta:
            self.encode_ns += time.perf_counter_ns() - started
            self.patches += 1
            self.patch_bytes += len(delta)
        version = self.instance.version = self.encoder.version
        frame = note = None
        for member in self.members.values():
            if member.peer.backlog():
                self.coalesced += member.sent == base and bool(delta)
                continue  # behind: one delta once its queue has drained
            if member.sent == base and delta:
                if member.binary:
                    frame = frame or state_frame(self.name, delta)
                    member.peer.push_binary(frame)
                else:
                    note = note or jsonrpc.dumps(jsonrpc.encode_notification(
                        "state.patch", {"room": self.name,
                                        "message": self.encoder.since_object(base)}))
                    member.peer.push(note)
            elif member.sent != version:
                self.catch_up(member)
                continue
            member.sent = version
        kept = self.snapshot[0] if self.snapshot is not None else 0
        if version - kept >= self.instance.snapshot_every:
            self.snapshot = (version, self.full())

    def catch_up(self, member: _Member) -> None:
        """Send ``member`` what it lacks: a delta from its version, or the full state."""
        enc = self.encoder
        self.catch_ups += 1
        if member.binary:
            try:
                message = enc.since(member.sent)
            except HistoryLost:
                message = self.full()
            member.peer.push_binary(state_frame(self.name, message))
        else:
            try:
                body = enc.since_object(member.sent)
            except HistoryLost:
                body = enc.full_object()
            member.peer.notify("state.patch", {"room": self.name, "message": body})
        member.sent = enc.version

    def send_full(self, member: _Member) -> None:
        """Send ``member`` the whole committed state (callers flush first)."""
        self.fulls += 1
        if member.binary:
            member.peer.push_binary(state_frame(self.name, self.full()))
        else:
            member.peer.notify("state.patch", {"room": self.name,
                                               "message": self.encoder.full_object()})
        member.sent = self.encoder.version


class StateService:
    """The stateful rooms of one gateway node, and the ``state.*`` methods."""

    def __init__(self, host: Host, types: RoomTypes) -> None:
        self.check(types)
        self._types = dict(types)
        self._host = host
        self._rooms: dict[str, LiveRoom] = {}
        host.on_shutdown(self._close)
        self.router = Router()
        self.router.add_method(self.resync, name="state.resync")
        self.router.add_method(self.input, name="state.input")
        self.router.add_method(self.update, name="state.update")
        self.router.add_method(self.schema, name="state.schema")
        self.router.add_method(self.info, name="state.info")

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
        for live in list(self._rooms.values()):
            await live.stop()
        self._rooms.clear()

    # -- membership (called by RoomService) ------------------------------------

    def joined(self, room: str, peer: Peer, options: Mapping[str, Any] | None) -> dict[str, Any]:
        """``peer`` joined ``room``: create it if new, run on_join, send the full state."""
        live = self._rooms.get(room)
        created = live is None
        if live is None:
            live = LiveRoom(self._types[room.partition(":")[0]](room, options or {}))
            live.instance.on_create()
        member = live.members.get(peer.id)
        if member is None:
            live.instance.on_join(peer.user)  # may refuse: then a new room is not kept
            if created:
                self._rooms[room] = live
                live.start()
        live.flush()  # the join's own changes reach those already in as a delta
        if member is None:
            member = live.members[peer.id] = _Member(peer, takes_binary(peer.subprotocol),
                                                     live.encoder.version)
        live.send_full(member)
        return {"version": live.encoder.version, "encoding": "binary" if member.binary else "json"}

    async def left(self, room: str, connection_id: str) -> None:
        live = self._rooms.get(room)
        if live is None or (member := live.members.pop(connection_id, None)) is None:
            return
        try:
            live.instance.on_leave(member.peer.user)
        except Exception:
            logger.exception("room %s: on_leave failed", room)
        if not live.members:
            del self._rooms[room]
            await live.stop()

    # -- methods -----------------------------------------------------------------

    def _member(self, ctx: CallContext, room: str) -> tuple[LiveRoom, _Member]:
        live = self._rooms.get(room)
        member = live.members.get(ctx.connection_id) if live is not None else None
        if live is None or member is None:
            if not self.handles(room):
                raise InvalidParams(f"Invalid params: {room!r} is not a stateful room",
                                    {"room": room})
            raise RpcError(ErrorCode.FORBIDDEN, f"Not in room {room!r}: join it first",
                           {"room": room})
        return live, member

    def schema(self, room: str) -> dict[str, Any]:
        """``state.schema {room}`` → the room type's schema as data
        (:mod:`rtctl.state.reflect`): a client without the game's code decodes with it."""
        kind = self._types.get(room.partition(":")[0])
        if kind is None:
            raise InvalidParams(f"Invalid params: {room!r} is not a stateful room",
                                {"room": room})
        return describe(kind.schema)

    def info(self, ctx: CallContext, room: str) -> dict[str, Any]:
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

    def resync(self, ctx: CallContext, room: str) -> dict[str, Any]:
        """``state.resync {room}`` → ``{version}``; the full state follows as a state frame."""
        live, member = self._member(ctx, room)
        live.flush()
        live.send_full(member)
        return {"version": live.encoder.version}

    def input(self, ctx: CallContext, room: str, data: Any = None) -> Any:
        """``state.input {room, data}``: the room's ``on_input(user, data)``."""
        live, _ = self._member(ctx, room)
        return live.instance.on_input(ctx.user, data)

    def update(self, ctx: CallContext, room: str, path: str | list[str], value: Any,
               expect_version: int | None = None, clock: Any = None) -> dict[str, Any]:
        """``state.update {room, path, value, expect_version?, clock?}`` → ``{applied,
        version, value}``: a client's write to a field the room type allows."""
        live, _ = self._member(ctx, room)
        segments = tuple(path.split(".") if isinstance(path, str) else map(str, path))
        policy = live.instance.policy(segments)
        dotted = ".".join(segments)
        if policy is Policy.SERVER:
            raise RpcError(ErrorCode.FORBIDDEN, f"field {dotted} is server-only",
                           {"field": dotted})
        live.flush()  # versions below are those of committed state
        target = resolve(live.instance.state, segments)
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
        held = live.instance.clocks.get(segments)
        if held is not None and stamp <= held:
            return {"applied": False, "version": target.version, "value": target.value,
                    "clock": held.to_json()}
        target.set(value)
        live.instance.clocks[segments] = stamp
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
