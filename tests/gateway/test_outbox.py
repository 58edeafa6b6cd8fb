"""The outbox, sans-I/O, on a clock stepped by hand: its bound, pressure, shaping and batching."""

from __future__ import annotations

import orjson
import pytest

from rtctl.config import DEFAULT_MAX_MESSAGE_SIZE, Limits, Routing
from rtctl.gateway.outbox import BinaryMessage, Outbox, direct_replies
from rtctl.protocol.lanes import Lane, LaneStats, Policy
from rtctl.protocol.shaping import Bucket
from tests.protocol.test_lanes import Clock

# One step of a script: ("put", data, what put returns) or ("pop", None, what pop returns).
Step = tuple[str, bytes | None, bool | bytes | None]


def run(outbox: Outbox, steps: list[Step]) -> None:
    for index, (op, data, expected) in enumerate(steps):
        if op == "put":
            assert data is not None
            got: bool | bytes | None = outbox.put(data)
        elif op == "pop":
            got = outbox.pop()
        else:
            raise AssertionError(f"unknown step {op!r}")
        assert got == expected, f"step {index}: {op}({data!r}) gave {got!r}"


@pytest.mark.parametrize(
    ("max_bytes", "steps", "left", "queued_bytes", "overflowed"),
    [
        pytest.param(10, [], 0, 0, False, id="new-is-empty"),
        pytest.param(10, [("pop", None, None)], 0, 0, False, id="pop-empty-is-none"),
        pytest.param(10, [("put", b"abc", True)], 1, 3, False, id="one-put"),
        pytest.param(10, [("put", b"abc", True), ("pop", None, b"abc"), ("pop", None, None)],
                     0, 0, False, id="put-pop-pop"),
        pytest.param(10, [("put", b"a", True), ("put", b"bb", True), ("put", b"ccc", True),
                          ("pop", None, b"a"), ("pop", None, b"bb"), ("pop", None, b"ccc")],
                     0, 0, False, id="fifo"),
        pytest.param(10, [("put", b"a", True), ("put", b"bb", True), ("pop", None, b"a"),
                          ("put", b"ccc", True), ("pop", None, b"bb")],
                     1, 3, False, id="interleaved-keeps-order"),
        pytest.param(10, [("put", b"x" * 10, True)], 1, 10, False, id="exactly-max-fits"),
        pytest.param(10, [("put", b"x" * 6, True), ("put", b"y" * 4, True)],
                     2, 10, False, id="sum-exactly-max-fits"),
        pytest.param(10, [("put", b"x" * 11, False)], 0, 0, True, id="one-over-max-refused"),
        pytest.param(10, [("put", b"x" * 6, True), ("put", b"y" * 5, False)],
                     1, 6, True, id="sum-one-over-refused-nothing-queued"),
        pytest.param(10, [("put", b"x" * 11, False), ("put", b"", False), ("put", b"a", False)],
                     0, 0, True, id="overflowed-refuses-even-small"),
        pytest.param(10, [("put", b"x" * 8, True), ("put", b"y" * 8, False),
                          ("pop", None, b"x" * 8), ("put", b"a", False)],
                     0, 0, True, id="overflowed-stays-after-pops"),
        pytest.param(10, [("put", b"x" * 8, True), ("pop", None, b"x" * 8),
                          ("put", b"y" * 8, True)],
                     1, 8, False, id="pops-free-room"),
        pytest.param(0, [("put", b"", True), ("put", b"a", False)], 1, 0, True,
                     id="zero-bound-takes-only-empty"),
        pytest.param(10, [("put", b"", True), ("pop", None, b"")], 0, 0, False,
                     id="empty-message-is-a-message"),
    ],
)
def test_put_pop_script(max_bytes: int, steps: list[Step], left: int, queued_bytes: int,
                        overflowed: bool) -> None:
    outbox = Outbox(max_bytes=max_bytes)
    run(outbox, steps)
    assert len(outbox) == left
    assert outbox.queued_bytes == queued_bytes
    assert outbox.overflowed is overflowed


