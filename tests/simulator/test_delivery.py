"""The delivery queue: items come out at their loop time, in time order, ties in arrival order.

The queue schedules on a running loop, so each case runs in ``asyncio.run``;
every time is in the loop's past (due at once) or an hour ahead (never due
during the test), so no case waits on the clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from simulator.delivery import DeliveryQueue

T = TypeVar("T")

PAST = -100.0  # offsets from now: due at once
LATER = 3600.0  # not due before the test ends
GUARD = 5.0  # only ever reached if the queue is broken


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        async with asyncio.timeout(GUARD):
            return await scenario()

    return asyncio.run(main())


class Recorder:
    """A ``send`` that records items and can tell when one of them went out."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self._seen: dict[str, asyncio.Event] = {}

    async def __call__(self, item: str) -> None:
        self.sent.append(item)
        self.seen(item).set()

    def seen(self, item: str) -> asyncio.Event:
        return self._seen.setdefault(item, asyncio.Event())


@pytest.mark.parametrize(
    ("puts", "order"),
    [
        pytest.param([], [], id="nothing"),
        pytest.param([(1, "a")], ["a"], id="one"),
        pytest.param([(1, "a"), (2, "b"), (3, "c")], ["a", "b", "c"], id="in-time-order"),
        pytest.param([(3, "c"), (2, "b"), (1, "a")], ["a", "b", "c"], id="reversed-times"),
        pytest.param([(2, "b"), (1, "a"), (3, "c"), (1.5, "ab")], ["a", "ab", "b", "c"],
                     id="shuffled"),
        pytest.param([(1, "x"), (1, "y"), (1, "z")], ["x", "y", "z"], id="ties-keep-arrival"),
        pytest.param([(2, "late-1"), (1, "early"), (2, "late-2"), (1, "early-2")],
                     ["early", "early-2", "late-1", "late-2"], id="ties-within-times"),
    ],
)
def test_due_items_come_out_in_time_then_arrival_order(puts: list[tuple[float, str]],
                                                       order: list[str]) -> None:
    async def scenario() -> list[str]:
        loop = asyncio.get_running_loop()
        send = Recorder()
        queue: DeliveryQueue[str] = DeliveryQueue(send)
        base = loop.time() + PAST
        for offset, item in puts:
            queue.put(base + offset, item)
        assert queue.idle is (not puts)
        await queue.drain(GUARD)
        assert queue.idle
        queue.close()
        return send.sent

    assert run(scenario) == order


@pytest.mark.parametrize(
    ("puts", "sent"),
    [
        pytest.param([(LATER, "late"), (PAST, "due")], ["due"], id="late-first"),
        pytest.param([(PAST, "due"), (LATER, "late")], ["due"], id="due-first"),
        pytest.param([(LATER, "late"), (PAST, "due-1"), (LATER - 1, "less-late"),
                      (PAST, "due-2")], ["due-1", "due-2"], id="several"),
    ],
)
def test_an_item_not_yet_due_holds_nothing_back(puts: list[tuple[float, str]],
                                                sent: list[str]) -> None:
    async def scenario() -> tuple[list[str], bool]:
        loop = asyncio.get_running_loop()
        send = Recorder()
        queue: DeliveryQueue[str] = DeliveryQueue(send)
        now = loop.time()
        for offset, item in puts:
            queue.put(now + offset, item)
        await send.seen(sent[-1]).wait()
        idle = queue.idle
        queue.close()
        return send.sent, idle

    assert run(scenario) == (sent, False)  # not idle: something is still scheduled


def test_drain_gives_up_at_its_timeout_without_raising() -> None:
    async def scenario() -> tuple[list[str], bool]:
        loop = asyncio.get_running_loop()
        send = Recorder()
        queue: DeliveryQueue[str] = DeliveryQueue(send)
        queue.put(loop.time() + LATER, "late")
        await queue.drain(0)
        idle = queue.idle
        queue.close()
        return send.sent, idle

    assert run(scenario) == ([], False)


def test_idle_is_false_while_an_item_is_being_sent() -> None:
    """The heap may be empty while the writer still sends: not idle yet (no bypass)."""

    async def scenario() -> list[tuple[str, bool]]:
        loop = asyncio.get_running_loop()
        gate = asyncio.Event()
        started = asyncio.Event()
        sent: list[str] = []

        async def send(item: str) -> None:
            sent.append(item)
            if item == "slow":
                started.set()
                await gate.wait()

        queue: DeliveryQueue[str] = DeliveryQueue(send)
        base = loop.time() + PAST
        steps = [("new", queue.idle)]
        queue.put(base, "slow")
        steps.append(("put", queue.idle))
        await started.wait()
        steps.append(("sending", queue.idle))
        # Released while the writer is busy: after the one in flight, in time order.
        queue.put(base + 2, "second")
        queue.put(base + 1, "first")
        gate.set()
        await queue.drain(GUARD)
        steps.append(("drained", queue.idle))
        queue.close()
        assert sent == ["slow", "first", "second"]
        return steps

    assert run(scenario) == [("new", True), ("put", False), ("sending", False),
                             ("drained", True)]


@pytest.mark.parametrize(
    "offsets",
    [pytest.param([PAST], id="due"), pytest.param([LATER], id="later"),
     pytest.param([PAST, LATER, PAST], id="both")],
)
def test_close_discards_what_was_not_sent(offsets: list[float]) -> None:
    async def scenario() -> list[str]:
        loop = asyncio.get_running_loop()
        send = Recorder()
        queue: DeliveryQueue[str] = DeliveryQueue(send)
        now = loop.time()
        for index, offset in enumerate(offsets):
            queue.put(now + offset, f"item-{index}")
        queue.close()
        # A marker scheduled after every due release: by then they all ran, on an empty heap.
        marker = loop.create_future()
        loop.call_at(now + PAST + 1, marker.set_result, None)
        await marker
        return send.sent

    assert run(scenario) == []


def test_items_keep_their_type() -> None:
    async def scenario() -> list[bytes]:
        loop = asyncio.get_running_loop()
        sent: list[bytes] = []

        async def send(data: bytes) -> None:
            sent.append(data)

        queue: DeliveryQueue[bytes] = DeliveryQueue(send)
        queue.put(loop.time() + PAST, b"\x81\x02hi")
        await queue.drain(GUARD)
        queue.close()
        return sent

    assert run(scenario) == [b"\x81\x02hi"]
