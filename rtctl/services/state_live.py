"""One stateful room on the node that owns it: its ticks, its patches, its members.

:class:`LiveRoom` runs the game's :class:`~rtctl.services.state_room.StateRoom`
at its tick rate and sends each committed version to the members (see
:mod:`rtctl.services.state` for the delivery rules); it keeps a full snapshot
every ``snapshot_every`` versions and hands it to ``keep`` (the service stores
it where another node can find it).

Patches and full states wait in the ``state`` lane of a member's outbox, ahead of
room events and chat; a member is *behind* while that lane holds anything, so a
flood of room messages queued for it delays none of its patches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rtctl.protocol import jsonrpc
from rtctl.protocol.frames import state_frame
from rtctl.protocol.lanes import Lane
from rtctl.router import Peer
from rtctl.services.state_room import StateRoom
from rtctl.state import Encoder, HistoryLost

__all__ = ["KeepSnapshot", "LiveRoom", "Member"]

logger = logging.getLogger("rtctl.services.state")

KeepSnapshot = Callable[[str, int, bytes], None]  # room, version, full state


@dataclass(slots=True, eq=False)
class Member:
    peer: Peer
    binary: bool
    sent: int  # the version this member's copy is at, once what was pushed is read


class LiveRoom:
    """One stateful room on this node: the game's instance, its encoder and its members."""

    def __init__(self, instance: StateRoom[Any], *, version: int = 0,
                 keep: KeepSnapshot | None = None) -> None:
        self.instance = instance
        self.encoder = Encoder(instance.state, version=version)
        self.instance.version = version
        self._keep = keep
        # The encoder's first message is a full state; made now, later ones are deltas.
        self._full = (version, self.encoder.full())
        self.members: dict[str, Member] = {}
        self.snapshot: tuple[int, bytes] | None = None  # the last kept (version, full state)
        self.ticks = 0
        self.patches = 0  # deltas committed and sent
        self.patch_bytes = 0  # their binary size, summed
        self.encode_ns = 0  # time spent committing and encoding them
        self.coalesced = 0  # patches not sent to a member that was behind
        self.catch_ups = 0  # single deltas sent to members that had fallen behind
        self.fulls = 0  # full states sent (joins, resyncs, members beyond the history)
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
            try:
                self.flush()
            except Exception:  # a bug, but one room must not stop ticking for it
                logger.exception("room %s: sending its tick failed; the room ticks on",
                                 self.name)

    def full(self) -> bytes:
        """The full state at the committed version (one encoding per version, shared)."""
        if self._full[0] != self.encoder.version:
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
            if member.peer.backlog(Lane.STATE):
                self.coalesced += bool(delta)
                continue  # behind: one delta once its queue has drained
            if member.sent == base and delta:
                if member.binary:
                    frame = frame or state_frame(self.name, delta)
                    member.peer.push_binary(frame, lane=Lane.STATE)
                else:
                    note = note or jsonrpc.dumps(jsonrpc.encode_notification(
                        "state.patch", {"room": self.name,
                                        "message": self.encoder.since_object(base)}))
                    member.peer.push(note, lane=Lane.STATE)
            elif member.sent != version:
                self.catch_up(member)
                continue
            member.sent = version
        kept = self.snapshot[0] if self.snapshot is not None else 0
        if version - kept >= self.instance.snapshot_every:
            self.snapshot = (version, self.full())
            if self._keep is not None:
                self._keep(self.name, *self.snapshot)

    def catch_up(self, member: Member) -> None:
        """Send ``member`` what it lacks: a delta from its version, or the full state."""
        enc = self.encoder
        self.catch_ups += 1
        if member.binary:
            try:
                message = enc.since(member.sent)
            except HistoryLost:
                message = self.full()
            member.peer.push_binary(state_frame(self.name, message), lane=Lane.STATE)
        else:
            try:
                body = enc.since_object(member.sent)
            except HistoryLost:
                body = enc.full_object()
            member.peer.notify("state.patch", {"room": self.name, "message": body},
                               lane=Lane.STATE)
        member.sent = enc.version

    def send_full(self, member: Member) -> None:
        """Send ``member`` the whole committed state (callers flush first)."""
        self.fulls += 1
        if member.binary:
            member.peer.push_binary(state_frame(self.name, self.full()), lane=Lane.STATE)
        else:
            member.peer.notify("state.patch", {"room": self.name,
                                               "message": self.encoder.full_object()},
                               lane=Lane.STATE)
        member.sent = self.encoder.version