@pytest.mark.parametrize(
    ("steps", "overflowed"),
    [
        pytest.param([("put", b"abc", True), ("put", b"de", True)], False, id="partly-full"),
        pytest.param([("put", b"abc", True), ("put", b"x" * 20, False)], True, id="overflowed"),
    ],
)
def test_clear_drops_everything_but_not_the_overflow(steps: list[Step], overflowed: bool) -> None:
    outbox = Outbox(max_bytes=10)
    run(outbox, steps)
    outbox.clear()
    assert len(outbox) == 0
    assert outbox.queued_bytes == 0
    assert outbox.pop() is None
    # Overflow is final: the connection is being closed, clear does not reopen it.
    assert outbox.overflowed is overflowed
    assert outbox.put(b"a") is not overflowed


def test_byte_accounting_counts_bytes_not_messages() -> None:
    outbox = Outbox(max_bytes=1024)
    sizes = [1, 10, 100, 0, 7]
    for size in sizes:
        assert outbox.put(b"z" * size)
    expected = sum(sizes)
    for size in sizes:
        assert outbox.queued_bytes == expected
        assert outbox.pop() == b"z" * size
        expected -= size
    assert outbox.queued_bytes == 0
    assert len(outbox) == 0


# -- lanes, pressure and the hard bound ---------------------------------------------------


def note(i: int, size: int = 60) -> bytes:
    """An encoded notification of exactly ``size`` bytes (50 at least)."""
    head = b'{"jsonrpc":"2.0","method":"n","params":[' + str(i).encode() + b',"'
    data = head + b"x" * (size - len(head) - 3) + b'"]}'
    assert len(data) == size
    return data


def drain(outbox: Outbox) -> list[bytes]:
    out = []
    while isinstance(data := outbox.next(), bytes):
        out.append(data)
    return out


def test_next_takes_the_highest_lane_first_each_in_order() -> None:
    outbox = Outbox(max_bytes=1000)
    outbox.put(b"chat", lane=Lane.CHAT)
    outbox.put(b"e1")
    outbox.put(b"\x01", binary=True)  # in the events lane: in order with e1 and e2
    outbox.put(b"e2")
    outbox.put(b"\x02", True, Lane.STATE)
    assert drain(outbox) == [b"\x02", b"e1", b"\x01", b"e2", b"chat"]
    outbox.put(b"\x03", True, Lane.STATE)
    outbox.put(b"e3")
    assert drain(outbox) == [b"\x03", b"e3"]


def test_above_the_mark_droppable_messages_are_shed_and_counted() -> None:
    stats = LaneStats()
    outbox = Outbox(max_bytes=1000, mark=100, stats=stats)
    for _ in range(4):
        assert outbox.put(b"t" * 30, lane=Lane.TELEMETRY)  # the 4th passes the mark
    assert (stats[Lane.TELEMETRY].dropped, outbox.queued_bytes) == (1, 90)
    assert outbox.put(b"e" * 60)  # reliable: the telemetry in front of the mark goes
    assert (stats[Lane.TELEMETRY].dropped, outbox.queued_bytes) == (3, 90)
    assert not outbox.behind
    assert outbox.put(b"f" * 60)  # nothing left to shed: behind
    assert (stats[Lane.TELEMETRY].dropped, outbox.queued_bytes) == (4, 120)
    assert outbox.behind
    assert outbox.next() == b"e" * 60
    assert not outbox.behind  # caught up: under the mark again
    assert drain(outbox) == [b"f" * 60]


def test_droppable_traffic_never_overflows_but_reliable_hits_the_hard_bound() -> None:
    outbox = Outbox(max_bytes=200, mark=100)
    for _ in range(50):
        assert outbox.put(b"t" * 90, lane=Lane.TELEMETRY)
    assert outbox.queued_bytes <= 100
    assert not outbox.overflowed
    assert outbox.put(b"a" * 90)
    assert outbox.put(b"b" * 90)  # 180: behind, under the bound (the telemetry was shed)
    assert not outbox.put(b"c" * 30)  # 210 > 200: refused at once
    assert outbox.overflowed


