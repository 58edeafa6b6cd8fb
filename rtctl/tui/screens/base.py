"""The base of every screen: it reads the shared :class:`~rtctl.tui.session.Session`.

A screen names the app's reactives it follows in :attr:`LiveScreen.FOLLOWS`
(``status``, ``tapped``, ``sampled``, ``link``, ``recovery``: see
:class:`~rtctl.tui.app.DevtoolsApp`). When one of them moves, the screen
redraws with :meth:`LiveScreen.update_view`, if it is the one showing, and
once when it comes back into view. However many of them move before the
screen gets to it (a sample and a tap batch at once), it redraws once.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Input

from rtctl.tui.session import Session
from rtctl.tui.widgets.nav_bar import NavBar

__all__ = ["MODES", "LiveScreen", "milliseconds"]

MODES = ("dashboard", "connection", "presence", "inspector", "simulator", "profiler", "state",
         "arena")


def milliseconds(seconds: float | None) -> str:
    """``12.3 ms``, or a dash before there is a number."""
    return "–" if seconds is None else f"{seconds * 1000:.1f} ms"


class LiveScreen(Screen[None]):
    """A screen drawn from ``session``; subclasses compose :meth:`body` and redraw in
    :meth:`update_view`."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "leave_field", "Leave field")]

    MODE: ClassVar[str]  # the app's name for this screen, shown in the nav bar
    FOLLOWS: ClassVar[tuple[str, ...]] = ()  # the app's reactives this screen redraws on

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self._redraw_queued = False

    def compose(self) -> ComposeResult:
        yield NavBar(MODES, self.MODE)
        yield from self.body()
        yield Footer(compact=True)

    def body(self) -> ComposeResult:
        """The screen's own widgets, between the header and the footer."""
        yield from ()

    def on_mount(self) -> None:
        for name in self.FOLLOWS:
            self.watch(self.app, name, self._followed_changed, init=False)

    def _followed_changed(self) -> None:
        """Queue one redraw, unless one is queued already or the screen is not showing."""
        if self.is_current and not self._redraw_queued:
            self._redraw_queued = self.call_later(self._redraw)

    def _redraw(self) -> None:
        self._redraw_queued = False
        self.update_view()

    def action_leave_field(self) -> None:
        """Escape from a text field, so keys are commands again."""
        self.set_focus(None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Offer "Leave field" (in the footer too) only while a text field has the keys.

        While one has, Textual leaves the keys it takes (``1``-``8``, ``q``) out of
        the bindings, so they are typed, never commands.
        """
        if action == "leave_field":
            return isinstance(self.focused, Input)
        return True

    def on_screen_resume(self) -> None:
        self.update_view()

    def update_view(self) -> None:
        """Redraw from the session; cheap, called whenever what the screen follows moves."""
