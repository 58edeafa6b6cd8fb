"""The per-room sequencer alone: order, holes filled from history, duplicates, epochs."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from rtctl.backends.base import HistoryEntry, Replay, Unrecoverable
from rtctl.protocol.streams import Reason, StreamPosition
from rtctl.services.room_stream import Lost, RoomStream, Start, Step, StreamMessage


def msg(offset: int, epoch: str = "e1") -> StreamMessage:
    return StreamMessage(offset, epoch, f"s{offset}", "alice", offset)


def replay(end: int, offsets: Iterable[int], epoch: str = "e1") -> Replay:
    return Replay(StreamPosition(end, epoch), tuple(
        HistoryEntry(o, {"from": "alice", "data": o, "session": f"s{o}"}) for o in offsets))


def offsets(step: Step) -> list[int]:
    return [m.offset for m in step.deliver]


def started(offset: int = 0, epoch: str = "e1") -> RoomStream:
    stream = RoomStream()
    assert stream.start(StreamPosition(offset, epoch)) == Step()
    return stream


def test_messages_in_order_go_out_at_once() -> None:
    stream = started(4)
    assert [stream.receive(msg(o)) for o in (5, 6, 7)] == [Step((msg(o),)) for o in (5, 6, 7)]
    assert stream.position == StreamPosition(7, "e1")


def test_only_the_next_message_with_nothing_waiting_is_taken_at_once() -> None:
    stream = started(4)
    assert [stream.takes(msg(o)) for o in (5, 7, 5, 6)] == [True, False, False, True]
    assert stream.receive(msg(8)).read == StreamPosition(6, "e1")  # held; 7 is asked for
    assert stream.takes(msg(7)) is False  # 8 waits: 7 must go through receive
    assert offsets(stream.receive(msg(7))) == [7, 8]


def test_reordered_messages_go_out_in_order_and_the_fill_adds_nothing_twice() -> None:
    stream = started()
    assert offsets(stream.receive(msg(1))) == [1]
    early = stream.receive(msg(3))
    assert (offsets(early), early.read) == ([], StreamPosition(1, "e1"))
    assert offsets(stream.receive(msg(2))) == [2, 3]  # the late one closes the hole
    assert stream.filled(replay(3, [2, 3])) == Step()  # already out: nothing again
    assert offsets(stream.receive(msg(4))) == [4]


def test_a_message_lost_on_the_bus_is_filled_from_history_before_anything_newer() -> None:
    stream = started()
    stream.receive(msg(1))
    assert stream.receive(msg(3)).read == StreamPosition(1, "e1")
    assert stream.receive(msg(4)) == Step()  # one read in flight per room
    assert offsets(stream.filled(replay(3, [2, 3]))) == [2, 3, 4]
    assert stream.reading is None


def test_duplicates_are_dropped() -> None:
    stream = started()
    delivered = [o for m in (1, 1, 2, 1, 3, 2) for o in offsets(stream.receive(msg(m)))]
    assert delivered == [1, 2, 3]
    held = stream.receive(msg(5))
    assert stream.receive(msg(5)) == Step()  # held once, not twice
    assert offsets(stream.filled(replay(5, [4, 5]))) == [4, 5]
    assert held.read == StreamPosition(3, "e1")


def test_a_read_that_leaves_a_later_hole_asks_again() -> None:
    stream = started()
    stream.receive(msg(1))
    stream.receive(msg(3))
    stream.receive(msg(6))  # arrived after the read was asked for: 4 and 5 are missing too
    step = stream.filled(replay(3, [2, 3]))
    assert (offsets(step), step.read) == ([2, 3], StreamPosition(3, "e1"))
    assert offsets(stream.filled(replay(6, [4, 5, 6]))) == [4, 5, 6]


def test_messages_before_the_start_wait_for_it() -> None:
    stream = RoomStream()
    for o in (3, 5, 4, 2):
        assert stream.receive(msg(o)) == Step()
    assert not stream.started
    assert offsets(stream.start(StreamPosition(2, "e1"))) == [3, 4, 5]
    assert stream.start(StreamPosition(0, "e1")) == Step()  # only the first counts
    assert stream.position == StreamPosition(5, "e1")


@pytest.mark.parametrize("reason", ["too_old", "too_many", "unknown_offset"])
def test_an_unfillable_hole_is_reported_and_skipped(reason: Reason) -> None:
    stream = started(1)
    stream.receive(msg(5))
    stream.receive(msg(7))
    step = stream.filled(Unrecoverable(StreamPosition(7, "e1"), reason))
    # 2 to 4 are gone; 5 goes out; 6 may still be there, so history is asked again
    assert step == Step((msg(5),), StreamPosition(5, "e1"), (Lost("e1", 1, 4, reason),))
    assert offsets(stream.filled(replay(7, [6, 7]))) == [6, 7]


def test_a_new_epoch_starts_the_stream_over_from_history() -> None:
    stream = started(8)
    assert stream.receive(msg(2, "e2")).read == StreamPosition(8, "e1")
    step = stream.filled(Unrecoverable(StreamPosition(2, "e2"), "epoch_changed"))
    assert (step.read, step.lost) == (StreamPosition(0, "e2"), (Lost("e1", 8, None,
                                                                     "epoch_changed"),))
    assert offsets(stream.filled(replay(2, [1, 2], "e2"))) == [1, 2]
    assert stream.position == StreamPosition(2, "e2")


def test_a_new_epochs_first_message_goes_out_once_the_store_confirms_it() -> None:
    stream = started(8)
    stream.receive(msg(1, "e2"))
    step = stream.filled(Unrecoverable(StreamPosition(1, "e2"), "epoch_changed"))
    assert (offsets(step), step.read) == ([1], None)


def test_a_straggler_of_a_lost_epoch_is_dropped_without_a_reset() -> None:
    stream = started(1, "e2")
    stream.receive(msg(9, "e1"))
    assert stream.filled(replay(1, [], "e2")) == Step()
    assert offsets(stream.receive(msg(2, "e2"))) == [2]


def test_a_stranger_that_arrives_during_a_read_is_judged_by_the_next() -> None:
    stream = started(1)
    stream.receive(msg(3))  # read since 1 in flight
    stream.receive(msg(1, "e2"))  # the store may have moved on after that read began
    step = stream.filled(replay(3, [2, 3]))
    assert (offsets(step), step.read) == ([2, 3], StreamPosition(3, "e1"))
    step = stream.filled(Unrecoverable(StreamPosition(1, "e2"), "epoch_changed"))
    assert offsets(step) == [1]
    assert stream.position == StreamPosition(1, "e2")


def test_a_failed_read_is_asked_again_on_retry() -> None:
    stream = started()
    stream.receive(msg(2))
    stream.unfilled()
    assert stream.reading is None
    assert stream.retry().read == StreamPosition(0, "e1")
    assert stream.retry() == Step()  # one read in flight
    assert offsets(stream.filled(replay(2, [1, 2]))) == [1, 2]
    assert stream.retry() == Step()  # nothing waits


@pytest.mark.parametrize(("stale", "offset", "epoch", "news", "reached"), [
    (None, 6, "e2", True, True), (None, 5, "e2", False, True), (None, 1, "e2", False, False),
    (None, 9, "e1", True, True),  # another epoch: the stream started over after this start
    ("e1", 9, "e1", False, False),  # the stale one: the start is past all of it
    ("e1", 1, "e3", True, True),
])
def test_news_is_what_comes_after_a_start(stale: str | None, offset: int, epoch: str,
                                          news: bool, reached: bool) -> None:
    start = Start(StreamPosition(5, "e2"), stale)
    assert (start.news(offset, epoch), start.reached(offset, epoch)) == (news, reached)


def test_a_start_in_another_epoch_is_newer_unless_the_stream_started_over_since() -> None:
    stream = started(3)
    joined_at = stream.restarts  # a member's join begins, then reads where it starts
    assert stream.placed(StreamPosition(4, "e1"), joined_at) == Start(StreamPosition(4, "e1"))
    ahead = StreamPosition(2, "e2")  # the store lost the history; this stream has not heard
    assert stream.placed(ahead, joined_at) == Start(ahead, "e1")
    stream.receive(msg(1, "e2"))
    stream.filled(Unrecoverable(StreamPosition(2, "e2"), "epoch_changed"))
    assert stream.restarts == joined_at + 1
    # It started over while that read was under way: which epoch is newer is not known.
    assert stream.placed(StreamPosition(4, "e1"), joined_at) == Start(StreamPosition(4, "e1"))


def test_a_message_read_from_history_keeps_its_sender_and_session() -> None:
    entry = HistoryEntry(3, {"from": "bob", "data": {"x": 1}, "session": "c2"})
    assert StreamMessage.of(entry, "e1") == StreamMessage(3, "e1", "c2", "bob", {"x": 1})