def test_a_put_that_coalesces_is_held_to_the_bound_by_what_it_adds() -> None:
    outbox = Outbox(max_bytes=100, mark=100)
    assert outbox.put(b"a" * 60, lane=Lane.CHAT, policy=Policy.COALESCIBLE, key="alice")
    assert outbox.put(b"b" * 70, lane=Lane.CHAT, policy=Policy.COALESCIBLE, key="alice")
    assert outbox.queued_bytes == 70  # the 60 replaced: 70 in all, not 130
    assert not outbox.overflowed
    assert not outbox.put(b"c" * 31, lane=Lane.CHAT)  # a new one adds all of itself
    assert outbox.overflowed


def test_a_coalescible_message_replaces_the_one_still_waiting() -> None:
    outbox = Outbox(max_bytes=1000)
    outbox.put(b'{"alice":"online"}', lane=Lane.CHAT, policy=Policy.COALESCIBLE,
               key=("presence", "alice"))
    outbox.put(b'{"chat":1}', lane=Lane.CHAT)
    outbox.put(b'{"alice":"away"}', lane=Lane.CHAT, policy=Policy.COALESCIBLE,
               key=("presence", "alice"))
    assert drain(outbox) == [b'{"alice":"away"}', b'{"chat":1}']


# -- replies ------------------------------------------------------------------------------


def test_with_lanes_a_reply_goes_now_whatever_waits() -> None:
    outbox = Outbox(max_bytes=1000)
    outbox.put(note(1))
    assert outbox.reply(40)


def test_without_lanes_a_reply_waits_behind_what_is_queued() -> None:
    outbox = Outbox(max_bytes=1000, lanes=False)
    assert outbox.reply(40)  # nothing waits: straight out
    outbox.put(b"flood-1")
    outbox.put(b"flood-2", lane=Lane.TELEMETRY)
    assert not outbox.reply(40)  # the driver queues it in the control lane
    outbox.put(b"reply", lane=Lane.CONTROL)
    outbox.put(b"flood-3")
    assert drain(outbox) == [b"flood-1", b"flood-2", b"reply", b"flood-3"]


# -- shaping ------------------------------------------------------------------------------


def shaped(clock: Clock, rate: float = 100.0, burst: float = 100.0) -> Outbox:
    return Outbox(max_bytes=10_000, clock=clock, bucket=Bucket(rate=rate, burst=burst,
                                                               now=clock()))


def test_queued_frames_wait_for_tokens_and_are_charged() -> None:
    clock = Clock()
    outbox = shaped(clock)
    for i in range(3):
        outbox.put(bytes([65 + i]) * 60)
    assert outbox.next() == b"A" * 60  # 100 tokens: 40 left
    assert outbox.next() == b"B" * 60  # a token left: it goes, 20 in debt
    wait = outbox.next()
    assert wait == pytest.approx(0.2)  # 20 bytes at 100 B/s
    clock.now += 0.1
    assert outbox.next() == pytest.approx(0.1)
    clock.now += 0.1 + 1e-6
    assert outbox.next() == b"C" * 60


def test_a_reply_is_never_delayed_but_its_bytes_delay_the_queue() -> None:
    clock = Clock()
    outbox = shaped(clock)
    outbox.put(b"n" * 10)
    assert outbox.reply(150)  # 50 in debt
    assert outbox.next() == pytest.approx(0.5)
    clock.now += 0.5 + 1e-6
    assert outbox.next() == b"n" * 10


@pytest.mark.parametrize("window", [None, 0.002], ids=["alone", "batched"])
def test_what_leaves_a_shaped_outbox_stays_within_the_budget(window: float | None) -> None:
    """A flood queued ahead, replies between: over T s at most burst + rate * T + a message
    (batched: a frame holds no more than the tokens there, or its first message alone)."""
    clock = Clock()
    rate, burst, frame = 1000.0, 500.0, 120
    outbox = Outbox(max_bytes=100_000, clock=clock, batch_window=window,
                    bucket=Bucket(rate=rate, burst=burst, now=clock()))
    start, sent = clock.now, 0
    for i in range(400):
        outbox.put(note(i, frame))
    while clock.now - start < 10.0:
        if int(clock.now * 10) % 7 == 0 and outbox.reply(30):
            sent += 30
        out = outbox.next()
        assert out is not None
        if isinstance(out, float):
            clock.now += out
            continue
        sent += len(out)
        assert sent <= burst + rate * (clock.now - start) + frame
    assert sent >= rate * 10.0 * 0.9


