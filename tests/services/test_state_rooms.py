"""Stateful rooms on one node, without a gateway: snapshots, shared patches, slow members,
client writes (issue 11). Ticks are run by the test (the room type ticks once in hours)."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

from rtctl.backends import memory_backends
from rtctl.exceptions import InvalidParams, RpcError
from rtctl.protocol.codes import ErrorCode
from rtctl.protocol.frames import parse_state_frame
from rtctl.protocol.lanes import Lane
from rtctl.protocol.upgrade import SUBPROTOCOL
from rtctl.services.rooms import RoomService
from rtctl.services.sessions import SessionService
from rtctl.services.state import StateService
from rtctl.services.state_live import LiveRoom
from rtctl.services.state_room import StateRoom
from rtctl.state import Decoder, Schema, uint8, uint16
from rtctl.state.hlc import Stamp
from tests.services.fakes import FakeClock, FakeHost, FakePeer, ManualTimer
from tests.services.test_large_rooms import bus_settled

SLOW = 1e-4  # Hz: the room's own ticker never fires during a test


class Player(Schema):
    hp: uint8
    score: uint16
    name: str
    title: str


class Match(Schema):
    players: dict[str, Player]
    round: uint8


class MatchRoom(StateRoom[Match]):
    schema = Match
    tick_rate = SLOW
    writable: ClassVar[Mapping[str, str]] = {"players.*.name": "cas",
                                             "players.*.title": "lww"}

    def on_join(self, user: str) -> None:
        if user == "mallory":
            raise RpcError(ErrorCode.FORBIDDEN, "banned")
        self.state.players.setdefault(user, Player(hp=100, name=user))

    def on_leave(self, user: str) -> None:
        self.state.players.pop(user, None)

    def on_input(self, user: str, data: Any) -> Any:
        self.state.players[user].score += data["points"]
        return {"score": self.state.players[user].score}

    def on_tick(self, dt: float) -> None:
        self.state.round += 1


class Setup:
    """One node's rooms: a fake host, the state service and the room service over it."""

    def __init__(self, host: FakeHost | None = None,
                 types: Mapping[str, type[StateRoom[Any]]] | None = None) -> None:
        self.host = host or FakeHost()
        self.state = StateService(self.host, types or {"match": MatchRoom})
        self.rooms = RoomService(self.host, SessionService(self.host), timer=ManualTimer(),
                                 stateful=self.state)

    async def join(self, peer: FakePeer, room: str = "match:1", **params: Any) -> Any:
        return await self.rooms.join(peer.context(), room, **params)

    def live(self, room: str = "match:1") -> LiveRoom:
        live = self.state.room(room)
        assert live is not None
        return live

    def tick(self, room: str = "match:1") -> None:
        live = self.live(room)
        live.instance.on_tick(0.05)
        live.flush()


def copy_of(peer: FakePeer, room: str = "match:1") -> Decoder:
    """What ``peer``'s client holds after applying everything it was sent, in order."""
    decoder = Decoder(Match)
    for frame in peer.binary:
        name, message = parse_state_frame(frame)
        assert name == room
        decoder.apply(message)
    for note in peer.received:
        if note["method"] == "state.patch":
            decoder.apply(note["params"]["message"])
    return decoder


@pytest.fixture
async def setup() -> Setup:
    return Setup()


async def test_a_joiner_gets_the_version_then_the_full_state(setup: Setup) -> None:
    alice = FakePeer("c1", "alice")
    reply = await setup.join(alice)
    start = (await setup.host.backends.history.position("match:1")).to_json()
    assert reply == {"members": ["alice"], "total": 1, "version": 1, "encoding": "binary",
                     **start}
    assert len(alice.binary) == 1
    assert copy_of(alice).state.to_dict() == {"players": {"alice": {
        "hp": 100, "score": 0, "name": "alice", "title": ""}}, "round": 0}
    assert copy_of(alice).version == reply["version"]


async def test_members_share_one_frame_per_tick_and_stay_equal(setup: Setup) -> None:
    alice, bob = FakePeer("c1", "alice"), FakePeer("c2", "bob")
    await setup.join(alice)
    await setup.join(bob)  # alice gets bob's arrival as a delta, bob the full state
    for _ in range(3):
        setup.tick()
    assert alice.binary[-1] is bob.binary[-1]  # encoded once for everyone
    info = setup.state.info(alice.context(), "match:1")
    # alice's and bob's arrivals and three ticks; the two full states are not patches
    assert (info["patches"], info["fulls"]) == (5, 2)
    server = setup.live().instance.state.to_dict()
    assert copy_of(alice).state.to_dict() == copy_of(bob).state.to_dict() == server
    assert server["round"] == 3


