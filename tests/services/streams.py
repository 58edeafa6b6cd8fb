"""A bus that loses, reorders and repeats room messages on the test's word, a history store
whose reads wait for the test (or fail), and members that wake their waiters: the room
stream's hard cases, made on purpose instead of hoped for."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Hashable
from typing import Any, TypeVar

from rtctl.backends import memory_backends
from rtctl.backends.base import (
    Backends,
    BackendUnavailable,
    EventBus,
    HistoryLimits,
    MessageHandler,
    Replay,
    Subscription,
    Unrecoverable,
)
from rtctl.backends.memory import MemoryHistoryStore
from rtctl.protocol.lanes import Lane, Policy
from rtctl.protocol.streams import StreamPosition
from rtctl.services.room_delivery import RoomLimits
from rtctl.services.rooms import RoomService
from rtctl.services.sessions import SessionService
from tests.conftest import TIMING
from tests.services.fakes import FakeClock, FakeHost, FakePeer, ManualTimer
from tests.services.test_large_rooms import bus_settled

_T = TypeVar("_T")


class HeldBus:
    """Room messages wait here until :meth:`deliver` sends them, in any order, any number of
    times or never; everything else goes through at once. ``failing``: publishing a room
    message fails as an unreachable NATS would. ``gate`` (when set) holds the next
    subscription until it opens; ``subscriptions`` counts those not dropped."""

    def __init__(self, inner: EventBus) -> None:
        self.inner = inner
        self.held: dict[int, tuple[str, dict[str, Any]]] = {}  # offset → subject, message
        self.failing = False
        self.gate: asyncio.Event | None = None
        self.waiting = asyncio.Event()  # a subscription is held at the gate
        self.subscriptions = 0

    async def publish(self, subject: str, message: dict[str, Any]) -> None:
        if message.get("event") != "message":
            await self.inner.publish(subject, message)
        elif self.failing:
            raise BackendUnavailable("nats", "connection refused")
        else:
            self.held[message["offset"]] = (subject, message)

    async def subscribe(self, subject: str, handler: MessageHandler) -> Subscription:
        gate, self.gate = self.gate, None
        if gate is not None:
            self.waiting.set()
            await gate.wait()
        self.subscriptions += 1
        return _Counted(self, await self.inner.subscribe(subject, handler))

    async def deliver(self, *offsets: int) -> None:
        for offset in offsets:
            await self.inner.publish(*self.held[offset])


class _Counted:
    def __init__(self, bus: HeldBus, inner: Subscription) -> None:
        self._bus, self._inner = bus, inner

    async def unsubscribe(self) -> None:
        self._bus.subscriptions -= 1
        await self._inner.unsubscribe()


class ControlledHistory:
    """The memory history store; ``gate`` (when set) holds reads until it opens, the read
    done before the wait (``early``) or after it; ``failures`` reads fail first, raising
    ``error``; ``reads`` lists every ``since`` asked; :meth:`lose` drops everything, as a
    flushed Redis would (a new epoch)."""

    def __init__(self, limits: HistoryLimits, clock: FakeClock) -> None:
        self._clock = clock
        self.inner = MemoryHistoryStore(limits, clock=clock)
        self.limits = limits
        self.gate: asyncio.Event | None = None
        self.waiting = asyncio.Event()  # a read is held at the gate
        self.early = False
        self.failures = 0
        self.error: Exception = BackendUnavailable("redis", "timed out")
        self.reads: list[StreamPosition] = []  # what each ``since`` read asked for

    async def held(self) -> None:
        """Wait until a read is held at the gate."""
        await asyncio.wait_for(self.waiting.wait(), 5 * TIMING)

    def lose(self) -> None:
        self.inner = MemoryHistoryStore(self.limits, clock=self._clock)

    async def append(self, room: str, message: dict[str, Any], *, key: str | None = None
                     ) -> tuple[StreamPosition, bool]:
        return await self.inner.append(room, message, key=key)

    async def position(self, room: str) -> StreamPosition:
        if self.early:
            return await self._gated(await self.inner.position(room))
        await self._gated(None)
        return await self.inner.position(room)

    async def since(self, room: str, since: StreamPosition) -> Replay | Unrecoverable:
        self.reads.append(since)
        if self.failures:
            self.failures -= 1
            raise self.error
        if self.early:
            return await self._gated(await self.inner.since(room, since))
        await self._gated(None)
        return await self.inner.since(room, since)

    async def _gated(self, value: _T) -> _T:
        gate, self.gate = self.gate, None  # one read held at a time
        if gate is not None:
            self.waiting.set()
            await gate.wait()
        return value


class Member(FakePeer):
    """A peer whose pushes wake :meth:`until`."""

    def __init__(self, conn_id: str, user: str) -> None:
        super().__init__(conn_id, user)
        self.woken = asyncio.Event()

    def push(self, data: bytes, *, lane: Lane = Lane.EVENTS, policy: Policy | None = None,
             key: Hashable | None = None) -> None:
        super().push(data, lane=lane, policy=policy, key=key)
        self.woken.set()

    def messages(self) -> list[dict[str, Any]]:
        return [m["params"] for m in self.received if m["method"] == "room.message"]

    def offsets(self) -> list[int]:
        return [params["offset"] for params in self.messages()]

    async def until(self, count: int) -> list[int]:
        """The offsets received, once there are ``count`` of them."""
        async with asyncio.timeout(5 * TIMING):
            while len(self.offsets()) < count:
                self.woken.clear()
                await self.woken.wait()
        return self.offsets()


class Node:
    """One node's room service over a held bus and a controlled history, room ``r``."""

    def __init__(self, limits: HistoryLimits = HistoryLimits(), *,
                 room_limits: RoomLimits = RoomLimits(), backends: Backends | None = None,
                 node_id: str = "n1") -> None:
        self.clock = FakeClock()
        if backends is None:
            plain = memory_backends(clock=self.clock, node_id=node_id)
            backends = dataclasses.replace(plain, bus=HeldBus(plain.bus),
                                           history=ControlledHistory(limits, self.clock))
        self.backends = backends
        assert isinstance(backends.bus, HeldBus)
        assert isinstance(backends.history, ControlledHistory)
        self.bus, self.history = backends.bus, backends.history
        self.host = FakeHost(backends, clock=self.clock)
        self.timer = ManualTimer()
        self.sessions = SessionService(self.host)
        self.rooms = RoomService(self.host, self.sessions, limits=room_limits,
                                 timer=self.timer)

    async def join(self, peer: FakePeer, **params: Any) -> dict[str, Any]:
        return await self.rooms.join(peer.context(), "r", **params)

    async def publish(self, peer: FakePeer, data: Any = None, **tags: Any) -> dict[str, Any]:
        """``room.publish`` to ``r``; ``tags``: its ``lane``, ``policy``, ``key``."""
        return await self.rooms.publish(peer.context(), "r", data, **tags)

    async def settled(self) -> None:
        """Everything the bus carried so far has been handled here."""
        await bus_settled(self.backends, "r")
