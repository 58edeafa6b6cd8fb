"""presence.* across two nodes, on memory and on Redis + NATS, over real WebSockets; then
the service alone, fed bus messages in the order another node's could arrive."""

from __future__ import annotations

import asyncio
from typing import Any

from rtctl.gateway.server import Gateway
from rtctl.services.presence import PresenceService
from rtctl.services.sessions import SessionService
from tests.conftest import TIMING
from tests.services.fakes import FakeHost, FakePeer

OFFLINE_NEVER_SEEN = {"status": "offline", "last_seen": None, "text": None, "version": 0}


def seen(presence: dict[str, Any]) -> dict[str, Any]:
    """A presence without its version (the store's clock picks it)."""
    return {name: value for name, value in presence.items() if name != "version"}


async def test_presence_changes_cross_nodes_and_last_seen_is_set_on_disconnect(
    two_nodes: tuple[Gateway, Gateway], connect_player: Any,
) -> None:
    n1, n2 = two_nodes
    async with connect_player(n1, "alice") as alice:
        assert await alice.result("presence.subscribe", {"users": ["bob"]}) == {
            "bob": OFFLINE_NEVER_SEEN}
        async with connect_player(n2, "bob") as bob:
            online = await alice.note("presence.changed")
            assert seen(online) == {"user": "bob", "status": "online", "last_seen": None,
                                    "text": None}
            busy = await bob.result("presence.set", {"status": "busy", "text": "in a match"})
            assert seen(busy) == {"status": "busy", "last_seen": None, "text": "in a match"}
            assert await alice.note("presence.changed") == {"user": "bob", **busy}
            before = n1.clock() * 1000
        gone = await alice.note("presence.changed")
        assert (gone["user"], gone["status"], gone["text"]) == ("bob", "offline", None)
        assert before <= gone["last_seen"] <= n1.clock() * 1000
        assert online["version"] < busy["version"] < gone["version"]
        async with connect_player(n2, "carol") as carol:
            found = await carol.result("presence.get", {"users": ["bob", "alice"]})
        assert found["bob"] == {"status": "offline", "last_seen": gone["last_seen"],
                                "text": None, "version": gone["version"]}
        assert seen(found["alice"]) == {"status": "online", "last_seen": None, "text": None}


async def test_a_user_is_online_while_any_device_is(
    two_nodes: tuple[Gateway, Gateway], connect_player: Any,
) -> None:
    n1, n2 = two_nodes
    async with connect_player(n1, "alice") as alice:
        await alice.result("presence.subscribe", {"users": ["bob"]})
        async with connect_player(n2, "bob") as phone:
            assert (await alice.note("presence.changed"))["status"] == "online"
            async with connect_player(n1, "bob") as laptop:
                await laptop.result("sys.ping")
            await phone.result("presence.get", {"users": ["bob"]})
            await alice.quiet()  # the laptop left, the phone keeps bob online
            assert (await phone.result("session.list"))[0]["node"] == "n2"
        assert (await alice.note("presence.changed"))["status"] == "offline"


async def test_invisible_reads_as_offline_and_unsubscribe_stops_notifications(
    two_nodes: tuple[Gateway, Gateway], connect_player: Any,
) -> None:
    n1, n2 = two_nodes
    async with connect_player(n1, "alice") as alice, connect_player(n2, "bob") as bob:
        assert (await alice.result("presence.subscribe", {"users": ["bob"]}))["bob"][
            "status"] == "online"
        hidden = await bob.result("presence.set", {"status": "invisible"})
        assert hidden["status"] == "offline"
        assert await alice.note("presence.changed") == {"user": "bob", **hidden}
        assert await alice.result("presence.unsubscribe") == {"watching": []}
        await bob.result("presence.set", {"status": "online"})
        await alice.quiet()
        assert (await alice.result("presence.get", {"users": ["bob"]}))["bob"][
            "status"] == "online"


