"""The observer's recovery in words: recovering, recovered (n replayed), or reset (reason).

When the observer's link drops, its client reconnects with its recovery token
and its :class:`~rtctl.client.Rooms` join their rooms again with ``since``
(``docs/client.md``). :class:`RecoveryStatus` follows that from the client's
own events and keeps the outcome of the last one for the connection screen:

* ``recovering`` from the drop (the client ``reconnecting``) until the new
  link is ready;
* ``recovered (n replayed)``: every room got what it missed, ``n`` messages in
  all; or ``reset (reason: room)``: a room could not (``too_old``,
  ``epoch_changed`` ...) and what it missed is gone; a room whose stream
  changed epoch while connected is a reset too;
* whether the session was resumed (same id, presence not flapping), or why
  not (``expired``, ``invalid``, ``wrong_user``).

It knows nothing of Textual: :meth:`RecoveryStatus.on_change` callbacks say
when the words changed, and the app turns that into a reactive.
"""

from __future__ import annotations

from collections.abc import Callable

from rtctl.client import (
    Client,
    ClientState,
    Recovered,
    RoomRecovery,
    Rooms,
    StateChanged,
)

__all__ = ["RecoveryStatus"]

_STOPPED = frozenset({ClientState.DISCONNECTED, ClientState.CLOSED})


class RecoveryStatus:
    """The last recovery of one client and its rooms; :meth:`watch` wires it to them."""

    def __init__(self) -> None:
        self.phase = "none"  # none, recovering, recovered, reset, stopped
        self.seconds: float | None = None  # the last recovery took, drop to ready
        self.recoveries = 0  # completed: the session fields are those of the last one
        self.session: str | None = None
        self.resumed = False
        self.resume_error: str | None = None
        self._replayed = 0  # by the recovery under way (or the last one)
        self._resets: list[str] = []  # "reason: room", of the recovery under way or live
        self._on_change: list[Callable[[], object]] = []

    @classmethod
    def watch(cls, client: Client, rooms: Rooms) -> RecoveryStatus:
        status = cls()
        client.on_state_change(status.changed)
        client.on_recovered(status.recovered)
        rooms.on_recovery(status.room_recovered)
        return status

    def on_change(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` each time what :meth:`line` says may have changed."""
        self._on_change.append(callback)

    def changed(self, event: StateChanged) -> None:
        """A drop starts a recovery; giving up (or closing) during one ends it unrecovered."""
        if event.new is ClientState.RECONNECTING and self.phase != "recovering":
            self.phase, self._replayed, self._resets = "recovering", 0, []
        elif event.new in _STOPPED and self.phase == "recovering":
            self.phase = "stopped"
        else:
            return
        self._tell()

    def room_recovered(self, event: RoomRecovery) -> None:
        """A room joined again (during a recovery), or reset while connected."""
        if event.recovered:
            self._replayed += event.replayed
            return
        reset = f"{event.reason or f'join failed: {event.error}'}: {event.room}"
        if self.phase == "recovering":
            self._resets.append(reset)
            return
        self.phase, self.seconds, self._resets = "reset", None, [reset]  # an epoch change, live
        self._tell()

    def recovered(self, event: Recovered) -> None:
        """The new link is ready: the rooms' outcomes are all in."""
        self.phase = "reset" if self._resets else "recovered"
        self.seconds = event.seconds
        self.recoveries += 1
        self.session, self.resumed, self.resume_error = (event.session, event.resumed,
                                                         event.resume_error)
        self._tell()

    def line(self) -> str:
        """``recovering…``, ``recovered (3 replayed) in 0.12 s``, ``reset (too_old: lobby)``."""
        took = "" if self.seconds is None else f" in {self.seconds:.2f} s"
        if self.phase == "none":
            return "none needed yet"
        if self.phase == "recovering":
            return "recovering…"
        if self.phase == "stopped":
            return "not recovered: the client stopped reconnecting"
        if self.phase == "reset":
            return f"reset ({'; '.join(self._resets)}){took}: what was missed is gone"
        return f"recovered ({self._replayed} replayed){took}"

    def session_line(self) -> str:
        """Whether the last recovery resumed the session, or why not."""
        if not self.recoveries:
            return "–"
        if self.resumed:
            return f"{self.session}, resumed"
        why = f" ({self.resume_error})" if self.resume_error else ""
        return f"{self.session or 'unknown'}, a new one{why}: not resumed"

    def _tell(self) -> None:
        for callback in self._on_change:
            callback()
