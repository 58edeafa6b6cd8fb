"""Presence: who is online, their status and when they were last seen.

The users asked about are the ones the TUI knows of (the demo's bots and
observer) and everyone the tap has seen connect; their presence comes from
``presence.get`` over the observer's own connection (``docs/api.md``), every
few seconds and on ``r``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.widgets import DataTable, Static

from rtctl.client import ClientError, ClientState
from rtctl.services.presence import MAX_USERS_PER_CALL
from rtctl.tui.screens.base import LiveScreen

__all__ = ["PresenceScreen", "presence_rows"]

_EVERY = 2.0  # seconds between two automatic refreshes


def _seen(last_seen: Any) -> str:
    if not isinstance(last_seen, int | float):
        return "now" if last_seen is None else str(last_seen)
    return datetime.fromtimestamp(last_seen / 1000).strftime("%H:%M:%S")


def presence_rows(found: dict[str, dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """Table rows (user, status, last seen, text) from a ``presence.get`` answer, online first."""
    rows = [(user, str(p.get("status", "?")), _seen(p.get("last_seen")), p.get("text") or "")
            for user, p in found.items()]
    return sorted(rows, key=lambda r: (r[1] == "offline", r[0]))


class PresenceScreen(LiveScreen):
    """Online users, updated live."""

    MODE = "presence"
    BINDINGS: ClassVar[list[BindingType]] = [("r", "refresh", "Refresh")]

    def body(self) -> ComposeResult:
        yield Static("", id="presence-note")
        table: DataTable[str] = DataTable(id="presence", cursor_type="row", zebra_stripes=True)
        table.add_columns("user", "status", "last seen", "text")
        yield table

    def on_mount(self) -> None:
        self.set_interval(_EVERY, self.action_refresh)

    def action_refresh(self) -> None:
        if self.is_current:  # no calls for a table nobody looks at
            self._fetch()

    def on_screen_resume(self) -> None:
        self.action_refresh()

    @work(exclusive=True, group="presence")
    async def _fetch(self) -> None:
        stack = self.session.stack
        if stack is None or stack.observer.state is not ClientState.CONNECTED:
            self.show({}, self.session.status)
            return
        users = list(dict.fromkeys([*stack.known_users, *self.session.feed.users]))
        try:
            found = await stack.observer.call("presence.get",
                                              {"users": users[:MAX_USERS_PER_CALL]})
        except ClientError as exc:
            self.show({}, f"presence.get failed: {exc}")
            return
        online = sum(p.get("status") != "offline" for p in found.values())
        self.show(found, f"{online} of {len(found)} users online "
                         f"(presence.get, every {_EVERY:g}s; r to refresh)")

    def show(self, found: dict[str, dict[str, Any]], note: str) -> None:
        """Fill the table from a ``presence.get`` answer."""
        self.query_one("#presence-note", Static).update(note)
        table = self.query_one(DataTable)
        table.clear()
        table.add_rows(presence_rows(found))
