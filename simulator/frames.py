"""WebSocket frames without the message layer: cut a byte stream into frames, build a few.

ws mode relays frames between two TCP streams unchanged, so it needs only to
know where each frame ends and what it is (RFC 6455 §5.2): FIN, opcode, the
7-, 16- or 64-bit payload length and whether a masking key follows. Payloads
are never unmasked, decoded or re-framed: client frames stay masked with the
client's key (§5.3) and server frames stay unmasked, as they arrived.

:func:`frame_bounds` reads one header; it is the hot path of both the proxy
and ``benchmarks/loadgen.py``, so it is one flat function. :class:`FrameParser`
is the sans-I/O core of the relay: bytes in, complete :class:`Frame` objects
out, with what a relay must check before forwarding:

* the mask bit matches the side (§5.1: clients mask, servers do not);
* no reserved bit (§5.2: no extension is negotiated) or reserved opcode;
* control frames are final and at most 125 bytes (§5.5);
* a message is a text or binary frame and its continuations up to FIN, and
  control frames may come between them (§5.4);
* a frame or message longer than ``max_size`` is refused from its header,
  before its payload is buffered (close code 1009, §7.4.1).

Errors: :class:`FrameError` carries the close code to answer with.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from rtctl.protocol.codes import CloseCode

_PROTOCOL_ERROR, _MESSAGE_TOO_BIG = CloseCode.PROTOCOL_ERROR, CloseCode.MESSAGE_TOO_BIG

__all__ = [
    "BINARY",
    "CLOSE",
    "CONTINUATION",
    "DEFAULT_MAX_SIZE",
    "PING",
    "PONG",
    "TEXT",
    "Frame",
    "FrameError",
    "FrameParser",
    "apply_mask",
    "close_frame",
    "encode_frame",
    "frame_bounds",
    "frame_payload",
]

CONTINUATION, TEXT, BINARY = 0x0, 0x1, 0x2
CLOSE, PING, PONG = 0x8, 0x9, 0xA
_KNOWN = frozenset({CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG})
DEFAULT_MAX_SIZE = 16 * 1024 * 1024  # bytes of payload one message may carry


class FrameError(Exception):
    """The peer broke RFC 6455 framing; ``code`` is the close code to fail with (§7.4.1)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def frame_bounds(buf: bytes, pos: int) -> tuple[int, int, int] | None:
    """``(first byte, payload start, frame end)`` of the frame at ``buf[pos]`` (§5.2).

    None when the header itself is not complete yet. ``frame end`` may lie
    beyond ``len(buf)``: the payload has not all arrived. The payload starts
    after the masking key when there is one.
    """
    end = len(buf)
    if end - pos < 2:
        return None
    second = buf[pos + 1]
    length = second & 0x7F
    start = pos + 2
    if length == 126:
        start += 2
        length = int.from_bytes(buf[pos + 2 : start], "big")
    elif length == 127:
        start += 8
        length = int.from_bytes(buf[pos + 2 : start], "big")
    if second & 0x80:
        start += 4
    if start > end:
        return None
    return buf[pos], start, start + length


class Frame(NamedTuple):
    """One complete frame as it arrived: ``data`` is header, masking key and payload.

    A named tuple rather than a frozen dataclass: one is built per frame on the
    hot path, and a tuple is several times cheaper to build.
    """

    opcode: int
    fin: bool
    first: bool  # opens a message: a text or binary frame (§5.4)
    length: int  # payload bytes
    data: bytes

    @property
    def control(self) -> bool:
        """Close, ping or pong (§5.5): never part of a message."""
        return self.opcode >= CLOSE


