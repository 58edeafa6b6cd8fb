"""RFC 6455 rules the frame-level drivers apply themselves, sans-I/O.

``websockets`` joins fragments and reports closes on its own; picows hands over
single frames and the raw closing handshake. The gateway's picows transport and
the client's picows link both use these, so the rules are written once:

- :class:`Reassembly` joins a fragmented message (§5.4): a text or binary frame
  with FIN clear, then continuation frames. A continuation with no message
  begun, or a new message inside one, is a protocol error (1002); a message
  over the size limit is 1009 (§7.4.1), found before it is all buffered; text
  that is not UTF-8 once whole is 1007 (§8.1: a character may straddle frames).
- :func:`closed_by` says how a connection closed (§7.1.5): the side that started
  the closing handshake names the code and reason.
"""

from __future__ import annotations

from rtctl.protocol.codes import CloseCode

__all__ = ["BINARY", "CONTINUATION", "TEXT", "FrameError", "Reassembly", "closed_by"]

CONTINUATION, TEXT, BINARY = 0x0, 0x1, 0x2  # data frame opcodes (RFC 6455 §5.2)


class FrameError(Exception):
    """Fail the connection with ``code`` (RFC 6455 §7.1.7); ``reason`` goes in the Close frame."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Reassembly:
    """One connection's message being joined from its frames."""

    __slots__ = ("_max_size", "_opcode", "_parts", "_size")

    def __init__(self, max_size: int | None) -> None:
        self._max_size = max_size
        self._opcode: int | None = None  # TEXT or BINARY while a message is being joined
        self._parts: list[bytes] = []
        self._size = 0

    @property
    def joining(self) -> bool:
        """True between a message's first frame and its last."""
        return self._opcode is not None

    def frame(self, opcode: int, fin: bool, payload: bytes) -> str | bytes | None:
        """Take one data frame; the whole message at its last frame (``str`` for text).

        Raises :class:`FrameError` when the frame breaks the rules above.
        """
        if (opcode == CONTINUATION) != self.joining:
            reason = ("continuation of no message" if opcode == CONTINUATION
                      else "new message inside a message")
            raise FrameError(CloseCode.PROTOCOL_ERROR, reason)
        self._size += len(payload)
        if self._max_size is not None and self._size > self._max_size:
            raise FrameError(CloseCode.MESSAGE_TOO_BIG, f"message over {self._max_size} bytes")
        if opcode != CONTINUATION:
            self._opcode = opcode
        self._parts.append(payload)
        if not fin:
            return None
        data, kind = b"".join(self._parts), self._opcode
        self._opcode, self._parts, self._size = None, [], 0
        if kind == BINARY:
            return data
        try:
            return data.decode()
        except UnicodeDecodeError:
            raise FrameError(CloseCode.INVALID_PAYLOAD, "text that is not UTF-8") from None


def closed_by(sent: tuple[int, str] | None, received: tuple[int, str] | None,
              received_first: bool) -> tuple[int, str]:
    """Code and reason of a closed connection, as the side that began closing gave them.

    ``sent``/``received`` are this side's and the peer's Close frames (code 0 or
    1005: the frame had no code). A close we sent that was never answered (a dead
    peer) is still the truth; with no Close frame at all it is 1006 (§7.1.5).
    """
    if sent is not None and (received is None or not received_first):
        return sent
    if received is not None:
        code, reason = received
        return (code, reason) if code else (CloseCode.NO_STATUS, "")
    return CloseCode.ABNORMAL_CLOSURE, ""
