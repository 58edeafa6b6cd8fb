"""The frame parser behind ws mode's relay (RFC 6455 §5): bytes in, frames out, no sockets."""

from __future__ import annotations

import itertools

import pytest

from simulator.frames import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    PONG,
    TEXT,
    FrameError,
    FrameParser,
    close_frame,
    encode_frame,
    frame_bounds,
)

KEY = b"\x01\x02\x03\x04"


def raw(opcode: int, payload: bytes = b"", *, fin: bool = True, mask: bool = False,
        rsv: int = 0, length: int | None = None) -> bytes:
    """A frame built by hand (§5.2); ``length`` may lie about the payload for header tests."""
    n = len(payload) if length is None else length
    first = (0x80 if fin else 0) | rsv | opcode
    bit = 0x80 if mask else 0
    if n < 126:
        header = bytes((first, bit | n))
    elif n < 1 << 16:
        header = bytes((first, bit | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((first, bit | 127)) + n.to_bytes(8, "big")
    if not mask:
        return header + payload
    return header + KEY + bytes(b ^ KEY[i % 4] for i, b in enumerate(payload))


def unmask(frame: bytes, start: int) -> bytes:
    key, payload = frame[start - 4 : start], frame[start:]
    return bytes(b ^ key[i % 4] for i, b in enumerate(payload))


@pytest.mark.parametrize(
    ("size", "mask", "header"),
    [(0, False, 2), (125, False, 2), (126, False, 4), (65535, False, 4), (65536, False, 10),
     (0, True, 6), (125, True, 6), (126, True, 8), (65535, True, 8), (65536, True, 14)],
)
def test_the_three_length_forms(size: int, mask: bool, header: int) -> None:
    frame = raw(BINARY, b"x" * size, mask=mask)
    assert frame_bounds(frame, 0) == (0x80 | BINARY, header, header + size)
    (parsed,) = FrameParser(masked=mask).feed(frame)
    assert (parsed.opcode, parsed.fin, parsed.first, parsed.length) == (BINARY, True, True, size)
    assert parsed.data == frame


@pytest.mark.parametrize("frame", [raw(TEXT, b"hello", mask=True), raw(TEXT, b"y" * 300,
                                                                       mask=True),
                                   raw(BINARY, b"z" * 70_000, mask=True)])
@pytest.mark.parametrize("chunk", [1, 3, 7, 1000])
def test_split_reads_complete_one_frame_at_its_last_byte(frame: bytes, chunk: int) -> None:
    parser = FrameParser(masked=True)
    pieces = [frame[i : i + chunk] for i in range(0, len(frame), chunk)]
    results = [parser.feed(piece) for piece in pieces]
    assert all(r == [] for r in results[:-1])
    (parsed,) = results[-1]
    assert parsed.data == frame


def test_a_read_holding_frames_and_a_partial_one() -> None:
    frames = [raw(TEXT, b"a"), raw(BINARY, b"bb"), raw(PING, b"p"), raw(TEXT, b"cccc")]
    stream = b"".join(frames)
    parser = FrameParser(masked=False)
    first = parser.feed(stream[:-2])
    assert [f.data for f in first] == frames[:3]
    assert [f.data for f in parser.feed(stream[-2:])] == frames[3:]


def test_masked_frames_are_kept_as_they_came() -> None:
    frame = raw(TEXT, b"secret", mask=True)
    (parsed,) = FrameParser(masked=True).feed(frame)
    assert parsed.data == frame
    assert unmask(parsed.data, 6) == b"secret"


def test_a_fragmented_message_with_control_frames_between() -> None:
    sequence = [raw(TEXT, b"he", fin=False), raw(PING, b"1"), raw(CONTINUATION, b"ll", fin=False),
                raw(PONG), raw(CONTINUATION, b"o"), raw(BINARY, b"next")]
    parsed = FrameParser(masked=False).feed(b"".join(sequence))
    assert [(f.opcode, f.fin, f.first, f.control) for f in parsed] == [
        (TEXT, False, True, False), (PING, True, False, True),
        (CONTINUATION, False, False, False), (PONG, True, False, True),
        (CONTINUATION, True, False, False), (BINARY, True, True, False)]
    assert sum(f.length for f in parsed[:5] if not f.control) == 5


@pytest.mark.parametrize(
    ("masked", "stream", "code", "message"),
    [(True, raw(TEXT, b"hi"), 1002, "must be masked"),
     (False, raw(TEXT, b"hi", mask=True), 1002, "must not be masked"),
     (False, raw(TEXT, b"hi", rsv=0x40), 1002, "reserved bits"),
     (False, raw(0x3, b"hi"), 1002, "reserved opcode"),
     (False, raw(0xB), 1002, "reserved opcode"),
     (False, raw(PING, b"p", fin=False), 1002, "control frames"),
     (False, raw(CLOSE, b"c" * 126), 1002, "control frames"),
     (False, raw(CONTINUATION, b"x"), 1002, "outside a message"),
     (False, raw(TEXT, b"a", fin=False) + raw(TEXT, b"b"), 1002, "inside a fragmented"),
     (False, raw(BINARY, length=1 << 40), 1009, "frame of"),
     (False, raw(BINARY, length=1 << 63), 1009, "frame of"),
     (False, raw(TEXT, b"x" * 600, fin=False) + raw(CONTINUATION, b"x" * 600, fin=False),
      1009, "message of")],
)
def test_bad_frames_fail_with_the_close_code(masked: bool, stream: bytes, code: int,
                                             message: str) -> None:
    parser = FrameParser(masked=masked, max_size=1000)
    with pytest.raises(FrameError, match=message) as failed:
        parser.feed(stream)
    assert failed.value.code == code


def test_an_oversize_frame_is_refused_from_its_header_alone() -> None:
    parser = FrameParser(masked=False, max_size=1000)
    header = raw(BINARY, length=5000)
    assert parser.feed(header[:1]) == []
    with pytest.raises(FrameError):
        parser.feed(header[1:])


@pytest.mark.parametrize(
    ("opcode", "payload", "mask"),
    [(opcode, payload, mask) for opcode, payload, mask in itertools.product(
        [TEXT, PONG], [b"", b"x" * 100, b"x" * 200, b"y" * 70_000], [False, True])
     if opcode == TEXT or len(payload) <= 125],  # control frames carry at most 125 bytes
)
def test_encoded_frames_parse_back(opcode: int, payload: bytes, mask: bool) -> None:
    frame = encode_frame(opcode, payload, mask=mask)
    (parsed,) = FrameParser(masked=mask).feed(frame)
    bounds = frame_bounds(frame, 0)
    assert bounds is not None
    assert (parsed.opcode, parsed.length) == (opcode, len(payload))
    assert (unmask(frame, bounds[1]) if mask else frame[bounds[1]:]) == payload


def test_close_frames_cut_the_reason_at_a_character() -> None:
    frame = close_frame(1001, "é" * 100, mask=False)
    assert len(frame) <= 2 + 125
    payload = frame[2:]
    assert int.from_bytes(payload[:2], "big") == 1001
    assert payload[2:].decode() == "é" * 61