async def test_a_json_member_gets_the_same_state_as_notifications(setup: Setup) -> None:
    carol = FakePeer("c3", "carol", subprotocol=SUBPROTOCOL)
    reply = await setup.join(carol)
    assert reply["encoding"] == "json"
    setup.tick()
    await setup.rooms.join(FakePeer("c4", "dave").context(), "match:1")
    setup.tick()
    assert carol.binary == []
    assert [n["method"] for n in carol.received].count("state.patch") == 4
    assert copy_of(carol).state.to_dict() == setup.live().instance.state.to_dict()


async def test_a_slow_member_gets_one_delta_once_it_has_read(setup: Setup) -> None:
    alice, slow = FakePeer("c1", "alice"), FakePeer("c2", "slow")
    await setup.join(alice)
    await setup.join(slow)
    sent = len(slow.binary)
    slow.queued[Lane.STATE] = 1000  # its socket has not taken the state sent
    for _ in range(20):
        setup.tick()
    assert len(slow.binary) == sent  # nothing queued behind, tick after tick
    slow.queued[Lane.STATE] = 0
    setup.tick()
    assert len(slow.binary) == sent + 1  # one delta from the last version it was sent
    _, message = parse_state_frame(slow.binary[-1])
    assert message[0] == 0x03  # absolute: values the encoder no longer keeps per version
    assert copy_of(slow).state.to_dict() == setup.live().instance.state.to_dict()
    assert copy_of(slow).version == copy_of(alice).version


async def test_a_member_behind_the_history_gets_the_full_state(setup: Setup) -> None:
    slow = FakePeer("c2", "slow")
    await setup.join(slow)
    setup.live().encoder._history = 5
    slow.queued[Lane.STATE] = 1
    for _ in range(10):
        setup.tick()
    slow.queued[Lane.STATE] = 0
    setup.tick()
    _, message = parse_state_frame(slow.binary[-1])
    assert message[0] == 0x01
    assert copy_of(slow).state.to_dict() == setup.live().instance.state.to_dict()


async def test_resync_sends_the_full_state_again(setup: Setup) -> None:
    alice = FakePeer("c1", "alice")
    await setup.join(alice)
    setup.tick()
    reply = setup.state.resync(alice.context(), "match:1")
    assert reply == {"version": setup.live().encoder.version}
    _, message = parse_state_frame(alice.binary[-1])
    assert message[0] == 0x01
    decoder = Decoder(Match)
    decoder.apply(message)
    assert decoder.version == reply["version"]


async def test_input_reaches_the_room_and_lands_at_the_next_tick(setup: Setup) -> None:
    alice = FakePeer("c1", "alice")
    await setup.join(alice)
    assert setup.state.input(alice.context(), "match:1", {"points": 7}) == {"score": 7}
    setup.tick()
    assert copy_of(alice).state.players["alice"].score == 7


async def test_calls_name_what_is_wrong_with_the_room(setup: Setup) -> None:
    alice = FakePeer("c1", "alice")
    with pytest.raises(InvalidParams, match="not a stateful room"):
        setup.state.input(alice.context(), "lobby", {})
    with pytest.raises(RpcError, match="join it first") as err:
        setup.state.resync(alice.context(), "match:1")
    assert err.value.code == ErrorCode.FORBIDDEN
    with pytest.raises(InvalidParams, match="options"):
        await setup.join(alice, room="lobby", options={"x": 1})


async def test_a_refused_join_leaves_nothing_behind(setup: Setup) -> None:
    with pytest.raises(RpcError, match="banned"):
        await setup.join(FakePeer("c9", "mallory"))
    assert setup.state.room("match:1") is None
    assert await setup.host.backends.rooms.members("match:1", after=None, limit=10) == ([], 0)


async def test_leaving_runs_on_leave_and_the_last_one_out_closes_the_room(setup: Setup) -> None:
    alice, bob = FakePeer("c1", "alice"), FakePeer("c2", "bob")
    await setup.join(alice)
    await setup.join(bob)
    await setup.rooms.leave(bob.context(), "match:1")
    setup.tick()
    assert list(copy_of(alice).state.players) == ["alice"]
    await setup.rooms.leave(alice.context(), "match:1")
    assert setup.state.room("match:1") is None


# -- client writes ---------------------------------------------------------------


