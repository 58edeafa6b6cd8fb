"""Connection: the observer client's state, its recovery, its last error, its latency.

The reconnect button drops the connection (or starts it again after the
client gave up) with :meth:`rtctl.client.Client.reconnect`; the state line
shows the client's own state machine going round, and the recovery lines how
the last drop was recovered (:mod:`rtctl.tui.recovery`): ``recovering…``,
``recovered (n replayed)`` or ``reset (reason: room)``, and whether the
session was resumed. The recent changes and the last error are reactive, set
by the client's own callbacks; the other lines follow the app's ``status``,
``recovery`` and each sample of the netstats.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.reactive import reactive
from textual.widgets import Button, Static

from rtctl.client import StateChanged, Verdict
from rtctl.exceptions import RtctlError
from rtctl.tui.screens.base import LiveScreen, milliseconds
from rtctl.tui.session import Session

__all__ = ["ConnectionScreen"]

_HISTORY = 6  # state changes shown


class ConnectionScreen(LiveScreen):
    """The observer's connection, and a button to drop it."""

    MODE = "connection"
    FOLLOWS = ("status", "sampled", "recovery")
    BINDINGS: ClassVar[list[BindingType]] = [("r", "reconnect", "Reconnect")]

    history: reactive[list[str]] = reactive(list)  # the last state changes, oldest first
    problem: reactive[str | None] = reactive(None, init=False)  # the last error reported

    def body(self) -> ComposeResult:
        yield Static(id="client")
        yield Button("Reconnect", id="reconnect")
        yield Static(id="history")

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self._listening = False

    def on_mount(self) -> None:
        self.watch(self.app, "status", self._listen)  # now, and once the stack is up

    def _listen(self) -> None:
        """Listen to the observer's state changes and errors, once it exists."""
        stack = self.session.stack
        if stack is None or self._listening:
            return
        self._listening = True

        def changed(event: StateChanged) -> None:
            why = f" ({event.error})" if event.error else ""
            change = f"{event.old.value} → {event.new.value}{why}"
            self.history = [*self.history[1 - _HISTORY:], change]

        def failed(verdict: Verdict) -> None:
            self.problem = f"{verdict.kind.value}: {verdict.error}"

        stack.observer.on_state_change(changed)
        stack.observer.on_error(failed)

    def watch_history(self, history: list[str]) -> None:
        self.query_one("#history", Static).update(
            "recent changes:\n" + ("\n".join(history) or "none yet"))

    def watch_problem(self) -> None:
        self.update_view()

    def update_view(self) -> None:
        stack = self.session.stack
        if stack is None:
            self.query_one("#client", Static).update(self.session.status)
            return
        client = stack.observer
        stats = client.netstats()
        error = client.last_error or self.problem
        room = stack.room
        position = None if room is None else stack.rooms.position(room)
        held = "none joined" if position is None else f"{room}, had up to offset {position.offset}"
        self.query_one("#client", Static).update("\n".join([
            f"state       {client.state.value}",
            f"recovery    {stack.recovery.line()}",
            f"session     {stack.recovery.session_line()}",
            f"room        {held}",
            f"endpoint    {client.url}",
            f"latency     RTT {milliseconds(stats.rtt)}{self.session.stale}, "
            f"smoothed {milliseconds(stats.srtt)}, "
            f"min {milliseconds(stats.rtt_min)}, jitter {milliseconds(stats.jitter)}",
            f"traffic     {stats.pings} pings answered; {stats.messages_out} messages sent, "
            f"{stats.messages_in} received",
            f"last error  {error or 'none'}",
        ]))

    @on(Button.Pressed, "#reconnect")
    def action_reconnect(self) -> None:
        self._reconnect()

    @work(exclusive=True, group="reconnect")
    async def _reconnect(self) -> None:
        stack = self.session.stack
        if stack is None:
            return
        try:
            await stack.observer.reconnect()
        except RtctlError as exc:
            self.problem = str(exc)