async def test_bad_presence_params_are_refused_and_change_nothing(
    two_nodes: tuple[Gateway, Gateway], connect_player: Any,
) -> None:
    n1, _ = two_nodes
    async with connect_player(n1, "bob") as bob:
        await bob.result("presence.set", {"status": "away", "text": "brb"})
        for method, params, words in [
            ("presence.set", {"status": "sleeping"}, "'status' must be one of 'online'"),
            ("presence.set", {"status": "busy", "text": "x" * 257}, "at most 256 characters"),
            ("presence.set", {}, "missing a required argument: 'status'"),
            ("presence.get", {"users": []}, "1 to 100 users"),
            ("presence.get", {"users": "bob"}, "'users' must be array"),
            ("presence.subscribe", {"users": [""]}, "empty name"),
            ("presence.get", {"users": [f"u{i}" for i in range(101)]}, "1 to 100 users"),
        ]:
            error = (await bob.call(method, params))["error"]
            assert error["code"] == -32602, (method, params, error)
            assert words in error["message"], error
        assert seen((await bob.result("presence.get", {"users": ["bob"]}))["bob"]) == {
            "status": "away", "last_seen": None, "text": "brb"}


async def presence_settled(host: FakeHost) -> None:
    """Every presence message published so far has been handled: the memory bus delivers
    in order, so one published now comes last."""
    done = asyncio.Event()
    subject = f"{host.backends.subject_prefix}.presence"
    await host.backends.bus.subscribe(subject, lambda message: done.set())
    await host.backends.bus.publish(subject, {})
    await asyncio.wait_for(done.wait(), 5 * TIMING)


async def test_a_late_update_older_than_what_a_watcher_knows_is_dropped() -> None:
    host = FakeHost()
    presence = PresenceService(host, SessionService(host))
    bus, subject = host.backends.bus, f"{host.backends.subject_prefix}.presence"
    for hook in host.startup:
        await hook()
    try:
        await host.backends.presence.connect("bob", "b1")
        alice = FakePeer("a1", "alice")
        host.peers[alice.id] = alice  # live: a closed connection's subscribe is not kept
        stored = (await presence.subscribe(alice.context(), ["bob"]))["bob"]["version"]

        def update(status: str, version: int) -> dict[str, Any]:
            return {"user": "bob", "status": status, "last_seen": None, "text": None,
                    "version": version}

        for message in [
            update("away", stored - 1),  # older than what subscribe answered
            update("busy", stored + 5),
            update("away", stored + 3),  # from another node, late
            update("busy", stored + 5),  # a repeat (a resync)
            update("busy", stored + 7),  # newer, but nothing alice sees changed
            update("online", stored + 6),  # older than that one
            update("online", stored + 8),
        ]:
            await bus.publish(subject, message)
        await presence_settled(host)
    finally:
        for hook in host.shutdown:
            await hook()
    assert [note["params"] for note in alice.received] == [
        update("busy", stored + 5), update("online", stored + 8)]


async def test_a_closed_connections_subscriptions_end_with_it_though_its_session_is_held(
) -> None:
    host = FakeHost()
    host.grace = 5.0
    sessions = SessionService(host)
    presence = PresenceService(host, sessions)
    for hook in host.startup:
        await hook()
    try:
        for user in ("bob", "carol"):
            await host.backends.presence.connect(user, f"{user}1")
        old, new = FakePeer("a1", "alice"), FakePeer("a1", "alice")  # one session
        await presence.subscribe(old.context(), ["bob", "carol"])
        host.peers[new.id] = new  # resumed here before the old connection's close is seen
        await presence.subscribe(new.context(), ["carol"])
        await sessions._disconnected(old, 1006, "")  # held for the grace period
        for user in ("bob", "carol"):
            await presence.set(FakePeer(f"{user}1", user).context(), "busy")
        await presence_settled(host)
        assert old.received == []
        assert [(n["params"]["user"], n["params"]["status"]) for n in new.received] == [
            ("carol", "busy")]
        assert presence.unsubscribe(new.context(), ["bob"]) == {"watching": ["carol"]}
    finally:
        for hook in host.shutdown:
            await hook()


async def test_a_subscribe_whose_connection_closed_meanwhile_keeps_no_watch() -> None:
    host = FakeHost()
    presence = PresenceService(host, SessionService(host))
    for hook in host.startup:
        await hook()
    try:
        gone = FakePeer("a1", "alice")  # not live on the host: closed during the call
        await presence.subscribe(gone.context(), ["bob"])
        await host.backends.presence.connect("bob", "b1")
        await presence._announce(["bob"])
        await presence_settled(host)
    finally:
        for hook in host.shutdown:
            await hook()
    assert gone.received == []