class FrameParser:
    """Cut one direction's byte stream into frames as they complete (RFC 6455 §5.2)."""

    def __init__(self, *, masked: bool, max_size: int = DEFAULT_MAX_SIZE) -> None:
        self.masked = masked  # True for client → server frames (§5.1)
        self.max_size = max_size
        self._buffer = bytearray()
        self._need = 0  # bytes the buffered frame needs before it completes
        self._header: tuple[int, bool, bool] | None = None  # the buffered frame's, checked
        self._message = -1  # payload bytes of the open message; -1 when none is open

    def feed(self, data: bytes) -> list[Frame]:
        """The frames ``data`` completes, in order; a partial frame waits for the next call."""
        if self._buffer:
            self._buffer += data
            if len(self._buffer) < self._need:
                return []
            buf = bytes(self._buffer)
            self._buffer.clear()
        else:
            buf = data
        frames: list[Frame] = []
        pos, end = 0, len(buf)
        while (bounds := frame_bounds(buf, pos)) is not None:
            first, start, stop = bounds
            header = self._header or self._check(first, buf[pos + 1], stop - start)
            if stop > end:
                self._header, self._need = header, stop - pos
                break
            self._header = None
            frames.append(Frame(*header, stop - start, buf[pos:stop]))
            pos = stop
        else:
            self._need = 0
        if pos < end:
            self._buffer += buf[pos:]
        return frames

    def _check(self, first: int, second: int, length: int) -> tuple[int, bool, bool]:
        """Validate a header (before its payload is buffered); ``(opcode, fin, first)``."""
        opcode, fin = first & 0x0F, bool(first & 0x80)
        if first & 0x70:
            raise FrameError(_PROTOCOL_ERROR, "reserved bits set without an extension")
        if opcode not in _KNOWN:
            raise FrameError(_PROTOCOL_ERROR, f"reserved opcode {opcode:#x}")
        if bool(second & 0x80) != self.masked:
            raise FrameError(_PROTOCOL_ERROR, "client frames must be masked, server frames not"
                             if self.masked else "server frames must not be masked")
        if length > self.max_size or length >> 63:
            raise FrameError(_MESSAGE_TOO_BIG, f"frame of {length} bytes is over the limit")
        if opcode >= CLOSE:
            if not fin or length > 125:
                raise FrameError(_PROTOCOL_ERROR, "control frames must be final, <= 125 bytes")
            return opcode, fin, False
        opens = opcode != CONTINUATION
        if opens == (self._message >= 0):
            raise FrameError(_PROTOCOL_ERROR, "data frame inside a fragmented message"
                             if opens else "continuation frame outside a message")
        size = length if opens else self._message + length
        if size > self.max_size:
            raise FrameError(_MESSAGE_TOO_BIG, f"message of {size} bytes is over the limit")
        self._message = -1 if fin else size
        return opcode, fin, opens


def encode_frame(opcode: int, payload: bytes, *, mask: bool) -> bytes:
    """One final frame; ``mask`` for a client's frame, with a fresh random key (§5.3)."""
    length = len(payload)
    bit = 0x80 if mask else 0
    if length < 126:
        header = bytes((0x80 | opcode, bit | length))
    elif length < 1 << 16:
        header = bytes((0x80 | opcode, bit | 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, bit | 127)) + length.to_bytes(8, "big")
    if not mask:
        return header + payload
    key = os.urandom(4)
    return header + key + apply_mask(payload, key)


def apply_mask(data: bytes, key: bytes) -> bytes:
    """XOR ``data`` with the 4-byte masking ``key`` repeated (§5.3): masks and unmasks."""
    length = len(data)
    stream = (key * (length // 4 + 1))[:length]
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(length, "big")


def frame_payload(frame: Frame) -> bytes:
    """The application data of ``frame``, unmasked (for the inspector, never the data path)."""
    start = len(frame.data) - frame.length
    payload = frame.data[start:]
    if frame.data[1] & 0x80:  # the mask bit: the 4 bytes before the payload are the key
        return apply_mask(payload, frame.data[start - 4:start])
    return payload


def close_frame(code: int, reason: str = "", *, mask: bool) -> bytes:
    """A close frame with ``code`` and ``reason`` (§5.5.1), the reason cut to fit 125 bytes."""
    cut = reason.encode()[:123].decode(errors="ignore")  # whole UTF-8 characters only
    payload = code.to_bytes(2, "big") + cut.encode()
    return encode_frame(CLOSE, payload, mask=mask)
