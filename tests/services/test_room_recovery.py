"""``room.join`` with ``since``: everything missed replayed, in order, once, while the room
goes on talking; or ``recovered: false`` and why. On one node exactly, then through real
gateways whose shared bus loses and reorders messages."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from rtctl.backends import memory_backends
from rtctl.backends.base import HistoryLimits
from rtctl.exceptions import InvalidParams
from rtctl.gateway.server import Gateway
from rtctl.protocol import jsonrpc
from rtctl.protocol.streams import Reason
from rtctl.services.room_metrics import RECOVERY_RESULTS
from tests.conftest import TIMING, GatewayFactory
from tests.services.conftest import Player
from tests.services.streams import HeldBus, Member, Node


async def talked(node: Node, count: int) -> tuple[Member, Member, str]:
    """alice and bob in room ``r``; bob said 1 to ``count``, all delivered; the epoch."""
    alice, bob = Member("c1", "alice"), Member("c2", "bob")
    await node.join(alice)
    await node.join(bob)
    for n in range(1, count + 1):
        await node.publish(bob, n)
    await node.bus.deliver(*range(1, count + 1))
    await alice.until(count)
    return alice, bob, alice.messages()[0]["epoch"]


def recoveries(node: Node) -> tuple[dict[str, float | None], float | None]:
    """``/metrics``' joins with ``since`` by result, and the messages they replayed."""
    metrics = node.host.scrape()
    return ({result: metrics.value("rtctl_room_recoveries_total", result=result)
             for result in RECOVERY_RESULTS},
            metrics.value("rtctl_room_replayed_messages_total"))


@pytest.mark.parametrize("early", [True, False], ids=["read-then-traffic",
                                                      "traffic-then-read"])
async def test_a_replay_is_exact_while_the_room_keeps_talking(early: bool) -> None:
    node = Node()
    alice, bob, epoch = await talked(node, 2)
    carol = Member("c3", "carol")  # was in the room on a connection that dropped at 2
    await node.join(carol)
    await node.publish(carol, "mine")  # 3: carol's own, as live delivery skips it
    await node.bus.deliver(3)
    await node.rooms._detached("c3")
    await node.publish(bob, 4)
    await node.bus.deliver(4)
    resumed = Member("c3", "carol")  # the same session, back
    node.history.early, node.history.gate = early, (gate := asyncio.Event())
    join = asyncio.ensure_future(node.join(resumed, since={"offset": 2, "epoch": epoch}))
    await node.history.held()
    for n in (5, 6):  # the room goes on during the read
        await node.publish(bob, n)
    await node.bus.deliver(5, 6)
    await node.settled()
    assert resumed.offsets() == []  # kept for it until it knows where it starts
    gate.set()
    reply = await join
    end = 4 if early else 6
    assert {k: reply[k] for k in ("recovered", "replayed", "offset", "epoch")} == {
        "recovered": True, "replayed": end - 3, "offset": end, "epoch": epoch}
    # One join with since (the others had none), counted with what it pushed.
    assert recoveries(node) == ({r: int(r == "recovered") for r in RECOVERY_RESULTS}, end - 3)
    await node.publish(bob, 7)
    await node.bus.deliver(7)
    assert await resumed.until(4) == [4, 5, 6, 7]  # 3 was its own
    await node.settled()
    assert resumed.offsets() == [4, 5, 6, 7]
    assert alice.offsets() == [1, 2, 3, 4, 5, 6, 7]


async def test_a_join_with_nothing_missed_recovers_with_no_replay() -> None:
    node = Node()
    _, bob, epoch = await talked(node, 3)
    carol = Member("c3", "carol")
    assert await node.join(carol, since={"offset": 3, "epoch": epoch}) == {
        "members": ["alice", "bob", "carol"], "total": 3, "offset": 3, "epoch": epoch,
        "recovered": True, "replayed": 0}
    await node.publish(bob, 4)
    await node.bus.deliver(4)
    assert await carol.until(1) == [4]


@pytest.mark.parametrize(("limits", "since", "reason"), [
    (HistoryLimits(size=3), 1, "too_old"),  # 2 and 3 were trimmed
    (HistoryLimits(max_replay=2), 2, "too_many"),
    (HistoryLimits(), 9, "unknown_offset"),
    (HistoryLimits(), None, "epoch_changed"),
])
async def test_what_cannot_be_replayed_is_not_replayed_at_all(
    limits: HistoryLimits, since: int | None, reason: Reason,
) -> None:
    node = Node(limits)
    _, bob, epoch = await talked(node, 5)
    carol = Member("c3", "carol")
    asked = {"offset": 1, "epoch": "gone"} if since is None else {"offset": since,
                                                                   "epoch": epoch}
    reply = await node.join(carol, since=asked)
    assert {k: reply[k] for k in ("recovered", "reason", "offset", "epoch")} == {
        "recovered": False, "reason": reason, "offset": 5, "epoch": epoch}
    assert "replayed" not in reply
    assert recoveries(node) == ({r: int(r == reason) for r in RECOVERY_RESULTS}, 0)
    await node.publish(bob, 6)
    await node.bus.deliver(6)
    assert await carol.until(1) == [6]  # it starts at the stream's end