async def test_a_server_only_field_refuses_writes_naming_it(setup: Setup) -> None:
    alice = FakePeer("c1", "alice")
    await setup.join(alice)
    with pytest.raises(RpcError) as err:
        setup.state.update(alice.context(), "match:1", "players.alice.hp", 255)
    assert err.value.code == ErrorCode.FORBIDDEN
    assert err.value.data == {"field": "players.alice.hp"}


async def test_compare_and_set_wins_once_and_the_loser_learns_the_current_value(
    setup: Setup,
) -> None:
    alice, bob = FakePeer("c1", "alice"), FakePeer("c2", "bob")
    await setup.join(alice)
    await setup.join(bob)
    read = setup.live().encoder.version
    path = "players.alice.name"
    # the entity was last changed when alice joined, at or before the version read
    won = setup.state.update(alice.context(), "match:1", path, "Ada", expect_version=read)
    assert won["applied"] is True
    assert won["value"] == "Ada"
    with pytest.raises(RpcError) as err:
        setup.state.update(bob.context(), "match:1", path, "Bob's", expect_version=read)
    assert err.value.code == ErrorCode.CONFLICT
    assert err.value.data == {"path": path, "version": won["version"], "value": "Ada"}
    retry = setup.state.update(bob.context(), "match:1", path, "Ada2",
                               expect_version=err.value.data["version"])
    assert retry["applied"] is True
    assert copy_of(alice).state.players["alice"].name == "Ada2"


async def test_compare_and_set_checks_its_params(setup: Setup) -> None:
    alice = FakePeer("c1", "alice")
    await setup.join(alice)
    with pytest.raises(InvalidParams, match="expect_version"):
        setup.state.update(alice.context(), "match:1", "players.alice.name", "x")
    with pytest.raises(InvalidParams, match=r"nothing at players\.zed"):
        setup.state.update(alice.context(), "match:1", "players.zed.name", "x",
                           expect_version=1)
    with pytest.raises(InvalidParams, match="str field"):
        setup.state.update(alice.context(), "match:1", "players.alice.name", 5,
                           expect_version=setup.live().encoder.version)


async def test_last_writer_wins_by_clock_not_by_arrival(setup: Setup) -> None:
    alice = FakePeer("c1", "alice")
    await setup.join(alice)
    now_ms = int(setup.host.clock() * 1000)
    path = "players.alice.title"
    newer = setup.state.update(alice.context(), "match:1", path, "newer",
                               clock=[now_ms, 0, "b"])
    assert newer["applied"] is True
    older = setup.state.update(alice.context(), "match:1", path, "older",
                               clock=[now_ms - 5, 3, "a"])
    assert older == {"applied": False, "version": newer["version"], "value": "newer",
                     "clock": [now_ms, 0, "b"]}
    tie = setup.state.update(alice.context(), "match:1", path, "tie", clock=[now_ms, 0, "c"])
    assert tie["applied"] is True  # equal times: the node id breaks the tie, the same everywhere
    assert Stamp(now_ms, 0, "c") > Stamp(now_ms, 0, "b")
    with pytest.raises(InvalidParams, match="ahead"):
        setup.state.update(alice.context(), "match:1", path, "x", clock=[now_ms + 120_000, 0, "a"])
    with pytest.raises(InvalidParams, match="clock"):
        setup.state.update(alice.context(), "match:1", path, "x")


def test_bad_room_types_are_refused_at_start_up() -> None:
    class NoSchema(StateRoom[Match]):
        pass

    host = FakeHost()
    for types, why in [({"a:b": MatchRoom}, "name"), ({"x": NoSchema}, "no schema"),
                       ({"x": dict}, "not a StateRoom")]:
        with pytest.raises(ValueError, match=why):
            StateService(host, types)  # type: ignore[arg-type]


# -- ownership and snapshots -------------------------------------------------------


class KeptRoom(MatchRoom):
    snapshot_every = 3
    restored: ClassVar[list[str]] = []

    def on_restore(self) -> None:
        KeptRoom.restored.append(self.name)


def node(backends: Any, name: str, clock: FakeClock) -> Setup:
    return Setup(FakeHost(dataclasses.replace(backends, node_id=name), clock=clock),
                 {"match": KeptRoom})


def slow_claims() -> FakeHost:
    clock = FakeClock()
    backends = memory_backends(clock=clock)
    return FakeHost(dataclasses.replace(backends, snapshots=SlowClaims(backends.snapshots)),
                    clock=clock)


async def kept(setup: Setup, room: str = "match:1") -> tuple[int, bytes] | None:
    await asyncio.gather(*setup.state._keeping.values())
    return await setup.host.backends.snapshots.get(room)


