"""One room's place in its message stream (:class:`RoomStream`), alone: messages, join
answers and acknowledgements in, what to deliver and report out; no I/O."""

from __future__ import annotations

from typing import Any

import pytest

from rtctl.client import RoomMessage, RoomRecovery
from rtctl.client.rooms import MAX_AHEAD, RoomStream
from rtctl.config import Recovery
from rtctl.protocol.streams import REASONS, StreamPosition

P = StreamPosition
ROOM = "r"


def msg(offset: int, epoch: str = "e1", sender: str = "bob") -> RoomMessage:
    return RoomMessage(ROOM, sender, {"n": offset}, offset, epoch)


def joined_at(offset: int, epoch: str = "e1") -> RoomStream:
    stream = RoomStream(ROOM)
    assert stream.joined({"offset": offset, "epoch": epoch, "total": 1}) == []
    return stream


def recovered(offset: int, replayed: int) -> dict[str, Any]:
    return {"offset": offset, "epoch": "e1", "recovered": True, "replayed": replayed}


def test_the_first_join_delivers_what_came_before_its_answer_after_its_start() -> None:
    stream = RoomStream(ROOM, {"seed": 1})
    assert stream.join_params() == {"room": ROOM, "options": {"seed": 1}}
    assert stream.received(msg(4)) == stream.received(msg(5)) == []  # held
    assert stream.joined({"offset": 4, "epoch": "e1"}) == [msg(5)]
    assert stream.position == P(5, "e1")
    assert stream.join_params() == {"room": ROOM, "options": {"seed": 1},
                                    "since": {"offset": 5, "epoch": "e1"}}


def test_duplicates_are_dropped_by_offset() -> None:
    stream = joined_at(3)
    assert [stream.received(m) for m in (msg(4), msg(4), msg(2), msg(5))] == [
        [msg(4)], [], [], [msg(5)]]
    assert stream.counters.duplicates == 2


def test_an_own_publish_counts_once_everything_before_it_has_come() -> None:
    stream = joined_at(3)
    stream.acked(P(5, "e1"))  # 4, someone else's, may still be on its way
    assert stream.position == P(3, "e1")
    assert stream.received(msg(4)) == [msg(4)]
    assert stream.position == P(5, "e1")
    stream.acked(P(7, "e1"))
    stream.acked(P(6, "e1"))  # acknowledgements may come in any order
    assert stream.position == P(7, "e1")


def test_a_message_overtaken_on_a_slower_lane_is_delivered_when_it_comes() -> None:
    stream = joined_at(3)
    assert stream.received(msg(5)) == [msg(5)]  # events overtook 4 (chat)
    assert stream.position == P(3, "e1")  # a join again would still ask for 4
    assert stream.received(msg(5)) == []
    assert stream.received(msg(4)) == [msg(4)]
    assert stream.position == P(5, "e1")
    assert stream.counters.duplicates == 1


def test_a_hole_open_for_max_ahead_messages_is_given_up_on_but_still_filled() -> None:
    stream = joined_at(0)  # 1 was shed, or is a chat message overtaken by a flood of events
    for offset in range(2, MAX_AHEAD + 1):
        assert stream.received(msg(offset)) == [msg(offset)]
    assert stream.position == P(0, "e1")
    assert stream.received(msg(MAX_AHEAD + 1)) == [msg(MAX_AHEAD + 1)]  # one more: given up
    assert stream.position == P(MAX_AHEAD + 1, "e1")  # up to the next hole
    assert stream.received(msg(1)) == [msg(1)]  # it came after all: delivered, late
    assert stream.received(msg(1)) == []  # and once
    assert (stream.counters.late, stream.counters.duplicates) == (1, 1)


def test_a_position_never_trails_the_newest_offset_by_more_than_max_ahead() -> None:
    """Every other message shed: the offsets held ahead are few, but their span is what a
    join again would ask to be replayed (the gateway replays at most its history)."""
    stream = joined_at(0)
    for offset in range(2, 4 * MAX_AHEAD, 2):
        stream.received(msg(offset))
        assert stream.position is not None
        assert offset - stream.position.offset <= MAX_AHEAD


