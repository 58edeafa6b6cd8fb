"""The outbox, sans-I/O: a bounded FIFO of encoded messages that refuses all once it overflows."""

from __future__ import annotations

import pytest

from rtctl.gateway.outbox import Outbox

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