async def test_a_room_lives_on_one_node_and_another_node_says_which() -> None:
    clock = FakeClock()
    n1 = node(memory_backends(clock=clock), "n1", clock)
    n2 = node(n1.host.backends, "n2", clock)
    await n1.join(FakePeer("c1", "alice"))
    with pytest.raises(RpcError) as err:
        await n2.join(FakePeer("c2", "bob"))
    assert err.value.code == ErrorCode.WRONG_NODE
    assert err.value.data == {"room": "match:1", "node": "n1"}
    assert n2.state.room("match:1") is None


async def test_when_its_node_dies_the_room_resumes_elsewhere_from_its_snapshot() -> None:
    KeptRoom.restored.clear()
    clock = FakeClock()
    n1 = node(memory_backends(clock=clock), "n1", clock)
    alice = FakePeer("c1", "alice")
    await n1.join(alice)
    for _ in range(7):
        n1.tick()
    snapshot = await kept(n1)
    assert snapshot is not None
    version, data = snapshot
    assert version >= 6  # kept every 3 versions
    saved = Decoder(Match)
    saved.apply(data)
    # n1 dies without a word: its claim lapses after the node TTL
    await n1.live().stop()
    clock.now += n1.host.backends.node_ttl + 1
    n2 = node(n1.host.backends, "n2", clock)
    bob = FakePeer("c2", "bob")
    reply = await n2.join(bob)
    assert KeptRoom.restored == ["match:1"]
    assert reply["version"] > version  # versions go on: no client mistakes it for older
    state = copy_of(bob).state.to_dict()
    assert state["round"] == saved.state.round
    assert set(state["players"]) == {"alice", "bob"}  # alice's entity came back with it


async def test_a_room_that_ends_starts_afresh() -> None:
    clock = FakeClock()
    n1 = node(memory_backends(clock=clock), "n1", clock)
    alice = FakePeer("c1", "alice")
    await n1.join(alice)
    for _ in range(7):
        n1.tick()
    assert await kept(n1) is not None
    await n1.rooms.leave(alice.context(), "match:1")
    assert await n1.host.backends.snapshots.get("match:1") is None
    n2 = node(n1.host.backends, "n2", clock)  # and any node may take the name now
    reply = await n2.join(FakePeer("c2", "bob"))
    assert reply["version"] == 1
    assert n2.live().instance.state.round == 0


async def test_a_room_whose_players_all_dropped_resumes_where_it_was() -> None:
    clock = FakeClock()
    n1 = node(memory_backends(clock=clock), "n1", clock)
    alice = FakePeer("c1", "alice")
    await n1.join(alice)
    n1.tick()
    n1.tick()  # round 2: not yet a kept snapshot (every 3 versions)
    version = n1.live().encoder.version
    await n1.state.left("match:1", "c1", leaving=False)  # e.g. this node drains on SIGTERM
    assert n1.state.room("match:1") is None
    snapshot = await kept(n1)
    assert snapshot is not None
    assert snapshot[0] == version + 1  # the final state: on_leave's change included
    version = snapshot[0]
    n2 = node(n1.host.backends, "n2", clock)  # the claim was released: no wait
    bob = FakePeer("c2", "bob")
    reply = await n2.join(bob)
    assert reply["version"] > version
    assert copy_of(bob).state.round == 2


async def test_a_refused_first_join_releases_the_claim() -> None:
    clock = FakeClock()
    n1 = node(memory_backends(clock=clock), "n1", clock)
    with pytest.raises(RpcError, match="banned"):
        await n1.join(FakePeer("c9", "mallory"))
    n2 = node(n1.host.backends, "n2", clock)
    assert (await n2.join(FakePeer("c2", "bob")))["version"] == 1


async def test_a_refused_join_is_never_announced(setup: Setup) -> None:
    alice = FakePeer("c1", "alice")
    await setup.join(alice)
    await bus_settled(setup.host.backends, "match:1")
    seen = len(alice.received)
    with pytest.raises(RpcError, match="banned"):
        await setup.join(FakePeer("c9", "mallory"))
    await bus_settled(setup.host.backends, "match:1")
    assert alice.received[seen:] == []  # neither room.joined nor room.left