async def test_a_replay_too_old_after_the_history_ttl() -> None:
    node = Node(HistoryLimits(ttl=30.0))
    _, _, epoch = await talked(node, 2)
    node.clock.now += 31
    reply = await node.join(Member("c3", "carol"), since={"offset": 1, "epoch": epoch})
    assert (reply["recovered"], reply["reason"], reply["offset"]) == (False, "too_old", 2)


async def test_since_is_for_joining_a_room_this_connection_is_not_in() -> None:
    node = Node()
    alice, _, epoch = await talked(node, 1)
    with pytest.raises(InvalidParams, match="'since' is for joining"):
        await node.join(alice, since={"offset": 0, "epoch": epoch})
    assert (await node.join(alice))["offset"] == 1  # without since: where it has got to


async def test_a_second_join_during_the_first_is_refused_and_the_first_goes_on() -> None:
    node = Node()
    *_, epoch = await talked(node, 1)
    carol = Member("c3", "carol")
    node.history.gate = gate = asyncio.Event()
    first = asyncio.ensure_future(node.join(carol, since={"offset": 0, "epoch": epoch}))
    await node.history.held()
    with pytest.raises(InvalidParams, match="joining 'r' already"):
        await node.join(carol)
    gate.set()
    assert (await first)["replayed"] == 1
    assert carol.offsets() == [1]


# -- through real gateways -----------------------------------------------------------


async def request(player: Player, method: str, params: Any, key: str) -> Any:
    """A request carrying an ``idempotency_key`` member, as a client re-sends one."""
    request_id = f"{method}-{key}"
    await player.ws.send(jsonrpc.dumps(jsonrpc.encode_request(
        method, params, request_id, idempotency_key=key)), text=True)
    while True:
        message = jsonrpc.loads(await asyncio.wait_for(player.ws.recv(), 10 * TIMING))
        if message.get("id") == request_id:
            return message["result"]
        player.notes.put_nowait(message)


@pytest.fixture
async def held_nodes(start_gateway: GatewayFactory) -> tuple[Gateway, Gateway, HeldBus]:
    """Two gateways on one memory bundle whose bus delivers room messages on the test's
    word."""
    shared = memory_backends(node_id="n1")
    bus = HeldBus(shared.bus)
    shared = dataclasses.replace(shared, bus=bus)
    return (await start_gateway(backends=shared),
            await start_gateway(backends=dataclasses.replace(shared, node_id="n2")), bus)


async def test_gateways_fill_lost_and_reordered_messages_and_replay_across_nodes(
    held_nodes: tuple[Gateway, Gateway, HeldBus], connect_player: Any,
) -> None:
    n1, n2, bus = held_nodes
    async with connect_player(n1, "alice") as alice, connect_player(n2, "bob") as bob:
        epoch = (await alice.result("room.join", {"room": "lobby"}))["epoch"]
        await bob.result("room.join", {"room": "lobby"})
        for n in range(1, 5):
            assert await bob.result("room.publish", {"room": "lobby", "data": n}) == {
                "offset": n, "epoch": epoch}
        await bus.deliver(3, 1, 4)  # 2 lost, the rest out of order
        assert [(await alice.note("room.message"))["data"] for _ in range(4)] == [1, 2, 3, 4]
        async with connect_player(n2, "carol") as carol:  # back after missing 2 to 4
            reply = await carol.result("room.join", {"room": "lobby",
                                                     "since": {"offset": 1, "epoch": epoch}})
            assert {k: reply[k] for k in ("recovered", "replayed", "offset")} == {
                "recovered": True, "replayed": 3, "offset": 4}
            assert [(await carol.note("room.message"))["offset"] for _ in range(3)] == [
                2, 3, 4]
            await carol.quiet()


async def test_a_keyed_publish_sent_twice_through_a_gateway_is_one_message(
    held_nodes: tuple[Gateway, Gateway, HeldBus], connect_player: Any,
) -> None:
    n1, n2, bus = held_nodes
    async with connect_player(n1, "alice") as alice, connect_player(n2, "bob") as bob:
        await alice.result("room.join", {"room": "lobby"})
        await bob.result("room.join", {"room": "lobby"})
        await alice.note("room.joined")
        first = await request(bob, "room.publish", {"room": "lobby", "data": "once"}, "k-1")
        assert await request(bob, "room.publish", {"room": "lobby", "data": "once"},
                             "k-1") == first
        assert sorted(bus.held) == [first["offset"]]
        await bus.deliver(first["offset"])
        assert (await alice.note("room.message"))["data"] == "once"
        await alice.quiet()
