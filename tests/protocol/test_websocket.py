"""RFC 6455 reassembly and close reporting, as tables (rtctl/protocol/websocket.py)."""

from __future__ import annotations

import pytest

from rtctl.protocol.codes import CloseCode
from rtctl.protocol.websocket import (
    BINARY,
    CONTINUATION,
    TEXT,
    FrameError,
    Reassembly,
    closed_by,
)

Frame = tuple[int, bool, bytes]


@pytest.mark.parametrize(
    ("frames", "messages"),
    [
        pytest.param([(TEXT, True, b'{"a":1}')], ['{"a":1}'], id="one-text-frame"),
        pytest.param([(BINARY, True, b"\x00\xff")], [b"\x00\xff"], id="one-binary-frame"),
        pytest.param([(TEXT, False, b"ab"), (CONTINUATION, False, b"c"),
                      (CONTINUATION, True, b"d")], [None, None, "abcd"], id="three-pieces"),
        pytest.param([(TEXT, False, "é".encode()[:1]), (CONTINUATION, True, "é".encode()[1:])],
                     [None, "é"], id="a-character-across-frames"),
        pytest.param([(TEXT, False, b"a"), (CONTINUATION, True, b"b"), (TEXT, True, b"c")],
                     [None, "ab", "c"], id="next-message-after-fin"),
        pytest.param([(TEXT, True, b"")], [""], id="empty"),
    ],
)
def test_messages_are_joined(frames: list[Frame], messages: list[str | bytes | None]) -> None:
    joined = Reassembly(max_size=16)
    assert [joined.frame(*frame) for frame in frames] == messages
    assert not joined.joining


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        pytest.param([(CONTINUATION, True, b"x")], CloseCode.PROTOCOL_ERROR,
                     id="continuation-of-nothing"),
        pytest.param([(TEXT, False, b"x"), (TEXT, True, b"y")], CloseCode.PROTOCOL_ERROR,
                     id="message-inside-a-message"),
        pytest.param([(TEXT, True, b"x" * 17)], CloseCode.MESSAGE_TOO_BIG, id="one-frame-over"),
        pytest.param([(TEXT, False, b"x" * 9), (CONTINUATION, False, b"x" * 8)],
                     CloseCode.MESSAGE_TOO_BIG, id="pieces-over-before-fin"),
        pytest.param([(TEXT, True, b"\xff\xfe")], CloseCode.INVALID_PAYLOAD, id="not-utf8"),
    ],
)
def test_broken_messages_fail_with_their_code(frames: list[Frame], code: int) -> None:
    joined = Reassembly(max_size=16)
    *before, last = frames
    for frame in before:
        assert joined.frame(*frame) is None
    with pytest.raises(FrameError) as caught:
        joined.frame(*last)
    assert caught.value.code == code


def test_no_limit() -> None:
    assert Reassembly(max_size=None).frame(BINARY, True, b"x" * 100_000) == b"x" * 100_000


@pytest.mark.parametrize(
    ("sent", "received", "received_first", "expected"),
    [
        pytest.param((1000, "bye"), (1000, "bye"), False, (1000, "bye"), id="we-began"),
        pytest.param((4001, "token expired"), (4001, ""), False, (4001, "token expired"),
                     id="we-began-peer-echoed"),
        pytest.param((1000, ""), (1001, "away"), True, (1001, "away"), id="peer-began"),
        pytest.param((1011, "keepalive ping timeout"), None, False,
                     (1011, "keepalive ping timeout"), id="dead-peer-never-answered"),
        pytest.param(None, (1000, "bye"), True, (1000, "bye"), id="peer-only"),
        pytest.param(None, (0, ""), True, (CloseCode.NO_STATUS, ""), id="no-code-is-1005"),
        pytest.param(None, None, False, (CloseCode.ABNORMAL_CLOSURE, ""), id="no-close-1006"),
    ],
)
def test_closed_by(sent: tuple[int, str] | None, received: tuple[int, str] | None,
                   received_first: bool, expected: tuple[int, str]) -> None:
    assert closed_by(sent, received, received_first) == expected
