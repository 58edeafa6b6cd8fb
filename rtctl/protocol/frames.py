"""The binary frames of ``rtctl.v1.binary``: what a server-to-client binary message holds.

A binary WebSocket message (RFC 6455 §5.6, opcode 2) starts with one byte,
its frame type. Type :data:`STATE_FRAME` carries one room's state::

    0x01 | room_len: u8 | room: room_len bytes of UTF-8 | message

where ``message`` is one message of the state encoder (``rtctl.state``), passed
through untouched. Other frame types are reserved: a client ignores them, so a
new type needs no new subprotocol. Clients never send binary frames (the
gateway closes with 1003). Pure functions of bytes, shared by the gateway's
services, the client and the inspector.
"""

from __future__ import annotations

__all__ = ["MAX_ROOM_BYTES", "STATE_FRAME", "BinaryMessage", "parse_state_frame", "state_frame"]

STATE_FRAME = 0x01
MAX_ROOM_BYTES = 255  # the room's length is one byte


class BinaryMessage(bytes):
    """Bytes to be sent as a binary message (opcode 2); plain ``bytes`` queued are text.

    Bytes itself, so an outbound queue counts and hands out both kinds alike and
    a driver asks ``type(data) is BinaryMessage`` for the opcode. A frame made
    once for many connections is made as one, and queued without a copy.
    """

    __slots__ = ()


def state_frame(room: str, message: bytes) -> BinaryMessage:
    """The state frame of ``message`` for ``room``; ValueError if the name cannot be carried."""
    try:
        name = room.encode()
    except UnicodeEncodeError as exc:  # a lone surrogate
        raise ValueError(f"room name {room!r} is not valid Unicode ({exc.reason})") from None
    if not name:
        raise ValueError("a state frame names its room: the name is empty")
    if len(name) > MAX_ROOM_BYTES:
        raise ValueError(f"room name is {len(name)} bytes of UTF-8; a state frame carries "
                         f"at most {MAX_ROOM_BYTES}")
    return BinaryMessage(bytes((STATE_FRAME, len(name))) + name + message)


def parse_state_frame(data: bytes) -> tuple[str, bytes]:
    """``(room, message)`` of a state frame; ValueError naming what is wrong with it."""
    if not data:
        raise ValueError("empty binary frame: no frame type")
    if data[0] != STATE_FRAME:
        raise ValueError(f"frame type {data[0]:#04x} is not a state frame ({STATE_FRAME:#04x})")
    if len(data) < 2:
        raise ValueError("state frame cut short: no room length")
    if data[1] == 0:
        raise ValueError("state frame names no room (room length 0)")
    end = 2 + data[1]
    if len(data) < end:
        raise ValueError(f"state frame cut short: a room name of {data[1]} bytes, "
                         f"{len(data) - 2} present")
    try:
        room = data[2:end].decode()
    except UnicodeDecodeError as exc:
        raise ValueError(f"state frame: the room name is not UTF-8 ({exc.reason})") from None
    return room, data[end:]

