"""What ``room.*`` answers and sends, field by field (for ``rtctl spec`` and its tests).

The replies of :class:`~rtctl.services.rooms.RoomService` and the notifications of
:class:`~rtctl.services.room_delivery.RoomDelivery`, as TypedDicts: the published
description (``docs/protocol.md`` §4, §5) is generated from these, and the tests hold
live replies and notifications to them.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

from rtctl.protocol.streams import Reason

__all__ = ["Joined", "MembersPage", "RoomDiff", "RoomMember", "RoomMessage"]


class Joined(TypedDict):
    """``room.join``: ``members`` only in a small room; ``recovered`` with ``replayed`` or
    ``reason`` only for a join with ``since``; ``version``, ``encoding`` only in a stateful
    room."""

    members: NotRequired[list[str]]
    total: int
    offset: int
    epoch: str
    recovered: NotRequired[bool]
    replayed: NotRequired[int]
    reason: NotRequired[Reason]
    version: NotRequired[int]
    encoding: NotRequired[Literal["binary", "json"]]


class MembersPage(TypedDict):
    members: list[str]
    total: int
    next: str | None


# "from" is a Python keyword: the functional form of TypedDict.
RoomMessage = TypedDict("RoomMessage", {"room": str, "from": str, "data": Any,
                                        "offset": int, "epoch": str})


class RoomMember(TypedDict):
    room: str
    user: str


class RoomDiff(TypedDict):
    room: str
    total: int
    joined: list[str]
    left: list[str]
    truncated: bool