def test_holes_given_up_on_are_remembered_up_to_max_ahead_the_oldest_forgotten() -> None:
    m = MAX_AHEAD
    stream = joined_at(0)
    stream.acked(P(2 * m + 1, "e1"))  # 1 .. 2m are holes
    for offset in range(2 * m + 2, 3 * m + 2):
        stream.received(msg(offset))
    assert stream.position == P(3 * m + 1, "e1")  # given up on: the newest m remembered
    for offset in range(3 * m + 3, 4 * m + 4):  # one more hole, 3m + 2, given up on
        stream.received(msg(offset))
    assert stream.position == P(4 * m + 3, "e1")
    # m was never remembered, m + 1 forgotten for 3m + 2; m + 2 and 3m + 2 still fill.
    assert [stream.received(msg(offset)) for offset in (m, m + 1, m + 2, 3 * m + 2)] == [
        [], [], [msg(m + 2)], [msg(3 * m + 2)]]
    assert (stream.counters.late, stream.counters.duplicates) == (2, 2)


def test_a_position_held_back_by_a_hole_is_still_within_a_default_replay() -> None:
    # A join again from it is replayed, not reset as too_many.
    assert Recovery().history.max_replay > MAX_AHEAD


def test_a_reset_forgets_the_holes_given_up_on() -> None:
    stream = joined_at(0)
    for offset in range(2, MAX_AHEAD + 3):
        stream.received(msg(offset))
    stream.joining()
    stream.joined({"offset": 10, "epoch": "e1", "recovered": False, "reason": "too_old"})
    assert stream.received(msg(1)) == []  # before the new start
    assert stream.counters.late == 0


def test_an_own_message_replayed_to_a_new_session_is_dropped() -> None:
    stream = joined_at(3)
    stream.acked(P(5, "e1"))
    stream.joining()  # the session was not resumed: its own messages are replayed too
    assert stream.join_params()["since"] == {"offset": 3, "epoch": "e1"}
    for offset in (4, 5, 6):
        assert stream.received(msg(offset, sender="alice" if offset == 5 else "bob")) == []
    assert stream.joined(recovered(6, 3)) == [RoomRecovery(ROOM, True, 3, None, P(6, "e1")),
                                              msg(4), msg(6)]
    assert (stream.position, stream.counters.duplicates) == (P(6, "e1"), 1)


def test_a_recovered_join_again_reports_then_delivers_the_replay_in_order() -> None:
    stream = joined_at(3)
    stream.joining()
    assert stream.received(msg(4)) == []  # replayed before the answer
    assert stream.joined(recovered(5, 2)) == [RoomRecovery(ROOM, True, 2, None, P(5, "e1")),
                                              msg(4)]
    assert stream.received(msg(5)) == [msg(5)]  # replayed after it
    assert stream.received(msg(6)) == [msg(6)]  # live
    counters = stream.counters
    assert (counters.recovered, counters.replayed, counters.resets) == (1, 2, 0)


@pytest.mark.parametrize("reason", REASONS)
def test_a_reset_reports_its_reason_and_starts_at_the_current_position(reason: str) -> None:
    stream = joined_at(3)
    stream.acked(P(5, "e1"))
    stream.joining()
    assert stream.received(msg(9, "e2")) == stream.received(msg(10, "e2")) == []
    events = stream.joined({"offset": 9, "epoch": "e2", "recovered": False, "reason": reason})
    assert events == [RoomRecovery(ROOM, False, 0, reason, P(9, "e2")), msg(10, "e2")]
    assert (stream.position, stream.counters.resets) == (P(10, "e2"), 1)


def test_a_live_message_of_a_new_epoch_is_a_reset() -> None:
    stream = joined_at(3)
    assert stream.received(msg(1, "e2")) == [
        RoomRecovery(ROOM, False, 0, "epoch_changed", P(0, "e2")), msg(1, "e2")]
    assert (stream.position, stream.counters.resets) == (P(1, "e2"), 1)


def test_an_acknowledgement_of_another_epoch_is_not_counted() -> None:
    stream = joined_at(3)
    stream.acked(P(4, "e2"))  # the stream was reset; its messages say so when they come
    assert stream.received(msg(4)) == [msg(4)]


@pytest.mark.parametrize("reply", [
    [], {"offset": 1}, {"offset": -1, "epoch": "e1"}, {"offset": 1, "epoch": ""},
    {"offset": 1, "epoch": "e1", "recovered": True},
    {"offset": 1, "epoch": "e1", "recovered": False},
])
def test_a_malformed_join_answer_is_a_value_error(reply: Any) -> None:
    stream = joined_at(0)
    stream.joining()
    with pytest.raises(ValueError, match=r"must be|not an object"):
        stream.joined(reply)
    assert stream.position == P(0, "e1")
