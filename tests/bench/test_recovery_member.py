"""One storm client's recoveries counted from its client's events, fed by hand (no I/O).

The member's client never connects and its cable is never started: each test
hands the member the events its SDK client would announce, in the order the
SDK announces them (a room's ``RoomRecovery`` during the reconnect steps,
then the link's ``Recovered``, the replayed messages before or after).
"""

from __future__ import annotations

import math

from rtctl.bench.cable import Cable
from rtctl.bench.plan import Plan
from rtctl.bench.recovery_counts import Inbox, MessageCounts, RecoveryTotals
from rtctl.bench.recovery_member import Member, StormRoom
from rtctl.bench.results import Recorder
from rtctl.bench.scenario import Context
from rtctl.client import (
    Client,
    ClientState,
    Recovered,
    RoomMessage,
    RoomRecovery,
    ServerError,
    StateChanged,
)
from rtctl.client.rooms import RoomStream
from rtctl.protocol.streams import StreamPosition

URL = "ws://127.0.0.1:1/ws"  # nothing connects to it
DROP = StateChanged(ClientState.CONNECTED, ClientState.RECONNECTING)
RESUMED = Recovered("s1", True, None, 0.1, 0)


def member() -> Member:
    recorder = Recorder()
    recorder.open_window(0.0, math.inf)
    recorder.recovery = RecoveryTotals()
    ctx = Context(plan=Plan(scenario="reconnect-storm", url=URL, clients=2),
                  recorder=recorder, ramp_start=0.0)
    one = Member(ctx, StormRoom("r"), Client(URL), Cable(URL), publisher=False)
    one.inbox = Inbox(StreamPosition(0, "e"))
    return one


def replayed(count: int, upto: int) -> RoomRecovery:
    return RoomRecovery("r", True, count, None, StreamPosition(upto, "e"))


def hand(one: Member, *offsets: int) -> None:
    for offset in offsets:
        one.received(RoomMessage("r", "p", {"n": offset}, offset, "e"))


def test_a_recovery_ends_once_its_link_is_ready_and_its_replay_in() -> None:
    one = member()
    one.changed(DROP)
    one.room_recovered(replayed(3, upto=3))
    hand(one, 1, 2, 3)  # the replay is in, the link not ready yet
    assert one.attempt is not None
    one.recovered(RESUMED)
    assert one.attempt is None
    totals = one.totals
    assert (totals.recovered, totals.replayed.total, totals.resumed) == (1, 3, 1)
    assert one.ctx.recorder.count == 1


def test_a_link_that_drops_during_the_steps_is_the_same_recovery_counted_once() -> None:
    one = member()
    one.changed(DROP)
    one.room_recovered(replayed(3, upto=3))  # that link drops before it is ready ...
    hand(one, 1)
    one.room_recovered(replayed(4, upto=5))  # ... the next joins again from 1
    one.recovered(RESUMED)
    hand(one, 2, 3, 4)
    assert one.attempt is not None  # 5 has not come yet
    hand(one, 5)
    totals = one.totals
    assert (totals.attempts, totals.recovered, totals.replayed.total, totals.resumed) == (
        1, 1, 7, 1)
    assert one.ctx.recorder.count == 1


def test_a_reset_on_any_link_of_a_recovery_makes_it_a_reset() -> None:
    one = member()
    one.changed(DROP)
    one.room_recovered(RoomRecovery("r", False, 0, "too_old", StreamPosition(9, "e")))
    one.room_recovered(replayed(1, upto=10))  # a later link recovered from the new start
    one.recovered(Recovered("s2", False, "expired", 0.1, 0))
    totals = one.totals
    assert (totals.attempts, totals.recovered, dict(totals.resets)) == (1, 0, {"too_old": 1})
    assert dict(totals.not_resumed) == {"expired": 1}
    assert one.ctx.recorder.errors == {"reset too_old": 1}


async def test_a_failed_join_again_is_counted_once_and_the_member_leaves_its_stream(
        ) -> None:
    one = member()  # its join afresh waits for a connection that never comes: closed below
    hand(one, 1, 2)
    one.changed(DROP)
    one.room_recovered(RoomRecovery("r", False, 0, None, StreamPosition(2, "e"),
                                    ServerError(-32603, "boom")))
    one.recovered(RESUMED)
    assert (one.totals.attempts, one.totals.failed) == (1, 1)
    assert one.ctx.recorder.errors == {"rejoin failed": 1}
    assert one.inbox is not None
    assert one.inbox.stretches[-1].end == 2  # nothing after 2 is expected until joined afresh
    await one.close()


def test_at_the_end_an_unfinished_recovery_and_what_the_sdk_dropped_are_counted() -> None:
    one = member()
    one.room.ledger.record(1, StreamPosition(1, "e"), measured=True)
    stream = RoomStream("r", counters=one.rooms.counters)  # the SDK's own accounting
    stream.joined({"offset": 0, "epoch": "e"})
    for _ in range(2):  # the gateway sent offset 1 twice: the SDK hands it over once
        for event in stream.received(RoomMessage("r", "p", {"n": 1}, 1, "e")):
            assert isinstance(event, RoomMessage)
            one.received(event)
    one.changed(DROP)  # and the link dropped, never to recover before the end
    one.tally()
    totals = one.totals
    assert (totals.attempts, totals.unfinished, totals.success_rate) == (1, 1, 0.0)
    assert totals.resent == 1
    assert totals.messages == MessageCounts(expected=1, delivered=1)
