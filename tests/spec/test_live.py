"""Live replies and notifications of a real gateway hold to the schemas ``rtctl spec`` publishes.

One gateway for the module (memory backends, both stateful room types it ships
plus a small writable one). Every text frame a client receives is checked against
the generated document as it arrives: a result against its method's result
schema (closed objects and all, so a field a handler adds without declaring it
fails here), an error against the codes its method declares (with the data
schema of codes that have one), a notification against its declared params, and
a notification method nobody declared fails outright.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar, cast

import pytest
import pytest_asyncio
from jsonschema import Draft202012Validator
from websockets.asyncio.client import ClientConnection

from rtctl.gateway.server import Gateway
from rtctl.protocol.upgrade import SUBPROTOCOL
from rtctl.services import builtin_services
from rtctl.services.drift import DriftRoom
from rtctl.services.state_live import LiveRoom
from rtctl.services.state_room import StateRoom
from rtctl.spec.openrpc import openrpc
from rtctl.state import Schema
from tests.conftest import client, gateway_config, make_token
from tests.services.conftest import Player

pytestmark = pytest.mark.asyncio(loop_scope="module")


class Board(Schema):
    title: str
    motto: str


class BoardRoom(StateRoom[Board]):
    """Client-writable fields, one of each policy, and an input that answers."""

    schema = Board
    tick_rate = 1e-4  # its own ticker never fires during a test
    writable: ClassVar[Mapping[str, str]] = {"title": "cas", "motto": "lww"}

    def on_input(self, user: str, data: Any) -> Any:
        return {"echo": data, "user": user}


DOCUMENT = openrpc(Gateway(gateway_config(), services=builtin_services(
    room_types={"drift": DriftRoom, "board": BoardRoom})).router)
RESULTS = {m["name"]: Draft202012Validator(m["result"]["schema"]) for m in DOCUMENT["methods"]}
NOTES = {n["name"]: Draft202012Validator(n["x-params-schema"])
         for n in DOCUMENT["x-notifications"]}
ERRORS = {m["name"]: {DOCUMENT["components"]["errors"][e["$ref"].rsplit("/", 1)[-1]]["code"]
                      for e in m["errors"]} for m in DOCUMENT["methods"]}
ERROR_DATA = {e["code"]: Draft202012Validator(e["x-data-schema"])
              for e in DOCUMENT["components"]["errors"].values() if "x-data-schema" in e}


class Wire:
    """A client's WebSocket that checks every text frame it receives (see the module)."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._calls: dict[Any, str] = {}  # request id → method, until its reply

    async def send(self, message: str, *, text: bool = True) -> None:
        request = json.loads(message)
        self._calls[request["id"]] = request["method"]
        await self._ws.send(message, text=text)

    async def recv(self) -> str | bytes:
        message = await self._ws.recv()
        if isinstance(message, str):
            self._check(json.loads(message))
        return message

    def _check(self, message: dict[str, Any]) -> None:
        if "method" in message:
            assert message["method"] in NOTES, f"undeclared notification: {message}"
            NOTES[message["method"]].validate(message.get("params"))
            return
        method = self._calls.pop(message["id"])
        if "result" in message:
            RESULTS[method].validate(message["result"])
            return
        code = message["error"]["code"]
        assert code in ERRORS[method], f"{method} answered undeclared {code}: {message}"
        if code in ERROR_DATA:
            ERROR_DATA[code].validate(message["error"].get("data"))


class Checked(Player):
    """A client whose every received frame is checked (:class:`Wire`)."""

    def __init__(self, ws: ClientConnection) -> None:
        super().__init__(cast(ClientConnection, Wire(ws)))

    async def error(self, method: str, params: Any) -> int:
        """The code of the error ``method`` answers (checked against its declared ones)."""
        reply = await self.call(method, params)
        assert "error" in reply, reply
        return int(reply["error"]["code"])


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def gw() -> AsyncIterator[Gateway]:
    gateway = Gateway(gateway_config(), services=builtin_services(
        room_types={"drift": DriftRoom, "board": BoardRoom}))
    await gateway.start()
    yield gateway
    await gateway.shutdown(drain=0)


