"""The TUI's live state: recent tap rows, and a few numbers sampled over time.

The tap's events arrive in a worker as fast as the gateway makes them;
:meth:`Feed.add` only pairs them (:class:`~rtctl.inspect.pairing.Pairing`)
and keeps the last :data:`DEFAULT_KEEP`. The app tells the screens when rows
arrived, at once but at most every :data:`~rtctl.tui.app.TAP_GAP` seconds,
never per frame, so a busy gateway cannot make the UI stutter.
Exports go through the inspector's own sinks, so a file written here is the
same as one from ``rtctl inspect --record``/``--pcap``.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from rtctl.inspect.capture import Sink, feed
from rtctl.inspect.filters import parse_filter
from rtctl.inspect.pairing import Pairing, Row
from rtctl.inspect.pcap import PcapExporter
from rtctl.inspect.recorder import Recorder
from rtctl.protocol.tap import Connected, FrameSeen, Subscribed, TapEvent

__all__ = ["DEFAULT_KEEP", "SAMPLES", "Feed", "Samples", "export"]

DEFAULT_KEEP = 2000  # rows kept for the inspector and for export
SAMPLES = 60  # points in a sparkline
_ERRORS = parse_filter("errors")


@dataclass
class Samples:
    """One sparkline's worth of a number, one value per sample."""

    values: deque[float] = field(default_factory=lambda: deque(maxlen=SAMPLES))

    def add(self, value: float) -> None:
        self.values.append(value)

    @property
    def last(self) -> float | None:
        return self.values[-1] if self.values else None


class Feed:
    """Recent rows of the tap, the users it has seen, and counters for the dashboard."""

    def __init__(self, keep: int = DEFAULT_KEEP) -> None:
        self.rows: deque[Row] = deque(maxlen=keep)
        self.frames = 0  # every frame seen, for the rate
        self.errors = 0  # rows the inspector's ``errors`` filter keeps
        self.users: dict[str, None] = {}  # in order of first connection
        self.added = 0  # rows ever added: the inspector redraws only when this moved
        self._pairing = Pairing()
        self._frames_at_sample = 0

    def add(self, events: Iterable[TapEvent]) -> None:
        for event in events:
            row = self._pairing.see(event)
            self.rows.append(row)
            self.added += 1
            if isinstance(event, FrameSeen):
                self.frames += 1
            elif isinstance(event, Connected):
                self.users.setdefault(event.user)
            if _ERRORS.matches(row) and not isinstance(event, Subscribed):
                self.errors += 1

    def frames_since_last(self) -> int:
        """Frames seen since the previous call: the session divides by the sampling period."""
        count = self.frames - self._frames_at_sample
        self._frames_at_sample = self.frames
        return count

    def events(self) -> list[TapEvent]:
        """The events of the rows kept, oldest first: a copy, safe to export in a thread."""
        return [row.event for row in self.rows]


def export(events: Iterable[TapEvent], path: str | os.PathLike[str]) -> int:
    """Write ``events`` to ``path``: pcap if it ends in ``.pcap``, else JSONL; return the count."""
    name = os.fspath(path)
    sink: Sink = PcapExporter(name) if name.endswith(".pcap") else Recorder(name)
    try:
        return feed(events, [sink])
    finally:
        sink.close()
