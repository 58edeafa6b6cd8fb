"""deploy/haproxy/haproxy.cfg in front of three real gateways, Redis and NATS.

What the configuration promises, each checked through HAProxy with real processes:
players spread by least connections and stick to their gateway (by user, or by match);
a killed gateway is out within about a second and its players reconnect to the others;
a draining one gets no newcomers but keeps its players until it closes them with 1001;
with Redis away every gateway keeps its players and newcomers are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from rtctl.bench.cluster import Cluster, GatewayNode, HAProxy
from rtctl.protocol.codes import CloseCode
from tests.conftest import TIMING, client, require_program, rpc
from tests.deploy.conftest import DRAIN, HEALTH_BUDGET
from tests.servers import HAPROXY_CONFIG


def test_haproxy_accepts_the_configuration(tmp_path: Path) -> None:
    proxy = HAProxy(HAPROXY_CONFIG, ["127.0.0.1:8001", "127.0.0.1:8002", "127.0.0.1:8003"],
                    workdir=tmp_path, path=require_program("haproxy"))
    checked = proxy.check()
    assert checked.returncode == 0, checked.stdout + checked.stderr


@contextlib.asynccontextmanager
async def players(deployed: Cluster, users: list[str], query: str = ""
                  ) -> AsyncIterator[dict[str, ClientConnection]]:
    """One connection through HAProxy per user, opened one after the other."""
    async with contextlib.AsyncExitStack() as stack:
        yield {user: await stack.enter_async_context(
            client(deployed.haproxy.url + query, deployed.tokens.for_user(user)))
            for user in users}


@contextlib.asynccontextmanager
async def around(deployed: Cluster, node: GatewayNode
                 ) -> AsyncIterator[tuple[dict[str, ClientConnection], list[str]]]:
    """Nine players through HAProxy, three a gateway; the connections, and who is on ``node``."""
    server = deployed.server_of(node)
    users = fresh_users(9)
    async with players(deployed, users) as conns:
        yield conns, [user for user in users
                      if deployed.haproxy.sticky(f"user:{user}") == server]


def fresh_users(count: int) -> list[str]:
    tag = uuid.uuid4().hex[:6]
    return [f"p{tag}-{i}" for i in range(count)]


async def works(ws: ClientConnection) -> bool:
    """Does a call over this connection get its answer?"""
    return bool((await rpc(ws, "sys.echo", ["still here"]))["result"] == ["still here"])


async def closed_with(ws: ClientConnection) -> int | None:
    """Wait for the connection to close; its close code (None: no close frame came)."""
    with contextlib.suppress(ConnectionClosed):
        async with asyncio.timeout(10 * TIMING):
            while True:
                await ws.recv()
    return ws.close_code


async def test_players_spread_evenly_and_return_to_their_gateway(deployed: Cluster) -> None:
    proxy = deployed.haproxy
    users = fresh_users(9)
    async with players(deployed, users) as conns:
        assert sorted(proxy.connections().values()) == [3, 3, 3]  # leastconn
        home = {user: proxy.sticky(f"user:{user}") for user in users}
        returning = users[0]
        elsewhere = [[u for u in users if home[u] == server][:2]
                     for server in proxy.connections() if server != home[returning]]
        for user in [returning, *elsewhere[0], *elsewhere[1]]:
            await conns[user].close()
        # Its gateway now holds the most players; leastconn alone would send it elsewhere.
        want = dict.fromkeys(proxy.connections(), 1) | {home[returning]: 2}
        await asyncio.to_thread(proxy.wait_connections, want, 5 * TIMING)
        async with players(deployed, [returning]):
            assert proxy.connections()[home[returning]] == 3


async def test_the_players_of_a_match_share_a_gateway(deployed: Cluster) -> None:
    match = uuid.uuid4().hex[:8]
    async with players(deployed, fresh_users(3), f"?match={match}"):
        assert sorted(deployed.haproxy.connections().values()) == [0, 0, 3]
        assert deployed.haproxy.sticky(f"match:{match}") is not None


async def test_the_log_keeps_credentials_in_the_query_out(deployed: Cluster) -> None:
    proxy = deployed.haproxy
    (user,) = fresh_users(1)
    token, recover = deployed.tokens.for_user(user), f"not-a-recovery-token-{user}"
    logged = proxy.log.read_text().count("GET /ws")
    async with connect(f"{proxy.url}?token={token}&recover={recover}") as ws:
        assert await works(ws)
    await asyncio.to_thread(proxy.wait_connections, dict.fromkeys(deployed.all_up(), 0),
                            5 * TIMING)
    log = proxy.log.read_text()
    assert log.count("GET /ws") == logged + 1  # its line is there...
    assert token not in log  # ... without its query
    assert recover not in log


async def test_a_killed_gateway_is_out_at_once_and_its_players_go_to_the_others(
    deployed: Cluster,
) -> None:
    proxy, victim = deployed.haproxy, deployed.gateways[0]
    dead = deployed.server_of(victim)
    async with around(deployed, victim) as (conns, theirs):
        victim.signal(signal.SIGKILL)
        killed = time.monotonic()
        codes = await asyncio.gather(*(closed_with(conns[user]) for user in theirs))
        assert set(codes) == {CloseCode.ABNORMAL_CLOSURE}  # no close frame from a dead node
        # They come back at once, before HAProxy's checks notice: the upgrade is retried.
        async with players(deployed, theirs) as back:
            for user in theirs:
                assert proxy.sticky(f"user:{user}") not in (dead, None)
                assert await works(back[user])
        await asyncio.to_thread(proxy.wait_states, {dead: "DOWN"}, 5 * TIMING)
        assert time.monotonic() - killed < HEALTH_BUDGET * TIMING


async def test_a_draining_gateway_keeps_its_players_then_closes_them_with_1001(
    deployed: Cluster,
) -> None:
    proxy, victim = deployed.haproxy, deployed.gateways[1]
    draining = deployed.server_of(victim)
    async with around(deployed, victim) as (conns, theirs):
        staying, returning = theirs[:-1], theirs[-1]
        await conns[returning].close()
        victim.signal(signal.SIGTERM)
        took = await asyncio.to_thread(proxy.wait_states, {draining: "NOLB"}, 5 * TIMING)
        assert took < HEALTH_BUDGET * TIMING
        assert await works(conns[staying[0]])  # not cut by HAProxy
        async with players(deployed, [returning]):  # the drained node's 503 is retried
            assert proxy.sticky(f"user:{returning}") not in (draining, None)
        codes = await asyncio.gather(*(closed_with(conns[user]) for user in staying))
        assert set(codes) == {CloseCode.GOING_AWAY}
    assert await asyncio.to_thread(victim.wait_exit, DRAIN + 10 * TIMING) == 0


async def test_without_redis_the_gateways_keep_their_players_and_refuse_newcomers(
    deployed: Cluster,
) -> None:
    proxy = deployed.haproxy
    async with players(deployed, fresh_users(3)) as conns:
        await asyncio.to_thread(deployed.redis.stop)
        nolb = dict.fromkeys(deployed.all_up(), "NOLB")
        await asyncio.to_thread(proxy.wait_states, nolb, 5 * TIMING)
        for ws in conns.values():
            assert await works(ws)
        with pytest.raises(InvalidStatus) as refused:
            async with players(deployed, fresh_users(1)):
                pass
        assert refused.value.response.status_code == 503
        await asyncio.to_thread(deployed.redis.start)
        await asyncio.to_thread(proxy.wait_states, deployed.all_up(), 10 * TIMING)
        async with players(deployed, fresh_users(1)) as newcomer:
            assert len(newcomer) == 1