class Connect:
    def __init__(self, gateway: Gateway, user: str, **kwargs: Any) -> None:
        self._cm = client(gateway.url, make_token(user), **kwargs)

    async def __aenter__(self) -> Checked:
        self.player = Checked(await self._cm.__aenter__())
        await self.player.result("sys.ping")  # its connect hooks have run (tests/services)
        return self.player

    async def __aexit__(self, *exc: object) -> None:
        if exc[0] is None:  # whatever was sent before this reply has been checked too
            await self.player.result("sys.ping")
        await self._cm.__aexit__(None, None, None)


async def test_sys_and_session(gw: Gateway) -> None:
    async with Connect(gw, "alice") as alice:
        assert await alice.result("sys.echo", {"any": [1, None]}) == {"any": [1, None]}
        info = await alice.result("session.info")
        assert info["user"] == "alice"
        assert info["resumed"] is False
        refreshed = await alice.result("session.refresh", {"token": make_token("alice")})
        assert refreshed["user"] == "alice"
        assert await alice.error("session.refresh", {"token": "not-a-token"}) == -32001
        sessions = await alice.result("session.list")
        assert [s["id"] for s in sessions] == [info["connection_id"]]


async def test_presence_and_its_changes(gw: Gateway) -> None:
    async with Connect(gw, "ann") as ann, Connect(gw, "ben") as ben:
        watched = await ann.result("presence.subscribe", {"users": ["ben", "nobody"]})
        assert watched["nobody"]["status"] == "offline"
        assert (await ben.result("presence.set", {"status": "away", "text": "brb"}))[
            "status"] == "away"
        changed = await ann.note("presence.changed")
        assert (changed["user"], changed["status"], changed["text"]) == ("ben", "away", "brb")
        assert (await ann.result("presence.get", {"users": ["ben"]}))["ben"]["text"] == "brb"
        assert await ann.result("presence.unsubscribe") == {"watching": []}


async def test_rooms_their_news_and_messages(gw: Gateway) -> None:
    async with Connect(gw, "cat") as cat, Connect(gw, "dan") as dan:
        first = await cat.result("room.join", {"room": "lobby"})
        assert first["members"] == ["cat"]
        await dan.result("room.join", {"room": "lobby"})
        assert await cat.note("room.joined") == {"room": "lobby", "user": "dan"}
        sent = await dan.result("room.publish", {"room": "lobby", "data": {"hi": 1}})
        message = await cat.note("room.message")
        assert (message["from"], message["offset"]) == ("dan", sent["offset"])
        assert await cat.error("room.publish", {"room": "elsewhere", "data": 1}) == -32003
        page = await cat.result("room.members", {"room": "lobby", "limit": 1})
        assert page["members"] == ["cat"]
        assert page["next"] is not None
        async with Connect(gw, "eve") as eve:  # joins with a position: replay, or why not
            replayed = await eve.result("room.join", {"room": "lobby", "since": {
                "offset": 0, "epoch": first["epoch"]}})
            assert (replayed["recovered"], replayed["replayed"]) == (True, 1)
            refused = await eve.result("room.join", {"room": "annex", "since": {
                "offset": 5, "epoch": "gone"}})
            assert refused["recovered"] is False
            assert "reason" in refused
            assert await dan.result("room.leave", {"room": "lobby"}) is None
            assert await cat.note("room.left") == {"room": "lobby", "user": "dan"}


async def test_a_big_rooms_diff(gw: Gateway) -> None:
    small = 100  # rtctl.services.room_delivery.DEFAULT_SMALL_ROOM: more is a big room
    for n in range(small):
        await gw.backends.rooms.join("hall", f"absent-{n}", f"absent-{n}")
    async with Connect(gw, "fay") as fay, Connect(gw, "gus") as gus:
        assert "members" not in await fay.result("room.join", {"room": "hall"})
        await gus.result("room.join", {"room": "hall"})
        diff = await fay.note("room.diff")
        assert "gus" in diff["joined"]
        assert diff["total"] == small + 2


