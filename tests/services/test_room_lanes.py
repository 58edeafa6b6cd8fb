"""``room.publish {room, data, lane?, policy?, key?}``: what is refused, and how a tagged
message is queued for each member: live, filled from history, kept for a joiner, replayed
(reliable whatever its policy), and on another node over memory and over Redis + NATS."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import AsyncIterator, Hashable
from typing import Any

import pytest

from rtctl.backends import Backends, connect_backends, memory_backends
from rtctl.protocol import jsonrpc
from rtctl.protocol.lanes import Lane, Policy
from rtctl.services.room_stream import StreamMessage
from rtctl.services.room_tags import UNTAGGED, Tags
from tests.servers import ServerProcess, unique_prefix
from tests.services.fakes import FakeHost
from tests.services.streams import Member, Node
from tests.services.test_large_rooms import rooms_on
from tests.services.test_room_order import held_join, in_room

Tag = tuple[Lane, Policy | None, Hashable | None]
PLAIN: Tag = (Lane.EVENTS, Policy.RELIABLE, None)
REPLAYED: Tag = PLAIN  # whatever the message was published with
# (publish's tags, how each member queues the message)
TAGGED: list[tuple[dict[str, Any], Tag]] = [
    ({}, PLAIN),
    ({"lane": None, "policy": None, "key": None}, PLAIN),  # null is absent, for each of them
    ({"lane": "telemetry"}, (Lane.TELEMETRY, Policy.DROPPABLE, None)),
    ({"lane": "chat", "policy": "droppable"}, (Lane.CHAT, Policy.DROPPABLE, None)),
    ({"policy": "coalescible", "key": "score"},
     (Lane.EVENTS, Policy.COALESCIBLE, ("room", "r", "score"))),
    ({"lane": "chat", "policy": "coalescible", "key": "k" * 64},
     (Lane.CHAT, Policy.COALESCIBLE, ("room", "r", "k" * 64))),
]


async def publish_tagged(node: Node, sender: Member) -> None:
    for n, (tags, _) in enumerate(TAGGED, 1):
        await node.publish(sender, n, **tags)


@pytest.mark.parametrize(("params", "words"), [
    ({"lane": "control"}, "'lane' must be one of 'events', 'chat', 'telemetry'"),
    ({"lane": "state"}, "'lane' must be one of 'events', 'chat', 'telemetry'"),
    ({"lane": "bulk"}, "'lane' must be one of"),
    ({"lane": 3}, "'lane' must be one of"),
    ({"policy": "sometimes"}, "'policy' must be one of 'reliable', 'coalescible', 'droppable'"),
    ({"policy": "coalescible"}, "'key' is required with policy 'coalescible'"),
    ({"policy": "reliable", "key": "k"}, "'key' goes only with policy 'coalescible'"),
    ({"lane": "telemetry", "key": "k"}, "'key' goes only with policy 'coalescible'"),
    ({"policy": "coalescible", "key": ""}, "'key' must be a string of 1 to 64 characters"),
    ({"policy": "coalescible", "key": "k" * 65}, "'key' must be a string of 1 to 64"),
    ({"policy": "coalescible", "key": 5}, "'key' must be string or null"),
])
async def test_a_publish_with_bad_tags_is_refused_naming_the_member_and_sends_nothing(
    params: dict[str, Any], words: str,
) -> None:
    node = Node()
    alice, bob = await in_room(node, "alice", "bob")
    before = await node.history.position("r")
    request = jsonrpc.Request("room.publish", {"room": "r", "data": 1, **params}, 1, False)
    handled = node.rooms.router.handle(request, bob.context())
    reply = await handled if inspect.isawaitable(handled) else handled
    assert reply is not None
    error = reply["error"]
    assert (error["code"], words in error["message"]) == (-32602, True), error
    assert await node.history.position("r") == before
    assert node.bus.held == {}
    assert alice.messages() == []


async def test_each_member_queues_a_message_as_its_publish_tagged_it() -> None:
    node = Node()
    alice, bob = await in_room(node, "alice", "bob")
    await publish_tagged(node, bob)
    await node.bus.deliver(*range(1, len(TAGGED) + 1))
    await alice.until(len(TAGGED))
    assert alice.tags("room.message") == [tag for _, tag in TAGGED]
    assert [m["data"] for m in alice.messages()] == list(range(1, len(TAGGED) + 1))


async def test_a_message_filled_from_history_keeps_its_tags() -> None:
    node = Node()
    alice, bob = await in_room(node, "alice", "bob")
    await publish_tagged(node, bob)
    await node.bus.deliver(len(TAGGED))  # the others were lost on the bus: read from history
    assert await alice.until(len(TAGGED)) == list(range(1, len(TAGGED) + 1))
    assert alice.tags("room.message") == [tag for _, tag in TAGGED]


async def test_what_a_joiner_was_kept_keeps_its_tags_and_news_stays_chat() -> None:
    node = Node()
    alice, bob = await in_room(node, "alice", "bob")
    carol = Member("c3", "carol")
    node.history.early = True  # its read is done, then waits while the room goes on
    join, gate = await held_join(node, carol)
    await node.rooms.leave(alice.context(), "r")  # membership news, kept for carol
    await publish_tagged(node, bob)
    await node.bus.deliver(*range(1, len(TAGGED) + 1))
    await node.settled()
    gate.set()
    await join
    assert await carol.until(len(TAGGED)) == list(range(1, len(TAGGED) + 1))
    assert carol.tags("room.message") == [tag for _, tag in TAGGED]
    assert carol.tags("room.left") == [(Lane.CHAT, None, None)]


async def test_a_replay_is_reliable_in_the_events_lane_whatever_its_tags() -> None:
    node = Node()
    alice, bob = await in_room(node, "alice", "bob")
    start = await node.history.position("r")
    await publish_tagged(node, bob)
    await node.bus.deliver(*range(1, len(TAGGED) + 1))
    await alice.until(len(TAGGED))
    back = Member("c3", "carol")
    reply = await node.join(back, since=start.to_json())
    assert (reply["recovered"], reply["replayed"]) == (True, len(TAGGED))
    assert back.messages() == alice.messages()  # what a replay sends is unchanged
    assert back.tags("room.message") == [REPLAYED] * len(TAGGED)


@pytest.mark.parametrize("tags", [tags for tags, _ in TAGGED])
def test_tags_read_back_as_written(tags: dict[str, Any]) -> None:
    written = Tags.published(tags.get("lane", "events"), tags.get("policy"), tags.get("key"))
    fields = {"from": "bob", "data": 1, "session": "c2", **written.fields()}
    assert StreamMessage.read(7, "e", fields) == StreamMessage(7, "e", "c2", "bob", 1, written)
    assert (written.fields() == {}) is (written == UNTAGGED)  # untagged ones write nothing


@pytest.mark.parametrize("fields", [
    {},  # written before issue 14
    {"lane": "bulk", "policy": "reliable", "key": None},  # by a version that knows more
    {"lane": "chat", "policy": "coalescible", "key": None},
])
def test_a_message_whose_tags_cannot_be_read_is_delivered_untagged(
    fields: dict[str, Any],
) -> None:
    message = StreamMessage.read(3, "e", {"from": "bob", "data": "hi", **fields})
    assert (message.data, message.tags) == ("hi", UNTAGGED)


@pytest.fixture(params=["memory", "redis+nats"])
async def bundles(request: pytest.FixtureRequest) -> AsyncIterator[list[Backends]]:
    """Two nodes' backends: one memory bundle under two node ids, or Redis and NATS."""
    if request.param == "memory":
        shared = memory_backends(node_id="n1")
        yield [shared, dataclasses.replace(shared, node_id="n2")]
        return
    redis: ServerProcess = request.getfixturevalue("redis_server")
    nats: ServerProcess = request.getfixturevalue("nats_server")
    prefix = unique_prefix()
    started = [connect_backends(redis_url=redis.url, nats_url=nats.url, node_id=node,
                                prefix=prefix) for node in ("n1", "n2")]
    for backends in started:
        await backends.start()
    yield started
    for backends in started:
        await backends.close()


async def test_tagged_messages_cross_nodes_with_their_tags(bundles: list[Backends]) -> None:
    hosts = [FakeHost(backends) for backends in bundles]
    n1, n2 = (rooms_on(host) for host in hosts)
    alice, bob = Member("c1", "alice"), Member("c2", "bob")
    start = await bundles[0].history.position("r")
    await n1.join(alice.context(), "r")
    await n2.join(bob.context(), "r")
    for n, (tags, _) in enumerate(TAGGED, 1):
        await n2.publish(bob.context(), "r", n, **tags)
    assert await alice.until(len(TAGGED)) == [start.offset + n
                                              for n in range(1, len(TAGGED) + 1)]
    assert alice.tags("room.message") == [tag for _, tag in TAGGED]
    back = Member("c3", "carol")  # back on the other node: replayed from shared history
    reply = await n2.join(back.context(), "r", since=start.to_json())
    assert (reply["recovered"], reply["replayed"]) == (True, len(TAGGED))
    assert back.messages() == alice.messages()
    assert back.tags("room.message") == [REPLAYED] * len(TAGGED)
    for host in hosts:
        for hook in host.shutdown:
            await hook()
