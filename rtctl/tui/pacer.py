"""Redraws that follow a busy source at a few a second, never one per event.

The tap brings frames in batches as fast as the gateway makes them, and a room
brings a patch every tick; repainting a table or a tree for each would make the
UI stutter. A :class:`Pacer` runs its action when poked: at once, or, if it ran
less than ``gap`` seconds ago, when the gap is over. Pokes that arrive while a
run is due are folded into it, so what arrived meanwhile is drawn together.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.message_pump import MessagePump
from textual.timer import Timer

__all__ = ["Pacer"]


class Pacer:
    """Runs ``action`` when poked, at most once every ``gap`` seconds (timers of ``owner``)."""

    def __init__(self, owner: MessagePump, gap: float, action: Callable[[], object]) -> None:
        self._owner = owner
        self._gap = gap
        self._action = action
        self._ran_at = -gap  # time.monotonic() when the action last ran
        self._due: Timer | None = None  # runs the action when the gap is over

    def poke(self) -> None:
        """Run the action now, or once ``gap`` has passed since it last ran."""
        if self._due is not None:
            return  # what just arrived is drawn with what is already waiting
        wait = self._ran_at + self._gap - time.monotonic()
        if wait > 0:
            self._due = self._owner.set_timer(wait, self._run)
        else:
            self._run()

    def _run(self) -> None:
        self._due = None
        self._ran_at = time.monotonic()
        self._action()