# -- batching -----------------------------------------------------------------------------


def test_notifications_within_the_window_go_as_one_batch_array() -> None:
    clock = Clock()
    outbox = Outbox(max_bytes=10_000, clock=clock, batch_window=0.002)
    outbox.put(note(1))
    outbox.put(note(2), lane=Lane.CHAT)
    assert outbox.next() == pytest.approx(0.002)  # the first message opened the window
    clock.now += 0.001
    outbox.put(note(3))
    assert outbox.next() == pytest.approx(0.001)  # still the same window
    clock.now += 0.001
    frame = outbox.next()
    assert isinstance(frame, bytes)
    assert orjson.loads(frame) == [orjson.loads(note(i)) for i in (1, 3, 2)]  # lane order
    assert outbox.next() is None


def test_a_lone_message_goes_as_itself() -> None:
    clock = Clock()
    outbox = Outbox(max_bytes=10_000, clock=clock, batch_window=0.002)
    outbox.put(note(1))
    clock.now += 0.002
    assert outbox.next() == note(1)


def test_binary_and_control_messages_go_alone_and_without_waiting() -> None:
    clock = Clock()
    outbox = Outbox(max_bytes=10_000, clock=clock, batch_window=0.002)
    outbox.put(note(1))
    outbox.put(b"\x01", binary=True, lane=Lane.STATE)
    outbox.put(b"control", lane=Lane.CONTROL)
    assert outbox.next() == b"control"
    assert outbox.next() == BinaryMessage(b"\x01")
    assert outbox.next() == pytest.approx(0.002)
    outbox.put(note(2))
    outbox.put(b"\x02", binary=True)  # events lane: it ends the batch
    outbox.put(note(3))
    clock.now += 0.002
    frames = drain(outbox)
    assert [type(f) for f in frames] == [bytes, BinaryMessage, bytes]
    assert orjson.loads(frames[0]) == [orjson.loads(note(1)), orjson.loads(note(2))]
    assert frames[1:] == [b"\x02", note(3)]


def test_batch_bytes_waiting_flush_at_once_and_cap_the_frame() -> None:
    clock = Clock()
    outbox = Outbox(max_bytes=10_000, clock=clock, batch_window=1.0, batch_bytes=150)
    first, second, third = note(1), note(2), note(3)  # 60 bytes each
    outbox.put(first)
    outbox.put(second)
    assert outbox.next() == pytest.approx(1.0)
    outbox.put(third)  # 180 waiting: flush now
    frame = outbox.next()
    assert frame == b"[" + first + b"," + second + b"]"  # a third would pass 150 bytes
    assert outbox.next() == pytest.approx(1.0)  # the rest waits for the window's end
    clock.now += 1.0
    assert outbox.next() == third


def test_without_a_window_what_waits_goes_together_up_to_batch_bytes() -> None:
    outbox = Outbox(max_bytes=10_000, batch_bytes=150)
    big = note(0, 200)
    for message in (note(1), note(2), big, note(3)):
        outbox.put(message)
    frames = drain(outbox)
    assert frames == [b"[" + note(1) + b"," + note(2) + b"]", big, note(3)]


