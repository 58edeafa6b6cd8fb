"""Stream positions: where a client is in a room's message stream (sans-I/O).

Every ``room.message`` carries ``offset`` (+1 per message in that room) and
``epoch`` (a string that changes when the room's history is lost, e.g. Redis
flushed). A client that reconnects says where it was with ``room.join {room,
since: {offset, epoch}}``; the gateway replays every later message or answers
``recovered: false`` with one of :data:`REASONS` -- never part of what was
missed (Centrifugo's stream recovery). The gateway and the client both read
positions with :func:`parse_position`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeAlias, TypedDict

from rtctl.params import Schema

__all__ = ["POSITION_SCHEMA", "REASONS", "Position", "PositionParam", "Reason", "StreamPosition",
           "parse_position", "position_in"]

Reason: TypeAlias = Literal["too_old", "epoch_changed", "too_many", "unknown_offset"]
REASONS: tuple[Reason, ...] = ("too_old", "epoch_changed", "too_many", "unknown_offset")
MAX_EPOCH = 64  # characters: an epoch is a short random token, never a payload


class Position(TypedDict):
    """A stream position on the wire."""

    offset: int
    epoch: str


@dataclass(frozen=True, slots=True)
class StreamPosition:
    """The last message of a stream that a reader has (``offset`` 0: none yet)."""

    offset: int
    epoch: str

    def to_json(self) -> Position:
        return {"offset": self.offset, "epoch": self.epoch}


# What parse_position accepts: a handler parameter it parses is published (rtctl spec)
# with this schema, not as "anything".
POSITION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"offset": {"type": "integer", "minimum": 0},
                   "epoch": {"type": "string", "minLength": 1, "maxLength": MAX_EPOCH}},
    "required": ["offset", "epoch"], "additionalProperties": False}
PositionParam: TypeAlias = Annotated[Any, Schema(POSITION_SCHEMA)]


def parse_position(value: Any) -> StreamPosition:
    """``{offset, epoch}`` as a client sent it; ValueError saying what is wrong."""
    if not isinstance(value, dict) or set(value) != {"offset", "epoch"}:
        raise ValueError("must be an object with exactly 'offset' and 'epoch'")
    offset, epoch = value["offset"], value["epoch"]
    if type(offset) is not int or offset < 0:
        raise ValueError("'offset' must be an integer of 0 or more")
    if not isinstance(epoch, str) or not 0 < len(epoch) <= MAX_EPOCH:
        raise ValueError(f"'epoch' must be a string of 1 to {MAX_EPOCH} characters")
    return StreamPosition(offset, epoch)


def position_in(message: Any) -> StreamPosition:
    """The ``offset`` and ``epoch`` members of a larger object (a ``room.join`` reply, a
    ``room.message``'s params); ValueError as :func:`parse_position`."""
    if not isinstance(message, dict):
        raise ValueError("must be an object with 'offset' and 'epoch'")
    return parse_position({"offset": message.get("offset"), "epoch": message.get("epoch")})
