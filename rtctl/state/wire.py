"""Bytes of the state wire format: varints, zigzag, and a reader that refuses bad input.

Integers are unsigned LEB128 varints (7 bits a byte, low first, high bit set
on every byte but the last: the encoding of protobuf and WebAssembly); signed
ones are zigzag-mapped first so small magnitudes of either sign stay short
(0 → 0, -1 → 1, 1 → 2, …). A reader never trusts a length: a truncated or
overlong message raises :class:`StateError` before anything is applied.

Errors::

    RtctlError
    └── StateError          a message that cannot be applied (state untouched)
        ├── VersionGap      a delta whose base is not the decoder's version
        └── HistoryLost     the encoder no longer knows what changed since a version
"""

from __future__ import annotations

from rtctl.exceptions import RtctlError

__all__ = [
    "MAX_VARINT_BYTES",
    "HistoryLost",
    "Reader",
    "StateError",
    "VersionGap",
    "unzigzag",
    "write_varint",
    "zigzag",
]

MAX_VARINT_BYTES = 10  # ceil(64 / 7): the longest varint a 64-bit value needs


class StateError(RtctlError):
    """A state message that is corrupt, truncated or does not fit the schema."""


class VersionGap(StateError):
    """A delta starts from another version than the one held: ask for a snapshot."""

    def __init__(self, expected: int | None, base: int) -> None:
        held = "no snapshot yet" if expected is None else f"version {expected}"
        super().__init__(f"delta from version {base} cannot apply: the decoder holds {held}")
        self.expected = expected
        self.base = base


class HistoryLost(StateError):
    """What changed since ``base`` is no longer known: send a full snapshot instead."""

    def __init__(self, base: int, oldest: int) -> None:
        super().__init__(f"no history since version {base}: the oldest kept is {oldest}")
        self.base = base
        self.oldest = oldest


def zigzag(value: int, bits: int = 64) -> int:
    """Map a signed ``bits``-bit integer to an unsigned one (protobuf's sint)."""
    return (value << 1) ^ (value >> (bits - 1)) if value < 0 else value << 1


def unzigzag(value: int) -> int:
    return (value >> 1) ^ -(value & 1)


def write_varint(out: bytearray, value: int) -> None:
    """Append ``value`` (≥ 0) as an unsigned LEB128 varint."""
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


class Reader:
    """Reads a message front to back; every shortfall is a :class:`StateError`."""

    __slots__ = ("_data", "pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.pos = 0

    def expect_end(self) -> None:
        if self.pos != len(self._data):
            raise StateError(f"{len(self._data) - self.pos} bytes left over after the message "
                             f"(at offset {self.pos}): corrupt")

    def byte(self) -> int:
        if self.pos >= len(self._data):
            raise StateError(f"message truncated at offset {self.pos}")
        value = self._data[self.pos]
        self.pos += 1
        return value

    def take(self, size: int) -> bytes:
        end = self.pos + size
        if end > len(self._data):
            raise StateError(f"message truncated at offset {self.pos}: {size} bytes announced, "
                             f"{len(self._data) - self.pos} left")
        chunk = self._data[self.pos:end]
        self.pos = end
        return chunk

    def varint(self) -> int:
        data, pos = self._data, self.pos
        if pos < len(data) and data[pos] < 0x80:  # the common case: one byte
            self.pos = pos + 1
            return data[pos]
        result = shift = 0
        for _ in range(MAX_VARINT_BYTES):
            byte = self.byte()
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7
        raise StateError(f"varint longer than {MAX_VARINT_BYTES} bytes at offset {self.pos}")

    def count(self, what: str) -> int:
        """A length or count: it cannot exceed the bytes left (each item takes one at least)."""
        value = self.varint()
        if value > len(self._data) - self.pos:
            raise StateError(f"{what} of {value} exceeds the {len(self._data) - self.pos} "
                             f"bytes left: corrupt")
        return value