def test_a_window_alone_caps_a_batch_at_the_largest_message() -> None:
    clock = Clock()
    outbox = Outbox(max_bytes=1 << 20, clock=clock, batch_window=0.002)
    message = note(0, 1000)  # 1 KiB
    for _ in range(200):
        outbox.put(message)
    clock.now += 0.002
    frames = drain(outbox)
    assert all(len(frame) <= DEFAULT_MAX_MESSAGE_SIZE for frame in frames)
    assert sum(len(orjson.loads(frame)) for frame in frames) == 200
    assert len(frames) == -(-200 * (len(message) + 1) // DEFAULT_MAX_MESSAGE_SIZE)


# -- made from the configuration ----------------------------------------------------------


def test_the_configured_outbox_of_a_shaped_gateway() -> None:
    clock = Clock()
    routing = Routing(outbound_rate=100.0, outbound_burst=150)
    outbox = Outbox.configured(Limits(max_outbox_bytes=1000), routing, LaneStats(), clock)
    outbox.put(b"x" * 100)
    outbox.put(b"y" * 50)
    assert not outbox.behind  # the mark is the burst, 150 (under 1000 // 2)
    outbox.put(b"z" * 10)
    assert outbox.behind
    assert drain(outbox) == [b"x" * 100, b"y" * 50]  # the bucket holds the burst
    assert outbox.next() == pytest.approx(1e-11)  # empty, not in debt: a token is near
    clock.now += 1e-6
    assert outbox.next() == b"z" * 10
    assert not direct_replies(routing)


@pytest.mark.parametrize(("routing", "direct"), [
    (Routing(), True),
    (Routing(lanes=False), False),
    (Routing(outbound_rate=1000.0), False),
    (Routing(batch_window=0.002), True),  # batching never holds a reply
])
def test_when_replies_skip_the_outbox(routing: Routing, direct: bool) -> None:
    assert direct_replies(routing) is direct


def test_every_outbox_of_a_gateway_counts_in_one_stats() -> None:
    stats = LaneStats()
    outboxes = [Outbox.configured(Limits(), Routing(), stats, Clock()) for _ in range(3)]
    for outbox in outboxes:
        outbox.put(b"abc", lane=Lane.CHAT)
    assert (stats[Lane.CHAT].depth, stats[Lane.CHAT].depth_bytes) == (3, 9)


def test_an_express_run_moves_into_its_lane_when_another_lane_or_policy_comes() -> None:
    """Reliable keyless messages of one lane wait in the express queue (a plain FIFO);
    anything else moves them into their lane first: lane order, order within a lane, waits
    and counters come out as if they had been in the lanes all along."""
    clock, stats = Clock(), LaneStats()
    outbox = Outbox(max_bytes=1000, stats=stats, clock=clock)
    for data in (b"e1", b"e2"):
        assert outbox.put(data, lane=Lane.EVENTS)
    assert (len(outbox), outbox.queued_bytes, outbox.lane_bytes(Lane.EVENTS)) == (2, 4, 4)
    clock.now += 1
    assert outbox.put(b"s1", lane=Lane.STATE)  # another lane: the run moves first
    assert outbox.put(b"p1", lane=Lane.CHAT, policy=Policy.COALESCIBLE, key="u")
    assert outbox.put(b"p2", lane=Lane.CHAT, policy=Policy.COALESCIBLE, key="u")
    assert outbox.put(b"e3", lane=Lane.EVENTS)  # the lanes are not empty: no express now
    clock.now += 2
    assert [outbox.pop() for _ in range(5)] == [b"s1", b"e1", b"e2", b"e3", b"p2"]
    events = stats[Lane.EVENTS]
    assert (events.queued, events.sent, events.depth, events.depth_bytes) == (3, 3, 0, 0)
    assert events.wait.total == pytest.approx(3.0 + 3.0 + 2.0)  # e1, e2 waited from the start
    assert stats[Lane.CHAT].coalesced == 1


def test_an_express_run_counts_as_queued_and_clears_at_close() -> None:
    clock, stats = Clock(), LaneStats()
    outbox = Outbox(max_bytes=6, stats=stats, clock=clock)
    assert outbox.put(b"abc", lane=Lane.STATE, policy=Policy.RELIABLE)
    assert not outbox.put(b"defg", lane=Lane.STATE)  # the hard bound holds here too
    state = stats[Lane.STATE]
    assert (state.queued, state.depth, state.depth_bytes) == (1, 1, 3)
    outbox.clear()
    assert (state.depth, state.depth_bytes, len(outbox)) == (0, 0, 0)


def test_a_reliable_telemetry_message_stays_reliable_when_its_run_moves_into_its_lane() -> None:
    clock, stats = Clock(), LaneStats()
    outbox = Outbox(max_bytes=100, mark=1, stats=stats, clock=clock)
    assert outbox.put(b"R", lane=Lane.TELEMETRY, policy=Policy.RELIABLE)  # express
    assert outbox.put(b"d", lane=Lane.TELEMETRY)  # droppable: the run moves, then sheds
    assert [outbox.pop(), outbox.pop()] == [b"R", None]
    assert stats[Lane.TELEMETRY].dropped == 1