async def test_a_stateful_room_over_json(gw: Gateway) -> None:
    async with Connect(gw, "hal", subprotocols=[SUBPROTOCOL]) as hal:
        joined = await hal.result("room.join", {"room": "drift:1", "options": {
            "entities": 3, "tick_rate": 120}})
        assert joined["encoding"] == "json"
        full = await hal.note("state.patch")
        assert "state" in full["message"]
        for _ in range(1000):  # deltas follow, one per tick (a tick in 8 ms): a few dozen
            if "base" in (await hal.note("state.patch"))["message"]:
                break
        else:
            pytest.fail("no delta among 1000 state.patch notifications")
        assert (await hal.result("state.schema", {"room": "drift:1"}))["root"] == "Arena"
        assert (await hal.result("state.info", {"room": "drift:1"}))["type"] == "DriftRoom"
        assert (await hal.result("state.resync", {"room": "drift:1"}))["version"] >= 1
        assert await hal.error("state.input", {"room": "drift:1", "data": 1}) == -32601


async def test_writes_to_a_stateful_room(gw: Gateway) -> None:
    async with Connect(gw, "ida", subprotocols=[SUBPROTOCOL]) as ida:
        joined = await ida.result("room.join", {"room": "board:1"})
        cas = await ida.result("state.update", {"room": "board:1", "path": "title",
                                                "value": "T", "expect_version": joined[
                                                    "version"]})
        assert cas["applied"] is True
        assert "clock" not in cas
        assert await ida.error("state.update", {"room": "board:1", "path": "title",
                                                "value": "U", "expect_version": joined[
                                                    "version"]}) == -32009
        stamp = [int(time.time() * 1000), 0, "ida-device"]
        lww = await ida.result("state.update", {"room": "board:1", "path": "motto",
                                                "value": "M", "clock": stamp})
        assert lww["clock"] == stamp
        late = await ida.result("state.update", {"room": "board:1", "path": "motto",
                                                 "value": "old", "clock": [0, 0, "x"]})
        assert late["applied"] is False
        assert await ida.result("state.input", {"room": "board:1", "data": 7}) == {
            "echo": 7, "user": "ida"}


async def test_a_member_that_fell_behind_is_caught_up(gw: Gateway,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # A member skipped while its queue drains gets one catch-up delta later
    # (LiveRoom.catch_up): the room is caught as it starts, and a member set one
    # version back stands in for one whose backlog made a flush skip it.
    started: list[LiveRoom] = []
    start = LiveRoom.start
    monkeypatch.setattr(LiveRoom, "start", lambda live: (started.append(live), start(live)))
    async with Connect(gw, "jo", subprotocols=[SUBPROTOCOL]) as jo, \
            Connect(gw, "kim", subprotocols=[SUBPROTOCOL]) as kim:
        await jo.result("room.join", {"room": "board:2"})
        await kim.result("room.join", {"room": "board:2"})
        await kim.note("state.patch")  # the full state at its join
        now = int(time.time() * 1000)
        await jo.result("state.update", {"room": "board:2", "path": "motto", "value": "a",
                                          "clock": [now, 1, "jo"]})
        assert "base" in (await kim.note("state.patch"))["message"]
        [live] = started
        behind = next(m for m in live.members.values() if m.peer.user == "kim")
        behind.sent -= 1
        lagging = behind.sent
        await jo.result("state.update", {"room": "board:2", "path": "motto", "value": "b",
                                          "clock": [now, 2, "jo"]})
        caught = await kim.note("state.patch")
        assert live.catch_ups == 1
        assert caught["message"]["base"] == lagging  # a delta from where it was
