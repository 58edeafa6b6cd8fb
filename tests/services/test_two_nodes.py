"""The issue's "done when": two ``rtctl serve`` processes on one Redis and one NATS.

Over real WebSockets: presence and room messages cross nodes, ``last_seen`` is
set on disconnect, and after one node is killed with SIGKILL the survivor ends
its sessions (offline and room.left notifications) within the node TTL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SECRET, TIMING
from tests.servers import ServerProcess
from tests.services.conftest import Player

ROOT = Path(__file__).resolve().parents[2]
NODE_TTL = 2.0


class Node:
    """A ``rtctl serve`` subprocess; ``url`` is what its banner printed."""

    def __init__(self, name: str, redis: ServerProcess, nats: ServerProcess,
                 transport: str) -> None:
        env = dict(os.environ, RTCTL_REDIS_URL=redis.url, RTCTL_NATS_URL=nats.url)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rtctl", "serve", "--port", "0", "--jwt-secret", SECRET,
             "--node-id", name, "--transport", transport, "--node-ttl", f"{NODE_TTL:g}s",
             "--drain", "0"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        banner = [self.proc.stdout.readline() for _ in range(5)]
        assert banner[0].startswith("rtctl gateway listening on "), banner
        assert f"node {name}" in banner[4], banner
        assert "redis" in banner[4], banner
        self.url = banner[0].split()[-1]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(15 * TIMING)


@pytest.fixture
def nodes() -> Iterator[list[Node]]:
    started: list[Node] = []
    yield started
    for node in started:
        node.stop()


async def test_two_processes_share_presence_and_rooms_and_clean_up_after_sigkill(
    redis_server: ServerProcess, nats_server: ServerProcess, nodes: list[Node],
    connect_player: Any, transport: str,
) -> None:
    # The processes use the default key prefix, which no other test touches.
    nodes += [Node("gw-a", redis_server, nats_server, transport),
              Node("gw-b", redis_server, nats_server, transport)]
    gateway_a, gateway_b = (node.url for node in nodes)
    async with connect_player(gateway_a, "alice") as alice:
        await alice.result("presence.subscribe", {"users": ["bob", "carol"]})
        await alice.result("room.join", {"room": "lobby"})
        async with connect_player(gateway_b, "bob") as bob:
            assert (await alice.note("presence.changed"))["status"] == "online"
            joined = await bob.result("room.join", {"room": "lobby"})
            assert (joined["members"], joined["total"]) == (["alice", "bob"], 2)
            assert await alice.note("room.joined") == {"room": "lobby", "user": "bob"}
            await bob.result("room.publish", {"room": "lobby", "data": "gg"})
            assert await alice.note("room.message") == {
                "room": "lobby", "from": "bob", "data": "gg", "offset": joined["offset"] + 1,
                "epoch": joined["epoch"]}
        offline = await alice.note("presence.changed")
        assert (offline["user"], offline["status"]) == ("bob", "offline")
        assert offline["last_seen"] <= time.time() * 1000
        assert await alice.note("room.left") == {"room": "lobby", "user": "bob"}

        carol_cm = connect_player(gateway_b, "carol")
        carol: Player = await carol_cm.__aenter__()
        await carol.result("room.join", {"room": "lobby"})
        assert (await alice.note("presence.changed"))["status"] == "online"
        assert (await alice.note("room.joined"))["user"] == "carol"
        nodes[1].proc.send_signal(signal.SIGKILL)  # no goodbye from gw-b
        killed_at = time.monotonic()
        nodes[1].proc.wait(10 * TIMING)
        gone = await alice.note("presence.changed")
        assert (gone["user"], gone["status"]) == ("carol", "offline")
        assert await alice.note("room.left") == {"room": "lobby", "user": "carol"}
        assert time.monotonic() - killed_at < NODE_TTL * 1.5 * TIMING
        assert (await alice.result("presence.get", {"users": ["carol"]}))["carol"][
            "status"] == "offline"
        rejoined = await alice.result("room.join", {"room": "lobby"})
        assert (rejoined["members"], rejoined["total"]) == (["alice"], 1)
        await carol_cm.__aexit__(None, None, None)
