"""Stateful rooms over the real gateway, both transports (issue 11, "Done when"): clients
agree with the server at every version, a late joiner starts from a snapshot, a client
behind a 30 %-lossy link converges, and a client that stops reading costs one patch of
queue, not one per tick."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable
from typing import Any, ClassVar

import pytest
from websockets.asyncio.client import connect

from rtctl.client import Client, StateStore, SyncedRoom
from rtctl.gateway.server import Gateway
from rtctl.protocol import jsonrpc
from rtctl.protocol.frames import parse_state_frame
from rtctl.protocol.upgrade import BINARY_SUBPROTOCOL
from rtctl.services import builtin_services
from rtctl.services.drift import Arena, DriftRoom
from rtctl.state import Decoder
from tests.conftest import TIMING, GatewayFactory, make_token
from tests.simulator.test_proxy import ProxyFactory, start_proxy  # noqa: F401


class Steerable(DriftRoom):
    """A drift room the test can pause, that remembers its state at every version."""

    rooms: ClassVar[list[Steerable]] = []
    ticked: ClassVar[asyncio.Event]  # set at every tick: what the test waits on

    def on_create(self) -> None:
        super().on_create()
        self.paused = False
        self.ticks = 0
        self.seen: dict[int, dict[str, Any]] = {}
        Steerable.rooms.append(self)

    def on_tick(self, dt: float) -> None:
        self.seen[self.version] = self.state.to_dict()  # what was committed at that version
        self.ticks += 1
        Steerable.ticked.set()
        if not self.paused:
            super().on_tick(dt)


class Recording(StateStore[Arena]):
    """A store that keeps the state it held at each version it reached."""

    def __init__(self) -> None:
        super().__init__(Arena)
        self.seen: dict[int, dict[str, Any]] = {}

    def apply(self, message: Any) -> Any:
        outcome = super().apply(message)
        if self.version is not None:
            self.seen[self.version] = self.state.to_dict()
        return outcome


async def until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Wait until ``condition()`` holds, checking it at every tick of the room."""
    async def ticks() -> None:
        while not condition():
            Steerable.ticked.clear()
            await Steerable.ticked.wait()
    try:
        await asyncio.wait_for(ticks(), timeout * TIMING)
    except TimeoutError:
        raise AssertionError(f"timed out waiting until {what}") from None


@pytest.fixture
async def gateway(start_gateway: GatewayFactory) -> Gateway:
    Steerable.rooms.clear()
    Steerable.ticked = asyncio.Event()
    gw: Gateway = await start_gateway(services=builtin_services(room_types={"drift": Steerable}))
    return gw


async def joined(url: str, user: str, store: StateStore[Arena], *, binary: bool = True,
                 options: dict[str, Any] | None = None) -> tuple[Client, SyncedRoom[Arena]]:
    client = Client(url, token=make_token(user), binary=binary)
    await client.connect()
    room = await SyncedRoom.join(client, "drift:1", store, options=options)
    return client, room


async def settle(room: Steerable, *stores: StateStore[Arena]) -> None:
    """Stop the room's changes and wait until every store holds its last version."""
    room.paused = True
    ticks = room.ticks
    await until(lambda: room.ticks > ticks + 1, "the paused room ticked")  # nothing in flight
    await until(lambda: all(s.version == room.version for s in stores),
                f"every store reached version {room.version}")


OPTIONS = {"entities": 40, "movers": 8, "tick_rate": 50, "seed": 5}


async def test_binary_and_json_clients_hold_the_servers_state_at_every_version(
    gateway: Gateway,
) -> None:
    binary, json_ = Recording(), Recording()
    c1, _ = await joined(gateway.url, "alice", binary, options=OPTIONS)
    c2, _ = await joined(gateway.url, "bob", json_, binary=False)
    try:
        assert c1.subprotocol == BINARY_SUBPROTOCOL
        room = Steerable.rooms[0]
        await until(lambda: room.ticks >= 30, "30 ticks")
        await settle(room, binary, json_)
        common = set(binary.seen) & set(json_.seen) & set(room.seen)
        assert len(common) >= 25
        for version in sorted(common):
            assert binary.seen[version] == json_.seen[version] == room.seen[version], version
        assert binary.state.to_dict() == room.state.to_dict()
        assert binary.stats.gaps == json_.stats.gaps == 0
    finally:
        await c1.close()
        await c2.close()


