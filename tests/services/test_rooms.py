"""room.* across two nodes, on memory and on Redis + NATS, over real WebSockets."""

from __future__ import annotations

import contextlib
from typing import Any

from rtctl.gateway.server import Gateway
from rtctl.protocol.lanes import Lane


async def test_room_messages_and_membership_cross_nodes(
    two_nodes: tuple[Gateway, Gateway], connect_player: Any,
) -> None:
    n1, n2 = two_nodes
    async with connect_player(n1, "alice") as alice:
        joined = await alice.result("room.join", {"room": "lobby"})
        epoch = joined["epoch"]
        assert joined == {"members": ["alice"], "total": 1, "offset": 0, "epoch": epoch}
        async with connect_player(n2, "bob") as bob:
            assert await bob.result("room.join", ["lobby"]) == {
                "members": ["alice", "bob"], "total": 2, "offset": 0, "epoch": epoch}
            assert await alice.note("room.joined") == {"room": "lobby", "user": "bob"}
            assert await bob.result("room.publish", {"room": "lobby", "data": {
                "x": 1, "say": "hi"}}) == {"offset": 1, "epoch": epoch}  # in history
            assert await alice.note("room.message") == {
                "room": "lobby", "from": "bob", "data": {"x": 1, "say": "hi"}, "offset": 1,
                "epoch": epoch}
            await alice.result("room.publish", {"room": "lobby"})
            assert await bob.note("room.message") == {"room": "lobby", "from": "alice",
                                                      "data": None, "offset": 2,
                                                      "epoch": epoch}
            await bob.quiet()  # nobody hears their own message
            await alice.quiet()
        assert await alice.note("room.left") == {"room": "lobby", "user": "bob"}  # on disconnect


async def test_a_second_device_is_not_news_and_leave_is_announced(
    two_nodes: tuple[Gateway, Gateway], connect_player: Any,
) -> None:
    n1, n2 = two_nodes
    async with connect_player(n1, "alice") as alice, connect_player(n2, "bob") as phone, \
            connect_player(n1, "bob") as laptop:
        await alice.result("room.join", {"room": "arena:7"})
        await phone.result("room.join", {"room": "arena:7"})
        assert (await alice.note("room.joined"))["user"] == "bob"
        assert (await laptop.result("room.join", {"room": "arena:7"}))["members"] == [
            "alice", "bob"]
        await laptop.result("room.leave", {"room": "arena:7"})
        await alice.quiet()
        await phone.result("room.leave", {"room": "arena:7"})
        assert await alice.note("room.left") == {"room": "arena:7", "user": "bob"}
        error = (await phone.call("room.publish", {"room": "arena:7", "data": 1}))["error"]
        assert error["code"] == -32003


async def test_bad_room_calls_are_refused_and_change_nothing(
    two_nodes: tuple[Gateway, Gateway], connect_player: Any,
) -> None:
    n1, _ = two_nodes
    async with connect_player(n1, "alice") as alice, connect_player(n1, "bob") as bob:
        await bob.result("room.join", {"room": "lobby"})
        for method, params, code, words in [
            ("room.join", {"room": "has space"}, -32602, "'room' must be 1 to 64"),
            ("room.join", {"room": ""}, -32602, "'room' must be 1 to 64"),
            ("room.join", {"room": "a.b"}, -32602, "'room' must be 1 to 64"),
            ("room.join", {"room": 7}, -32602, "'room' must be string"),
            ("room.join", {}, -32602, "missing a required argument: 'room'"),
            ("room.publish", {"room": "lobby", "data": 1}, -32003, "join it first"),
            ("room.leave", {"room": "lobby"}, -32003, "join it first"),
            *[("room.join", {"room": "lobby", "since": since}, -32602, f"'since': {words}")
              for since, words in [
                  (3, "must be an object with exactly 'offset' and 'epoch'"),
                  ({"offset": 1}, "must be an object with exactly"),
                  ({"offset": 1, "epoch": "e", "x": 0}, "must be an object with exactly"),
                  ({"offset": -1, "epoch": "e"}, "'offset' must be an integer of 0 or more"),
                  ({"offset": 1.5, "epoch": "e"}, "'offset' must be an integer"),
                  ({"offset": True, "epoch": "e"}, "'offset' must be an integer"),
                  ({"offset": 1, "epoch": ""}, "'epoch' must be a string of 1 to 64"),
                  ({"offset": 1, "epoch": "e" * 65}, "'epoch' must be a string of 1 to 64"),
              ]],
        ]:
            error = (await alice.call(method, params))["error"]
            assert (error["code"], words in error["message"]) == (code, True), error
        await bob.quiet()  # no joined, left or message leaked out
        assert (await alice.result("room.join", {"room": "lobby"}))["members"] == [
            "alice", "bob"]


