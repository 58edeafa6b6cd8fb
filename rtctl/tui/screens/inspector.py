"""Inspector: the live frame table, a filter box, the selected frame as pretty JSON.

The filter takes the same expressions as ``rtctl inspect --filter``
(:mod:`rtctl.inspect.filters`). Pausing freezes the table while the feed goes
on collecting; exports write the rows kept (JSONL, or a pcap Wireshark reads)
with the inspector's own sinks. The table follows the tap (the app's
``tapped``); the filter and the pause are reactive and redraw it when they change.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import ClassVar

from rich.json import JSON
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.reactive import reactive
from textual.widgets import Input, Static

from rtctl.exceptions import ConfigError
from rtctl.inspect.filters import Filter, parse_filter
from rtctl.inspect.pairing import Row
from rtctl.inspect.view import frame_preview
from rtctl.protocol.tap import FrameSeen, TapEvent
from rtctl.tui.feed import export
from rtctl.tui.screens.base import LiveScreen
from rtctl.tui.session import Session
from rtctl.tui.widgets.frame_table import FrameTable

__all__ = ["SHOWN", "InspectorScreen"]

SHOWN = 200  # newest matching rows in the table


class InspectorScreen(LiveScreen):
    """Every frame through the gateway, filtered, with details."""

    MODE = "inspector"
    FOLLOWS = ("tapped",)
    BINDINGS: ClassVar[list[BindingType]] = [
        ("slash", "focus_filter", "Filter"), ("space", "pause", "Pause"),
        ("j", "export('jsonl')", "JSONL"), ("x", "export('pcap')", "pcap")]

    # always_update: setting the same filter again clears a parse error from the note.
    filter: reactive[Filter] = reactive(lambda: parse_filter(""), init=False,
                                        always_update=True)
    paused: reactive[bool] = reactive(False, init=False)

    def __init__(self, session: Session, *, export_dir: Path | None = None) -> None:
        super().__init__(session)
        self.export_dir = export_dir or Path.cwd()
        self._drawn = -1  # feed.added when the table was last drawn
        self.exported = 0  # files written

    def body(self) -> ComposeResult:
        yield Input(placeholder="filter (/), e.g. method=room.* user=alice errors size>1KB",
                    id="filter")
        yield FrameTable(id="frames")
        yield Static(id="inspector-note")
        yield Static(id="detail")

    def on_mount(self) -> None:
        self.query_one(FrameTable).focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        try:
            self.filter = parse_filter(event.value)
        except ConfigError as exc:
            self._note(str(exc))

    def watch_paused(self) -> None:
        """The pause or the filter changed: draw the table anew."""
        self._drawn = -1
        self.update_view()

    watch_filter = watch_paused

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.query_one(FrameTable).focus()

    @on(FrameTable.Chosen)
    def _chosen(self, event: FrameTable.Chosen) -> None:
        self.query_one("#detail", Static).update(_detail(event.row))

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_pause(self) -> None:
        self.paused = not self.paused

    def action_export(self, kind: str) -> None:
        path = self.export_dir / f"rtctl-{time.strftime('%Y%m%d-%H%M%S')}.{kind}"
        self._export(self.session.feed.events(), path)

    @work(thread=True, group="export")
    def _export(self, events: list[TapEvent], path: Path) -> None:
        """Write in a thread: a pcap of thousands of frames takes scapy a while."""
        try:
            count = export(events, path)
        except ConfigError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error")
            return
        self.exported += 1
        self.app.call_from_thread(self.notify, f"wrote {count} events to {path}")

    def shown_rows(self) -> list[Row]:
        """The newest :data:`SHOWN` rows the filter keeps."""
        rows = [row for row in self.session.feed.rows if self.filter.matches(row)]
        return rows[-SHOWN:]

    def update_view(self) -> None:
        feed = self.session.feed
        if self.paused or feed.added == self._drawn:
            self._note()
            return
        self._drawn = feed.added
        self.query_one(FrameTable).show(self.shown_rows())
        self._note()

    def _note(self, problem: str | None = None) -> None:
        state = "PAUSED (space resumes)" if self.paused else "live"
        text = problem or (f"{state}; filter: {self.filter.text or 'none'}; "
                           f"{len(self.session.feed.rows)} kept, {self.session.feed.errors} errors")
        self.query_one("#inspector-note", Static).update(text)


def _detail(row: Row) -> JSON | Text | str:
    event = row.event
    if isinstance(event, FrameSeen):
        if event.binary:  # as `rtctl inspect` shows it: a state frame's changes, or the bytes
            return Text(frame_preview(row, whole=True))  # Text: no markup in values
        try:
            return JSON(event.payload)
        except ValueError:
            return event.payload
    return JSON.from_data(event.to_json())