async def test_a_late_joiner_starts_from_a_snapshot_and_follows(gateway: Gateway) -> None:
    early, late = Recording(), Recording()
    c1, _ = await joined(gateway.url, "alice", early, options=OPTIONS)
    room = Steerable.rooms[0]
    await until(lambda: room.version >= 20, "version 20")
    c2, _ = await joined(gateway.url, "carol", late)
    try:
        first = min(late.seen)
        assert first >= 20
        assert late.stats.snapshots == 1
        assert late.seen[first] == early.seen[first]
        await until(lambda: len(late.seen) >= 10, "ten more versions")
        await settle(room, early, late)
        assert late.state.to_dict() == early.state.to_dict() == room.state.to_dict()
        assert late.stats.gaps == 0
    finally:
        await c1.close()
        await c2.close()


async def test_a_client_behind_a_lossy_link_converges(
    gateway: Gateway, start_proxy: ProxyFactory,  # noqa: F811
) -> None:
    proxy = await start_proxy(gateway.url.removesuffix("/ws"), seed=11, down_loss="30%")
    lossless, lossy = Recording(), Recording()
    c1, _ = await joined(gateway.url, "alice", lossless, options=OPTIONS)
    c2 = Client(proxy.url + "/ws", token=make_token("dave"), call_timeout=1.0)
    await c2.connect()
    try:
        for _ in range(20):  # the join's reply or snapshot may be lost: try again
            try:
                await SyncedRoom.join(c2, "drift:1", lossy, timeout=1.0)
                break
            except Exception:  # a lost reply or snapshot: expected on this link
                continue
        room = Steerable.rooms[0]
        await until(lambda: lossy.stats.gaps >= 3 and lossy.stats.resyncs >= 1,
                    "the lossy client saw gaps and was resynced")
        await settle(room, lossless, lossy)
        assert lossy.state.to_dict() == lossless.state.to_dict() == room.state.to_dict()
    finally:
        await c1.close()
        await c2.close()


def shrink_server_send_buffer(client: socket.socket) -> None:
    """Give the gateway's end of ``client``'s connection a small send buffer, as a slow
    path would (loopback would otherwise let the kernel absorb megabytes first). The
    gateway runs in this process: its socket is one of our descriptors."""
    for fd in os.listdir("/proc/self/fd"):
        try:
            server_side = socket.socket(fileno=os.dup(int(fd)))
        except OSError:
            continue
        with server_side:
            try:
                if server_side.getpeername() == client.getsockname():
                    server_side.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
                    return
            except OSError:
                continue
    raise AssertionError("the gateway's end of the connection was not found")


def backlog_of(gateway: Gateway, user: str) -> int:
    """Bytes the gateway holds for ``user``'s one connection (0 before it registered)."""
    return sum(conn.backlog() for conn in gateway.registry.by_user(user))


async def test_a_client_that_stops_reading_costs_one_patch_not_one_per_tick(
    gateway: Gateway,
) -> None:
    heavy = {"entities": 600, "movers": 600, "tick_rate": 20, "seed": 3}
    watcher = Recording()
    c1, _ = await joined(gateway.url, "alice", watcher, options=heavy)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills after a few patches
    sock.connect(("127.0.0.1", gateway.port))
    async with connect(gateway.url, sock=sock, max_queue=1, compression=None,
                       subprotocols=[BINARY_SUBPROTOCOL],  # type: ignore[list-item]
                       additional_headers={"Authorization": f"Bearer {make_token('slow')}"}
                       ) as ws:
        shrink_server_send_buffer(sock)
        await ws.send(jsonrpc.dumps(jsonrpc.encode_request("room.join", {"room": "drift:1"}, 1)),
                      text=True)
        room = Steerable.rooms[0]
        await until(lambda: backlog_of(gateway, "slow") > 0, "the slow socket is full")
        ticks = room.ticks
        await until(lambda: room.ticks >= ticks + 30, "30 more ticks")
        patch = max(watcher.stats.last_patch_bytes, 1)
        # without coalescing 30 patches would wait here; with it, at most the one in flight
        assert backlog_of(gateway, "slow") < 3 * patch + 4096
        decoder = Decoder(Arena)

        async def read_until(done: Callable[[], bool]) -> None:
            while not done():
                message = await asyncio.wait_for(ws.recv(), 10 * TIMING)
                if isinstance(message, bytes):
                    decoder.apply(parse_state_frame(message)[1])

        await read_until(lambda: decoder.version is not None)
        room.paused = True
        paused_at = room.ticks
        await until(lambda: room.ticks > paused_at + 1, "the paused room ticked")
        await read_until(lambda: decoder.version == room.version)
        assert decoder.state.to_dict() == room.state.to_dict()
    await c1.close()


