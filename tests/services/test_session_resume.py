"""Resuming a session with its recovery token, on the same node or another.

Two in-process gateways share one bundle (memory) or one Redis and NATS. A
connection that drops without a close is held for the grace period: presence
stays online, and a client back in time (with ``?recover=TOKEN``) carries on
under the same session id, on either node, with nothing flapping. An older
connection of a resumed session still open (half-open) is closed with 4009.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import pytest
from websockets.exceptions import ConnectionClosed

from rtctl.backends import Backends, connect_backends, memory_backends
from rtctl.backends.base import SessionRecord
from rtctl.config import Limits, Recovery
from rtctl.gateway.server import Gateway
from rtctl.protocol.codes import CloseCode
from rtctl.router import CallContext, Router
from rtctl.services.sessions import SessionService
from tests.conftest import TIMING, GatewayFactory, client, make_token
from tests.servers import ServerProcess, unique_prefix
from tests.services.conftest import Player
from tests.services.fakes import FakeClock, FakeHost, FakePeer

GRACE = 0.5 * TIMING


def bundles(request: pytest.FixtureRequest) -> list[Backends]:
    if request.param == "memory":
        shared = memory_backends(node_id="n1")
        return [shared, dataclasses.replace(shared, node_id="n2")]
    redis: ServerProcess = request.getfixturevalue("redis_server")
    nats: ServerProcess = request.getfixturevalue("nats_server")
    prefix = unique_prefix()
    return [connect_backends(redis_url=redis.url, nats_url=nats.url, node_id=node,
                             prefix=prefix) for node in ("n1", "n2")]


@pytest.fixture(params=["memory", "redis+nats"])
async def nodes(request: pytest.FixtureRequest, start_gateway: GatewayFactory
                ) -> list[Gateway]:
    grace = getattr(request, "param_grace", GRACE)
    return [await start_gateway(backends=bundle, recovery=Recovery(grace=grace))
            for bundle in bundles(request)]


@asynccontextmanager
async def player(gateway: Gateway, user: str, recover: str | None = None
                 ) -> AsyncIterator[Player]:
    url = gateway.url + (f"?recover={quote(recover)}" if recover else "")
    async with client(url, make_token(user)) as ws:
        me = Player(ws)
        await me.result("sys.ping")  # past the connect hooks: visible on every node
        yield me


async def dropped(me: Player) -> dict[str, Any]:
    """``session.info`` of ``me``, then its TCP connection cut without a close frame."""
    info = await me.result("session.info")
    me.ws.transport.abort()
    return info  # type: ignore[no-any-return]


async def test_a_session_resumed_on_another_node_keeps_its_id_and_never_shows_offline(
        nodes: list[Gateway]) -> None:
    node_a, node_b = nodes
    async with player(node_b, "bob") as bob:
        await bob.result("presence.subscribe", {"users": ["alice"]})
        async with player(node_a, "alice") as alice:
            assert (await bob.note("presence.changed"))["status"] == "online"
            info = await dropped(alice)
            assert info["resumed"] is False
            assert info["recovery_token"]
        async with player(node_b, "alice", recover=info["recovery_token"]) as again:
            resumed = await again.result("session.info")
            assert resumed["connection_id"] == info["connection_id"]
            assert resumed["resumed"] is True
            assert resumed["resume_error"] is None
            await asyncio.sleep(2 * GRACE)  # the grace passing is what is tested
            await again.result("presence.set", {"status": "away"})
            # The next change bob hears of is the one just made: no offline in between,
            # neither when alice dropped nor when node A's grace ran out.
            assert (await bob.note("presence.changed"))["status"] == "away"
            found = await bob.result("presence.get", {"users": ["alice"]})
            assert found["alice"]["status"] == "away"


async def test_a_dropped_session_not_resumed_ends_after_the_grace_period(
        nodes: list[Gateway]) -> None:
    node_a, node_b = nodes
    async with player(node_b, "bob") as bob, player(node_a, "alice") as alice:
        await bob.result("presence.subscribe", {"users": ["alice"]})
        await bob.result("room.join", {"room": "lobby"})
        await alice.result("room.join", {"room": "lobby"})
        assert (await bob.note("room.joined"))["user"] == "alice"
        started = time.monotonic()
        await dropped(alice)
        offline = await bob.note("presence.changed")
        assert offline["status"] == "offline"
        assert time.monotonic() - started >= GRACE * 0.9  # held first, never at once
        assert await bob.note("room.left") == {"room": "lobby", "user": "alice"}


async def test_a_client_that_closes_itself_leaves_at_once(
        start_gateway: GatewayFactory) -> None:
    gateway = await start_gateway(recovery=Recovery(grace=600))  # a hold would time out
    async with player(gateway, "bob") as bob:
        await bob.result("presence.subscribe", {"users": ["alice"]})
        async with player(gateway, "alice"):
            assert (await bob.note("presence.changed"))["status"] == "online"
        assert (await bob.note("presence.changed"))["status"] == "offline"


@pytest.mark.parametrize("same_node", [True, False], ids=["same-node", "other-node"])
async def test_resuming_closes_the_older_connection_with_4009(
        nodes: list[Gateway], same_node: bool) -> None:
    node_a, node_b = nodes
    async with player(node_b, "bob") as bob, player(node_a, "alice") as old:
        await bob.result("presence.subscribe", {"users": ["alice"]})
        info = await old.result("session.info")
        async with player(node_a if same_node else node_b, "alice",
                          recover=info["recovery_token"]) as new:
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(old.ws.recv(), 10 * TIMING)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == CloseCode.SESSION_RESUMED
            assert (await new.result("session.info"))["connection_id"] == info["connection_id"]
            await new.result("presence.set", {"status": "busy"})
            assert (await bob.note("presence.changed"))["status"] == "busy"
            await bob.quiet()


@pytest.mark.parametrize(("token_user", "why"), [("mallory", "wrong_user"),
                                                 (None, "invalid")])
async def test_a_token_not_honoured_opens_a_new_session_and_says_why(
        start_gateway: GatewayFactory, token_user: str | None, why: str) -> None:
    gateway = await start_gateway()
    async with player(gateway, token_user or "alice") as first:
        info = await first.result("session.info")
    token = info["recovery_token"] if token_user else "not-a-token"
    async with player(gateway, "alice", recover=token) as second:
        fresh = await second.result("session.info")
    assert fresh["resumed"] is False
    assert fresh["resume_error"] == why
    assert fresh["connection_id"] != info["connection_id"]
    metrics = (await asyncio.to_thread(_metrics, gateway)).decode()
    assert f'rtctl_session_resumes_total{{result="{why}"}} 1.0' in metrics


def _metrics(gateway: Gateway) -> bytes:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{gateway.port}/metrics", timeout=5) as r:
        return r.read()  # type: ignore[no-any-return]


async def test_the_reaper_of_a_dead_node_spares_the_sessions_resumed_elsewhere() -> None:

    clock = FakeClock()
    shared = memory_backends(clock=clock, node_id="n1")
    survivor = FakeHost(dataclasses.replace(shared, node_id="n3"), clock=clock)
    sessions = SessionService(survivor)
    store = shared.sessions

    def record(session: str, node: str) -> SessionRecord:
        return SessionRecord(id=session, user=f"u-{session}", node=node, created_at=clock(),
                             last_seen=clock())

    await store.beat("n1", ttl=shared.node_ttl / 2)
    await store.put([record("moved", "n1"), record("stayed", "n1")], ttl=60)
    await store.put([record("moved", "n2")], ttl=60)  # resumed on n2 before n1 was reaped
    for hook in survivor.startup:
        await hook()
    try:
        clock.now += shared.node_ttl  # n1's heartbeat lapses: it died; n2 lives on
        await store.beat("n2", ttl=shared.node_ttl / 2)
        await sessions.housekeeping()
    finally:
        for hook in survivor.shutdown:
            await hook()
    assert await store.get("stayed") is None
    kept = await store.get("moved")
    assert kept is not None
    assert kept.node == "n2"


async def test_a_drained_node_holds_its_sessions_for_a_resume_elsewhere(
        nodes: list[Gateway]) -> None:
    node_a, node_b = nodes
    async with player(node_b, "bob") as bob, player(node_a, "alice") as alice:
        await bob.result("presence.subscribe", {"users": ["alice"]})
        info = await alice.result("session.info")
        await node_a.shutdown(drain=0)  # SIGTERM: 1001 to everyone, closed by the gateway
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(alice.ws.recv(), 10 * TIMING)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == CloseCode.GOING_AWAY
        async with player(node_b, "alice", recover=info["recovery_token"]) as again:
            assert (await again.result("session.info"))["resumed"] is True
            await again.result("presence.set", {"status": "away"})
            assert (await bob.note("presence.changed"))["status"] == "away"


async def test_a_connection_the_game_kicks_is_not_held(start_gateway: GatewayFactory) -> None:
    router = Router()

    @router.method("kick.me")
    def kick(ctx: CallContext) -> None:
        assert ctx.peer is not None
        ctx.peer.close(CloseCode.KICKED, "cheating")

    gateway = await start_gateway(router, recovery=Recovery(grace=600))
    async with player(gateway, "bob") as bob, player(gateway, "alice") as alice:
        await bob.result("presence.subscribe", {"users": ["alice"]})
        await alice.ws.send('{"jsonrpc": "2.0", "method": "kick.me"}')
        assert (await bob.note("presence.changed"))["status"] == "offline"


async def test_a_resume_is_not_refused_for_the_connection_it_replaces(
        start_gateway: GatewayFactory) -> None:
    gateway = await start_gateway(limits=Limits(max_connections_per_user=1))
    async with player(gateway, "alice") as old:
        info = await old.result("session.info")
        async with player(gateway, "alice", recover=info["recovery_token"]) as new:
            assert (await new.result("session.info"))["resumed"] is True
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(old.ws.recv(), 10 * TIMING)


def test_a_late_takeover_never_closes_a_newer_connection() -> None:

    host = FakeHost()
    sessions = SessionService(host)
    newest = FakePeer("s-1", "alice")  # closing it raises AssertionError
    newest.connected_at = 100.0
    host.peers["s-1"] = newest
    sessions._taken_over({"takeover": "s-1", "node": "n2", "at": 99.5})
    older = FakePeer("s-2", "bob")
    older.connected_at = 100.0
    host.peers["s-2"] = older
    closed: list[int] = []
    older.close = lambda code, reason: closed.append(code)  # type: ignore[method-assign]
    sessions._taken_over({"takeover": "s-2", "node": "n2", "at": 100.5})
    assert closed == [CloseCode.SESSION_RESUMED]


async def test_a_node_restarted_under_its_old_id_ends_the_sessions_its_last_life_held(
) -> None:

    clock = FakeClock()
    backends = memory_backends(clock=clock, node_id="n1")
    store = backends.sessions
    await store.beat("n1", ttl=backends.node_ttl / 2)  # the last life's heartbeat lives on
    await store.put([SessionRecord(id="held-1", user="alice", node="n1", created_at=clock(),
                                   last_seen=clock())], ttl=60)
    host = FakeHost(backends, clock=clock)
    sessions = SessionService(host)
    for hook in host.startup:
        await hook()
    try:
        await sessions.housekeeping()
    finally:
        for hook in host.shutdown:
            await hook()
    assert await store.get("held-1") is None


async def test_a_resume_here_during_the_grace_ends_last_store_read_keeps_the_session() -> None:
    clock = FakeClock()
    backends = memory_backends(clock=clock, node_id="n1")
    host = FakeHost(backends, clock=clock)
    sessions = SessionService(host)
    store = backends.sessions
    await store.put([SessionRecord(id="s-1", user="alice", node="n1", created_at=clock(),
                                   last_seen=clock())], ttl=60)
    read = store.get

    async def resumed_while_read(session_id: str) -> SessionRecord | None:
        host.peers[session_id] = FakePeer(session_id, "alice")  # the resume lands now
        return await read(session_id)

    store.get = resumed_while_read  # type: ignore[method-assign]
    await sessions._end_held("s-1", "alice")
    assert await read("s-1") is not None  # not ended under the live connection
