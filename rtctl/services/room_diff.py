"""A big room's membership news between two ``room.diff``: what changed, net (sans-I/O).

Above ``small_room`` users, :class:`~rtctl.services.room_delivery.RoomDelivery`
does not announce each join and leave: it counts them here, and sends them as
one ``room.diff {room, total, joined, left, truncated}`` when the timer it set
fires (Phoenix Presence's ``presence_diff``).
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["Cancellable", "PendingDiff"]


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class PendingDiff:
    """One room's net membership change since its last diff."""

    __slots__ = ("changes", "handle", "total")

    def __init__(self) -> None:
        self.changes: dict[str, bool] = {}  # user → joined (True) or left (False)
        self.total = 0
        self.handle: Cancellable | None = None  # the timer that will send it

    def add(self, user: str, joined: bool, total: int) -> None:
        """Count a change; one that undoes a pending one cancels it."""
        if self.changes.get(user) is (not joined):
            del self.changes[user]
        else:
            self.changes[user] = joined
        self.total = total

    def params(self, room: str, names: int) -> dict[str, Any]:
        """``room.diff`` params: at most ``names`` users per list, ``truncated`` if more."""
        joined = sorted(user for user, j in self.changes.items() if j)
        left = sorted(user for user, j in self.changes.items() if not j)
        return {"room": room, "total": self.total, "joined": joined[:names],
                "left": left[:names], "truncated": max(len(joined), len(left)) > names}