class SlowClaims:
    """The memory snapshot store, giving the loop away on every claim as Redis would."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def own(self, room: str, node: str, *, ttl: float) -> str:
        await asyncio.sleep(0)
        return str(await self.inner.own(room, node, ttl=ttl))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_joins_racing_to_create_a_room_create_it_once() -> None:
    created: list[str] = []

    class Counted(MatchRoom):
        def on_create(self) -> None:
            created.append(self.name)

    state = Setup(slow_claims(), {"match": Counted}).state
    peers = [FakePeer(f"c{i}", f"u{i}") for i in range(3)]
    replies = await asyncio.gather(*(state.joined("match:1", p, None) for p in peers))
    assert created == ["match:1"]
    live = state.room("match:1")
    assert live is not None
    assert set(live.members) == {"c0", "c1", "c2"}
    assert all(r["encoding"] == "binary" for r in replies)
    assert state._opening == {}
    await live.stop()


async def test_a_join_while_the_room_ends_waits_and_starts_afresh() -> None:
    clock = FakeClock()
    n1 = node(memory_backends(clock=clock), "n1", clock)
    alice = FakePeer("c1", "alice")
    await n1.join(alice)
    for _ in range(7):
        n1.tick()  # snapshots are kept meanwhile
    assert await kept(n1) is not None
    leaving = asyncio.ensure_future(n1.rooms.leave(alice.context(), "match:1"))
    await asyncio.sleep(0)  # the room is ending: stopping its ticker, forgetting its snapshot
    reply = await n1.join(FakePeer("c2", "bob"))
    await leaving
    assert reply["version"] == 1  # a new life, not the old one resumed from its snapshot
    assert n1.live().instance.state.round == 0
    assert await n1.host.backends.snapshots.own("match:1", "n2", ttl=10) == "n1"  # still ours


@pytest.mark.parametrize("steps", range(1, 6))  # the handler has started: its task ran
async def test_a_connection_that_ends_while_its_join_is_under_way_leaves_no_member(
    steps: int,
) -> None:
    setup = Setup(slow_claims())
    state, rooms = setup.state, setup.rooms
    alice = FakePeer("c1", "alice")
    join = asyncio.ensure_future(rooms.join(alice.context(), "match:1"))
    for _ in range(steps):
        await asyncio.sleep(0)
    await rooms._detached("c1")  # the disconnect hooks, at any point of the join
    await rooms._ended("c1", "alice")
    await join
    live = state.room("match:1")
    assert live is None or "c1" not in live.members


class Scores(Schema):
    round: uint8
    board: dict[str, uint16]
    tags: list[str]
    players: dict[str, Player]


class ScoresRoom(StateRoom[Scores]):
    schema = Scores
    tick_rate = SLOW
    writable: ClassVar[Mapping[str, str]] = {"round": "cas", "board.*": "cas", "tags.*": "lww",
                                             "players.*.title": "lww"}

    def on_join(self, user: str) -> None:
        self.state.board[user] = 0
        self.state.tags.append(user)
        self.state.players[user] = Player(name=user)

    def on_tick(self, dt: float) -> None:
        self.state.board["server"] = self.state.board.get("server", 0) + 1


async def test_a_root_field_or_a_map_entry_is_its_own_entity_for_compare_and_set() -> None:
    setup = Setup(types={"s": ScoresRoom})
    state, rooms = setup.state, setup.rooms
    alice = FakePeer("c1", "alice")
    await rooms.join(alice.context(), "s:1")
    read = state.room("s:1").encoder.version  # type: ignore[union-attr]
    for _ in range(3):  # the server's own entry changes every tick: not alice's business
        state.room("s:1").flush()  # type: ignore[union-attr]
        state.room("s:1").instance.on_tick(0.05)  # type: ignore[union-attr]
    assert state.update(alice.context(), "s:1", "board.alice", 5,
                        expect_version=read)["applied"] is True
    assert state.update(alice.context(), "s:1", "round", 2, expect_version=read)["applied"]


async def test_paths_are_checked_and_one_field_has_one_name() -> None:
    setup = Setup(types={"s": ScoresRoom})
    host, state, rooms = setup.host, setup.state, setup.rooms
    alice = FakePeer("c1", "alice")
    await rooms.join(alice.context(), "s:1")
    now_ms = int(host.clock() * 1000)
    for path, why in [("tags.²", "nothing at tags.²"), ("tags.9", "a list index is 0 to 0"),
                      ("round.x", "round is a single value"), ("", "nothing at"),
                      ("players.alice", "is not a single value")]:
        with pytest.raises(InvalidParams, match=re.escape(why)):
            state.update(alice.context(), "s:1", path, "x", clock=[now_ms, 0, "a"])
    first = state.update(alice.context(), "s:1", "tags.0", "a", clock=[now_ms, 5, "a"])
    assert first["applied"] is True
    alias = state.update(alice.context(), "s:1", "tags.00", "b", clock=[now_ms, 1, "a"])
    assert alias["applied"] is False  # the same field by another spelling: the same clock
