"""The base of every screen: it reads the shared :class:`~rtctl.tui.session.Session`.

The app calls :meth:`LiveScreen.update_view` on its refresh timer, only for
the screen showing, and once when a screen comes back into view; screens
never redraw per tap event.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer

from rtctl.tui.session import Session
from rtctl.tui.widgets.nav_bar import NavBar

__all__ = ["MODES", "LiveScreen", "milliseconds"]

MODES = ("dashboard", "connection", "presence", "inspector", "simulator", "profiler")


def milliseconds(seconds: float | None) -> str:
    """``12.3 ms``, or a dash before there is a number."""
    return "–" if seconds is None else f"{seconds * 1000:.1f} ms"


class LiveScreen(Screen[None]):
    """A screen drawn from ``session``; subclasses compose :meth:`body` and redraw in
    :meth:`update_view`."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "leave_field", "Leave field", show=False)]

    MODE: ClassVar[str]  # the app's name for this screen, shown in the nav bar

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session

    def compose(self) -> ComposeResult:
        yield NavBar(MODES, self.MODE)
        yield from self.body()
        yield Footer(compact=True)

    def body(self) -> ComposeResult:
        """The screen's own widgets, between the header and the footer."""
        yield from ()

    def action_leave_field(self) -> None:
        """Escape from a text field, so keys are commands again."""
        self.set_focus(None)

    def on_screen_resume(self) -> None:
        self.update_view()

    def update_view(self) -> None:
        """Redraw from the session; cheap, called a few times a second."""
