"""Run the inspector: events from a live tap or from a recording, fed to sinks.

A sink is anything with ``write(event)`` and ``close()``: the
:class:`~rtctl.inspect.view.Viewer`, the JSONL
:class:`~rtctl.inspect.recorder.Recorder` and the
:class:`~rtctl.inspect.pcap.PcapExporter` are the ones ``rtctl inspect``
combines. The caller closes its sinks, so files are flushed however the run
ends (the tap closing, ``duration`` passing, or Ctrl-C).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterable, Sequence
from typing import Protocol

from rtctl.inspect.listener import listen
from rtctl.inspect.recorder import read_recording
from rtctl.protocol.tap import Subscribed, TapEvent

__all__ = ["Sink", "capture", "feed", "replay"]


class Sink(Protocol):
    """Where events go."""

    def write(self, event: TapEvent) -> None: ...

    def close(self) -> None: ...


def feed(events: Iterable[TapEvent], sinks: Sequence[Sink]) -> int:
    """Give every event to every sink, in order; return how many events there were."""
    count = 0
    for event in events:
        for sink in sinks:
            sink.write(event)
        count += 1
    return count


async def capture(url: str, *, token: str | None, sinks: Sequence[Sink],
                  duration: float | None = None) -> int:
    """Feed a gateway's live tap to ``sinks`` until it closes or ``duration`` s have passed.

    The duration counts from the moment the tap has attached this listener,
    so connecting does not eat into it. Returns the number of events.
    """
    count = 0
    loop = asyncio.get_running_loop()
    with contextlib.suppress(TimeoutError):
        async with (asyncio.timeout(None) as deadline,
                    contextlib.aclosing(listen(url, token=token)) as events):
            async for event in events:
                if isinstance(event, Subscribed) and duration is not None:
                    deadline.reschedule(loop.time() + duration)
                count += feed((event,), sinks)
    return count


def replay(path: str | os.PathLike[str], sinks: Sequence[Sink]) -> int:
    """Feed a JSONL recording to ``sinks``; return the number of events."""
    return feed(read_recording(path), sinks)
