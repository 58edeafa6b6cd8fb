"""The top line of every screen: the screens by their keys, the one showing highlighted.

A click on a name posts :class:`NavBar.Picked`; the app switches there, as it
does for the number keys.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import events
from textual.message import Message
from textual.widgets import Static

__all__ = ["NavBar"]


class NavBar(Static):
    """``1Dashboard 2Connection …`` (bold numbers) with ``current``'s name in reverse video.

    Each screen takes its name's length and two cells, so all eight fit in 80 columns.
    """

    class Picked(Message):
        """The user clicked the screen named ``mode``."""

        def __init__(self, mode: str) -> None:
            super().__init__()
            self.mode = mode

    def __init__(self, modes: Sequence[str], current: str) -> None:
        super().__init__(classes="nav-bar")
        self.modes = list(modes)
        self.current = current
        self._spans: list[tuple[int, int, str]] = []  # (start, end, mode) for clicks

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        self._spans = []
        for number, mode in enumerate(self.modes, 1):
            start = len(text)
            style = "reverse bold" if mode == self.current else ""
            text.append(str(number), "bold")
            text.append(mode.capitalize(), style)
            self._spans.append((start, len(text), mode))
            text.append(" ")
        return text

    def on_click(self, event: events.Click) -> None:
        for start, end, mode in self._spans:
            if start <= event.x < end:
                self.post_message(self.Picked(mode))
