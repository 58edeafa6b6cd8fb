"""A player in the arena over a live :class:`~rtctl.client.Client`: the frame loop.

::

    player = ArenaPlayer(client, "alice", brain=Brain(seed=1))   # or steer it yourself
    await player.join()                     # the arena's snapshot is in; frames run
    player.scene                            # what to draw (rtctl.demo.view.Scene)
    player.metrics()                        # RTT, loss, corrections, buffer depth ...
    await player.leave()

Every frame (:data:`~rtctl.demo.game.TICK_RATE` per second, on a schedule
that does not drift) it takes the frame's input (the brain's decision, or
:attr:`ArenaPlayer.steer`), applies it at once, renders the scene and sends
``state.input`` as a notification carrying the last unacknowledged inputs.
Each authoritative state the room's :class:`~rtctl.client.SyncedRoom` applies
reaches the :class:`~rtctl.demo.view.PlayerView` as it arrives. While the
connection is down the player does not move and no input is numbered: they
could not be sent, and the room is joined again with a fresh player on the
server, which the view predicts afresh (:meth:`~rtctl.demo.view.PlayerView.lost`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from rtctl.client import Client, ClientError, ClientState, StateChanged, StateStore, SyncedRoom
from rtctl.client.netcode import NetcodeSnapshot
from rtctl.demo.bots import Brain
from rtctl.demo.game import TICK_RATE, ArenaState, Input
from rtctl.demo.view import PlayerView, Scene, Seen
from rtctl.state import Change

__all__ = ["ROOM", "ArenaPlayer"]

ROOM = "arena:1"


class ArenaPlayer:
    """User ``name``'s player in ``room``, played by ``brain`` or by :attr:`steer`."""

    def __init__(self, client: Client, name: str, *, room: str = ROOM,
                 brain: Brain | None = None, options: dict[str, Any] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.client = client
        self.name = name
        self.room_name = room
        self.brain = brain
        self.steer = Input()  # the input of every frame when there is no brain
        self.view = PlayerView(name)
        self.scene: Scene | None = None
        self.on_frame: list[Callable[[Scene], object]] = []
        self.on_snapshot: list[Callable[[Seen], object]] = []
        self.room: SyncedRoom[ArenaState] | None = None
        self._options = options
        self._clock, self._wall = clock, wall
        self._store: StateStore[ArenaState] = StateStore(ArenaState)
        self._store.on_change("tick", self._ticked)  # once per applied version
        self._frames: asyncio.Task[None] | None = None
        client.on_state_change(self._state_changed)

    async def join(self, *, timeout: float | None = None) -> None:
        """Join the arena and start the frames once its snapshot is in."""
        self.room = await SyncedRoom.join(self.client, self.room_name, self._store,
                                          options=self._options, timeout=timeout)
        self._frames = asyncio.get_running_loop().create_task(
            self._run(), name=f"arena frames {self.name}")

    async def leave(self) -> None:
        """Stop the frames and leave the room."""
        if self._frames is not None:
            self._frames.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._frames
        if self.room is not None:
            with contextlib.suppress(ClientError):
                await self.room.leave()

    def metrics(self) -> NetcodeSnapshot:
        """The netcode numbers now (the connection's RTT and bandwidth included)."""
        return self.view.metrics.read(self.client.netstats(),
                                      jitter=self.view.interpolator.jitter, now=self._clock())

    def _state_changed(self, event: StateChanged) -> None:
        if event.old is ClientState.CONNECTED:
            self.view.lost()

    def _ticked(self, change: Change) -> None:
        seen = self.view.snapshot(self._store.state, self._clock(), self._wall() * 1000,
                                  version=self._store.version)
        for callback in self.on_snapshot:
            callback(seen)

    async def _run(self) -> None:
        interval = 1 / TICK_RATE
        deadline = self._clock()
        while True:
            deadline += interval
            await asyncio.sleep(max(0.0, deadline - self._clock()))
            now = self._clock()
            deadline = max(deadline, now - interval)  # late: go on from now, skip none
            await self.frame(now)

    async def frame(self, now: float) -> Scene:
        """One frame: decide, predict, render, send (the loop calls it on schedule)."""
        view, scene = self.view, self.scene
        if self.brain is not None and scene is not None:
            own, others = scene.visible(predict=view.predict, interpolate=view.interpolate)
            command = self.brain.decide(own, others)
        else:
            command = self.steer
        connected = self.client.state is ClientState.CONNECTED
        inputs = view.command(command, now) if connected else []  # none to number and lose
        self.scene = scene = view.render(now)
        for callback in self.on_frame:
            callback(scene)
        if inputs:
            with contextlib.suppress(ClientError):  # lost on the way: the next frame resends
                await self.client.notify("state.input", {"room": self.room_name,
                                                         "data": {"inputs": inputs}})
        return scene
