"""The inspector's table of frames: time, direction, user, method, size, latency.

It shows the rows it is given (the newest at the bottom, followed unless the
user moved the cursor up) and posts :class:`FrameTable.Chosen` with the
:class:`~rtctl.inspect.pairing.Row` under the cursor, for the detail pane.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from textual import on
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

from rtctl.inspect.pairing import Row
from rtctl.protocol.tap import IN, AuthRefused, Connected, Disconnected, FrameSeen

__all__ = ["FrameTable", "cells"]

COLUMNS = ("time", "dir", "user", "method", "size", "latency")


def cells(row: Row) -> tuple[str, str, str, str, str, str]:
    """One table line for ``row``; connection events read as a word in the method column."""
    event = row.event
    when = datetime.fromtimestamp(event.t_us / 1_000_000).strftime("%H:%M:%S.%f")[:-3]
    if isinstance(event, FrameSeen):
        latency = "" if row.latency_us is None else f"{row.latency_us / 1000:.1f}ms"
        what = row.method or event.kind
        if event.error is not None:
            what = f"{what} !{event.error}"
        return (when, "→" if event.direction == IN else "←", event.user, what,
                f"{event.size}", latency)
    if isinstance(event, Connected):
        return when, "●", event.user, "connected", "", ""
    if isinstance(event, Disconnected):
        return when, "○", event.user, f"closed {event.code}", "", ""
    if isinstance(event, AuthRefused):
        return when, "✗", event.user or "-", f"refused {event.status}", "", ""
    return when, "·", "", event.TAG, "", ""


def _continued(shown: Sequence[Row], rows: Sequence[Row]) -> int | None:
    """How many of ``rows`` are the tail of ``shown`` (the same objects), or None if they
    do not continue it."""
    if not shown or not rows:
        return None if shown else 0
    for start in range(len(shown)):
        if shown[start] is rows[0]:
            tail = shown[start:]
            if len(tail) <= len(rows) and all(a is b for a, b in zip(tail, rows, strict=False)):
                return len(tail)
            return None
    return None


class FrameTable(DataTable[str]):
    """A DataTable of inspector rows."""

    class Chosen(Message):
        """The cursor is on ``row``."""

        def __init__(self, row: Row) -> None:
            super().__init__()
            self.row = row

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._rows: list[Row] = []
        self._keys: list[RowKey] = []
        self.add_columns(*COLUMNS)

    def show(self, rows: Sequence[Row]) -> None:
        """Show ``rows``; keep following the newest row if the cursor was on it.

        When ``rows`` continues what is shown (the usual case on a live tap),
        only the rows that scrolled off are removed and the new ones added, so
        a busy tap costs the table its new rows, not a redraw of all of them.
        """
        following = self.cursor_row >= len(self._rows) - 1
        kept = _continued(self._rows, rows)
        if kept is None:
            self.clear()
            self._rows, self._keys = [], []
            kept = 0
        else:
            gone = len(self._rows) - kept
            for key in self._keys[:gone]:
                self.remove_row(key)
            del self._rows[:gone], self._keys[:gone]
        for row in rows[kept:]:
            self._keys.append(self.add_row(*cells(row)))
            self._rows.append(row)
        if following and self._rows:
            self.move_cursor(row=len(self._rows) - 1, animate=False)

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        if 0 <= event.cursor_row < len(self._rows):
            self.post_message(self.Chosen(self._rows[event.cursor_row]))
