"""The binary frames of ``rtctl.v1.binary`` and the subprotocol choice, sans-I/O."""

from __future__ import annotations

import pytest

from rtctl.protocol.frames import MAX_ROOM_BYTES, STATE_FRAME, parse_state_frame, state_frame
from rtctl.protocol.upgrade import (
    BINARY_SUBPROTOCOL,
    SUBPROTOCOL,
    select_subprotocol,
    takes_binary,
)


def test_a_state_frame_is_type_room_length_room_then_the_message() -> None:
    assert state_frame("arena", b"\x02\x07\x01") == b"\x01\x05arena\x02\x07\x01"
    assert STATE_FRAME == 0x01


@pytest.mark.parametrize(("room", "message"), [
    ("a", b""),  # an empty message: no change
    ("arena", b"\x01\x00\x00"),
    ("lobby:é€🎮", bytes(range(256))),  # the length counts UTF-8 bytes, not characters
    ("r" * MAX_ROOM_BYTES, b"\xff" * 70_000),
])
def test_a_state_frame_round_trips(room: str, message: bytes) -> None:
    frame = state_frame(room, message)
    assert frame[1] == len(room.encode())
    assert parse_state_frame(frame) == (room, message)


@pytest.mark.parametrize(("room", "error"), [
    ("", "the name is empty"),
    ("r" * (MAX_ROOM_BYTES + 1), "256 bytes of UTF-8; a state frame carries at most 255"),
    ("é" * 128, "256 bytes of UTF-8"),
    ("bad\udc80", "not valid Unicode"),
])
def test_a_room_name_a_frame_cannot_carry_is_refused(room: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        state_frame(room, b"")


@pytest.mark.parametrize(("data", "error"), [
    (b"", "empty binary frame"),
    (b"\x02\x05arena", "frame type 0x02 is not a state frame"),
    (b"\x00", "frame type 0x00"),
    (b"\x01", "cut short: no room length"),
    (b"\x01\x00", "names no room"),
    (b"\x01\x05are", "a room name of 5 bytes, 3 present"),
    (b"\x01\x02\xc3\x28", "the room name is not UTF-8"),
])
def test_a_malformed_frame_is_one_clear_error(data: bytes, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_state_frame(data)


@pytest.mark.parametrize(("offered", "chosen"), [
    ([BINARY_SUBPROTOCOL, SUBPROTOCOL], BINARY_SUBPROTOCOL),
    ([SUBPROTOCOL, BINARY_SUBPROTOCOL], BINARY_SUBPROTOCOL),  # the server's preference
    ([BINARY_SUBPROTOCOL], BINARY_SUBPROTOCOL),
    ([SUBPROTOCOL], SUBPROTOCOL),
    ([SUBPROTOCOL, "rtctl.bearer.eyJ"], SUBPROTOCOL),
    (["rtctl.v2", "chat"], None),
    ([], None),
])
def test_the_gateway_prefers_binary_then_json(offered: list[str], chosen: str | None) -> None:
    assert select_subprotocol(offered) == chosen


@pytest.mark.parametrize(("subprotocol", "binary"), [
    (BINARY_SUBPROTOCOL, True), (SUBPROTOCOL, False), (None, False), ("rtctl.v1.binaryx", False),
])
def test_only_the_binary_subprotocol_takes_binary_frames(subprotocol: str | None,
                                                         binary: bool) -> None:
    assert takes_binary(subprotocol) is binary
