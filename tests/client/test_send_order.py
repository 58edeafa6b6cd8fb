"""The send queue's writers: one at a time, so frames put back after a drop keep their order."""

from __future__ import annotations

import asyncio
import contextlib
import time

from rtctl.client.link import LinkClosed
from rtctl.client.outbound import Outbound
from rtctl.client.queue import Queued, QueueLimits
from rtctl.protocol.lanes import Lane


class StuckLink:
    """A link whose socket is full: every send waits, then the link drops."""

    def __init__(self) -> None:
        self.dead: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def send(self, data: bytes) -> None:
        await asyncio.shield(self.dead)


async def test_two_writers_whose_link_drops_put_back_their_frames_in_order() -> None:
    outbound = Outbound(retryable_codes=(), queue=QueueLimits(), call_timeout=5.0,
                        batch_window=0.01, sequence_of=None, clock=time.monotonic)
    link = StuckLink()
    queue = outbound._queue
    writers = []
    for first in (0, 3):  # the drain task and a notify() flushing a full frame, say
        for n in range(first, first + 3):
            queue.put(Queued(b'{"n":%d}' % n, lane=Lane.EVENTS, notification=True))
        writers.append(asyncio.create_task(outbound._send_queued(link)))  # type: ignore[arg-type]
        await asyncio.sleep(0)  # it takes what waits, and waits on the socket
    link.dead.set_exception(LinkClosed())
    for writer in writers:
        with contextlib.suppress(LinkClosed):
            await writer
    again = [entry.value.data for entry in queue.take(batch=True)]
    assert again == [b'{"n":%d}' % n for n in range(6)]
