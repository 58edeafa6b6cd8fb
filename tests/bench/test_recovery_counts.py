"""The reconnect storm's message accounting, by number, against known ledgers (no I/O)."""

from __future__ import annotations

import pytest

from rtctl.bench.recovery_counts import Inbox, Ledger, MessageCounts, RecoveryTotals
from rtctl.protocol.streams import StreamPosition


def at(offset: int, epoch: str = "e1") -> StreamPosition:
    return StreamPosition(offset, epoch)


def ledger(*offsets: int, unmeasured: tuple[int, ...] = (), epoch: str = "e1") -> Ledger:
    """Message n acknowledged at offset ``offsets[n - 1]``."""
    book = Ledger()
    for number, offset in enumerate(offsets, 1):
        book.record(number, at(offset, epoch), measured=number not in unmeasured)
    return book


def inbox(start: int, *handed: int, resets: dict[int, StreamPosition] | None = None) -> Inbox:
    """A member that joined at ``start`` and was handed ``handed`` (message n at offset n),
    reset after handing over the numbers named in ``resets``."""
    box = Inbox(at(start))
    for number in handed:
        box.delivered(number, at(number))
        if resets and number in resets:
            box.reset(resets[number])
    return box


TEN = tuple(range(1, 11))  # messages 1-10 at offsets 1-10


@pytest.mark.parametrize(("box", "book", "expected"), [
    # Joined at 0, had everything.
    (inbox(0, *TEN), ledger(*TEN), MessageCounts(expected=10, delivered=10)),
    # Joined at 4: 1-4 were never its to have.
    (inbox(4, *TEN[4:]), ledger(*TEN), MessageCounts(expected=6, delivered=6)),
    # A hole with no reset: lost.
    (inbox(0, 1, 2, 5, 6, 7, 8, 9, 10), ledger(*TEN), MessageCounts(expected=10, delivered=8,
                                                                    lost=2)),
    # Not come by the end, past the last one it got: still on their way, late.
    (inbox(0, *TEN[:7]), ledger(*TEN), MessageCounts(expected=10, delivered=7, late=3)),
    # Twice (an idempotent publish appended twice comes at another offset), and out of order.
    (inbox(0, 1, 2, 3, 3, 5, 4, 6, 7, 8, 9, 10), ledger(*TEN),
     MessageCounts(expected=10, delivered=10, duplicated=1, reordered=1)),
    # Reset after 3, the stream taken up again after 7: 4-7 skipped, and it was told.
    (inbox(0, 1, 2, 3, 8, 9, 10, resets={3: at(7)}), ledger(*TEN),
     MessageCounts(expected=6, delivered=6, skipped=4)),
    # Reset to a new epoch: the old epoch's rest is skipped, the new one's expected.
    (inbox(0, 1, 2, resets={2: at(0, "e2")}), ledger(1, 2, 3, 4),
     MessageCounts(expected=2, delivered=2, skipped=2)),
    # Messages of the warm-up count for nothing, even when handed twice.
    (inbox(0, 1, 1, 2, 3), ledger(1, 2, 3, unmeasured=(1,)),
     MessageCounts(expected=2, delivered=2)),
])
def test_counts_by_number(box: Inbox, book: Ledger, expected: MessageCounts) -> None:
    assert box.count(book) == expected


def test_a_member_still_recovering_at_the_end_has_its_missing_messages_late() -> None:
    box, book = inbox(0, 1, 4), ledger(1, 2, 3, 4, 5)  # 2 and 3: a hole, unless recovering
    assert box.count(book, recovering=True) == MessageCounts(expected=5, delivered=2, late=3)
    assert box.count(book) == MessageCounts(expected=5, delivered=2, lost=2, late=1)


def test_the_new_epochs_messages_are_expected_after_a_reset() -> None:
    box = inbox(0, 1, resets={1: at(1, "e2")})  # e1 offset 2 missed; e2 from offset 2 on
    box.delivered(3, at(2, "e2"))
    book = ledger(1, 2)
    book.record(3, at(2, "e2"), measured=True)
    assert box.count(book) == MessageCounts(expected=2, delivered=2, skipped=1)


def test_totals_merge_and_say_their_success_rate() -> None:
    one, two = RecoveryTotals(recovered=3, published=10), RecoveryTotals(recovered=1, failed=1)
    one.resets["too_old"] = 1
    one.replayed.record_all([2, 4, 6])
    two.replayed.record(40)
    two.messages.lost = 2
    merged = RecoveryTotals.merged([one, two])
    assert merged is not None
    document = merged.to_json()
    assert (document["attempts"], document["recovered"], document["success_rate"]) == (
        6, 4, 4 / 6)
    assert document["replayed"] == {"sum": 52, "p50": 4, "p99": 40, "max": 40}
    assert (document["published"], document["messages"]["lost"]) == (10, 2)
    assert RecoveryTotals.merged([]) is None
    assert RecoveryTotals().to_json()["success_rate"] is None


def test_a_recovery_unfinished_after_the_drain_is_an_attempt_that_did_not_succeed() -> None:
    one, two = RecoveryTotals(recovered=568), RecoveryTotals(unfinished=52, resent=2)
    merged = RecoveryTotals.merged([one, two])
    assert merged is not None
    document = merged.to_json()
    assert (document["attempts"], document["unfinished"], document["resent"]) == (620, 52, 2)
    assert document["success_rate"] == 568 / 620


def test_out_of_the_room_after_a_failed_join_again_nothing_is_expected_until_joined() -> None:
    box = inbox(0, 1, 2)
    box.leave()  # the join again failed: the SDK said so, and dropped the room
    assert box.count(ledger(1, 2, 3, 4)) == MessageCounts(expected=2, delivered=2, skipped=2)
    box.reset(at(3))  # joined afresh at 3: from there on it is expected again
    box.delivered(4, at(4))
    assert box.count(ledger(1, 2, 3, 4)) == MessageCounts(expected=3, delivered=3, skipped=1)