async def test_room_members_pages_every_user_once_across_nodes(
    two_nodes: tuple[Gateway, Gateway], connect_player: Any,
) -> None:
    n1, n2 = two_nodes
    users = ["dan", "bea", "eve", "al", "cat"]
    async with contextlib.AsyncExitStack() as stack:
        players = [await stack.enter_async_context(connect_player((n1, n2)[i % 2], user))
                   for i, user in enumerate(users)]
        for player in players:
            await player.result("room.join", {"room": "hall"})
        first = await players[0].result("room.members", {"room": "hall", "limit": 2})
        assert first["members"] == ["al", "bea"]
        assert first["total"] == 5
        # Joins on either side of the cursor meanwhile: those already walked past are
        # not seen again, and nobody who stays is skipped.
        for user in ("aaron", "zed"):
            late = await stack.enter_async_context(connect_player(n2, user))
            await late.result("room.join", {"room": "hall"})
        walked, cursor = list(first["members"]), first["next"]
        while cursor is not None:
            page = await players[1].result("room.members", {"room": "hall", "cursor": cursor,
                                                            "limit": 2})
            assert len(page["members"]) <= 2
            walked += page["members"]
            cursor = page["next"]
        assert walked == ["al", "bea", "cat", "dan", "eve", "zed"]
        assert page["total"] == 7
        everyone = await players[2].result("room.members", {"room": "hall"})
        assert everyone == {"members": sorted([*users, "aaron", "zed"]), "total": 7,
                            "next": None}
        for params, code, words in [
            ({"room": "hall", "limit": 0}, -32602, "'limit' must be 1 to 1000"),
            ({"room": "hall", "limit": 1001}, -32602, "'limit' must be 1 to 1000"),
            ({"room": "hall", "limit": "2"}, -32602, "'limit' must be"),
            ({"room": "hall", "cursor": "%%%"}, -32602, "'cursor' must be a cursor"),
            ({"room": "hall", "cursor": 3}, -32602, "'cursor' must be"),
            ({"room": "a b"}, -32602, "'room' must be 1 to 64"),
            ({"room": "elsewhere"}, -32003, "join it first"),
        ]:
            error = (await players[0].call("room.members", params))["error"]
            assert (error["code"], words in error["message"]) == (code, True), error


async def test_a_member_back_on_another_node_gets_what_it_missed_once(
    two_nodes: tuple[Gateway, Gateway], connect_player: Any,
) -> None:
    n1, n2 = two_nodes
    async with connect_player(n1, "alice") as alice, connect_player(n1, "bob") as bob:
        await alice.result("room.join", {"room": "lobby"})
        await bob.result("room.join", {"room": "lobby"})
        await bob.result("room.publish", {"room": "lobby", "data": 1})
        seen = await alice.note("room.message")
        async with connect_player(n2, "alice") as back:  # alice's new connection
            await alice.result("room.leave", {"room": "lobby"})  # the old one is gone
            for n in (2, 3):
                await bob.result("room.publish", {"room": "lobby", "data": n})
            reply = await back.result("room.join", {"room": "lobby", "since": {
                "offset": seen["offset"], "epoch": seen["epoch"]}})
            assert {k: reply[k] for k in ("recovered", "replayed", "offset", "epoch")} == {
                "recovered": True, "replayed": 2, "offset": seen["offset"] + 2,
                "epoch": seen["epoch"]}
            await bob.result("room.publish", {"room": "lobby", "data": 4})
            got = [await back.note("room.message") for _ in range(3)]
            assert [(m["data"], m["offset"]) for m in got] == [
                (n, seen["offset"] + n - 1) for n in (2, 3, 4)]
            await back.quiet()


async def test_a_tagged_publish_reaches_another_node_in_its_lane_and_reads_the_same(
    two_nodes: tuple[Gateway, Gateway], connect_player: Any,
) -> None:
    n1, n2 = two_nodes
    lanes = n1.metrics.lanes
    async with connect_player(n1, "alice") as alice, connect_player(n2, "bob") as bob:
        epoch = (await alice.result("room.join", {"room": "lobby"}))["epoch"]
        await bob.result("room.join", {"room": "lobby"})
        await alice.note("room.joined")
        before = {lane: lanes[lane].queued for lane in Lane}
        first = await bob.result("room.publish", {"room": "lobby", "data": {"red": 3},
                                                  "lane": "chat", "policy": "coalescible",
                                                  "key": "score"})
        await bob.result("room.publish", {"room": "lobby", "data": [1, 2],
                                          "lane": "telemetry"})
        assert [await alice.note("room.message") for _ in range(2)] == [
            {"room": "lobby", "from": "bob", "data": data, "offset": first["offset"] + n,
             "epoch": epoch} for n, data in enumerate([{"red": 3}, [1, 2]])]
        assert {lane: lanes[lane].queued - before[lane] for lane in Lane} == {
            Lane.CONTROL: 0, Lane.STATE: 0, Lane.EVENTS: 0, Lane.CHAT: 1, Lane.TELEMETRY: 1}
