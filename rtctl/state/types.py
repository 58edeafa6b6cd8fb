"""The primitive field types: what a value may be, and how it is written.

Each type is an ``Annotated`` alias, so ``x: float32`` reads as ``float`` to
mypy and as :data:`FLOAT32` to the schema. ``bool`` and ``str`` are used as
they are; a bare ``int`` means ``int64`` and a bare ``float`` ``float64``.

A value is checked when it is assigned: one that does not fit its type raises
at once (300 into ``uint8`` is a :class:`ValueError`, ``"3"`` a
:class:`TypeError`), never truncated later. A ``float32`` holds the nearest
float32 (IEEE 754 round-to-nearest), which is what the wire carries.

On the wire (docs/state-sync.md): bool one byte; signed integers zigzag
varints, unsigned ones varints; floats their IEEE 754 bytes, little-endian, so
every bit pattern (-0.0, NaN, subnormals) survives; strings a varint length and
UTF-8. In a *relative* delta a number is written as its difference from the
value the client holds (for floats, of the bit patterns), wrapped to the
type's width: a unit that moved by 5 costs 3 bytes instead of 4, and a
counter that went up by one a single byte.
"""

from __future__ import annotations

import math
import struct
from typing import Annotated, Any

from rtctl.state.wire import Reader, StateError, unzigzag, write_varint, zigzag

__all__ = [
    "BOOL",
    "FLOAT32",
    "FLOAT64",
    "PRIMITIVES",
    "PRIMITIVE_TYPES",
    "STRING",
    "Primitive",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
]

_JSON_SPECIALS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _shortest32(value: float) -> float:
    """The float with the fewest significant digits that rounds to the same float32.

    JSON writers print a float's shortest float64 form; for a float32 that is up
    to 17 digits where 9 at most are needed. More digits never stop a decimal
    from reading back (they only bring it nearer), so a binary search finds it.
    """
    target = struct.pack("<f", value)
    low, high = 1, 9  # 9 significant digits identify every float32 (IEEE 754 §5.12.2)
    while low < high:
        middle = (low + high) // 2
        if struct.pack("<f", float(f"{value:.{middle}g}")) == target:
            high = middle
        else:
            low = middle + 1
    return float(f"{value:.{low}g}")


class Primitive:
    """One primitive type: its checks, its bytes and its JSON form."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name

    def default(self) -> Any:
        raise NotImplementedError

    def check(self, value: Any) -> Any:
        """``value`` as stored, or TypeError/ValueError if it does not fit."""
        raise NotImplementedError

    def same(self, a: Any, b: Any) -> bool:
        """Whether assigning ``b`` over ``a`` changes nothing (bit for bit)."""
        return bool(a == b)

    def write(self, out: bytearray, value: Any) -> None:
        raise NotImplementedError

    def read(self, reader: Reader) -> Any:
        raise NotImplementedError

    def write_relative(self, out: bytearray, old: Any, new: Any) -> None:
        self.write(out, new)

    def read_relative(self, reader: Reader, old: Any) -> Any:
        return self.read(reader)

    def to_json(self, value: Any) -> Any:
        return value

    def from_json(self, value: Any) -> Any:
        try:
            return self.check(value)
        except (TypeError, ValueError) as exc:
            raise StateError(f"{self.name}: {exc}") from None


class _Bool(Primitive):
    __slots__ = ()

    def default(self) -> bool:
        return False

    def check(self, value: Any) -> bool:
        if type(value) is not bool:
            raise TypeError(f"bool field takes True or False, not {type(value).__name__}")
        return value

    def write(self, out: bytearray, value: Any) -> None:
        out.append(1 if value else 0)

    def read(self, reader: Reader) -> bool:
        byte = reader.byte()
        if byte > 1:
            raise StateError(f"bool byte {byte} at offset {reader.pos - 1}: corrupt")
        return byte == 1


class _Int(Primitive):
    __slots__ = ("bits", "high", "low", "signed")

    def __init__(self, name: str, bits: int, *, signed: bool) -> None:
        super().__init__(name)
        self.bits = bits
        self.signed = signed
        self.low = -(1 << (bits - 1)) if signed else 0
        self.high = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1

    def default(self) -> int:
        return 0

    def check(self, value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{self.name} field takes an int, not {type(value).__name__}")
        if not self.low <= value <= self.high:
            raise ValueError(f"{value} does not fit {self.name} ({self.low} to {self.high})")
        return int(value)

    def _fits(self, value: int, reader: Reader) -> int:
        if not self.low <= value <= self.high:
            raise StateError(f"{self.name} value {value} out of range before offset "
                             f"{reader.pos}: corrupt")
        return value

    def write(self, out: bytearray, value: Any) -> None:
        write_varint(out, zigzag(value, self.bits) if self.signed else value)

    def read(self, reader: Reader) -> int:
        raw = reader.varint()
        return self._fits(unzigzag(raw) if self.signed else raw, reader)

    def _wrap(self, value: int) -> int:
        """``value`` modulo 2**bits, as a signed ``bits``-bit integer."""
        value &= (1 << self.bits) - 1
        return value - (1 << self.bits) if value >> (self.bits - 1) else value

    def write_relative(self, out: bytearray, old: Any, new: Any) -> None:
        write_varint(out, zigzag(self._wrap(new - old), self.bits))

    def read_relative(self, reader: Reader, old: Any) -> int:
        step = unzigzag(reader.varint())
        if self._wrap(step) != step:
            raise StateError(f"{self.name} difference {step} wider than {self.bits} bits: corrupt")
        value = (old + step) & ((1 << self.bits) - 1)
        return self._wrap(value) if self.signed else value


class _Float(Primitive):
    __slots__ = ("_float", "_pattern_of", "bits", "size")

    def __init__(self, name: str, bits: int) -> None:
        super().__init__(name)
        self.bits = bits
        self.size = bits // 8
        self._float = struct.Struct("<f" if bits == 32 else "<d")
        self._pattern_of = struct.Struct("<I" if bits == 32 else "<Q")

    def default(self) -> float:
        return 0.0

    def check(self, value: Any) -> float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise TypeError(f"{self.name} field takes a float, not {type(value).__name__}")
        try:
            packed = self._float.pack(value)
        except (OverflowError, struct.error):  # struct.error: an int beyond any float
            raise ValueError(f"{value} is beyond the range of {self.name}") from None
        held: float = self._float.unpack(packed)[0]
        return held

    def _pattern(self, value: float) -> int:
        pattern: int = self._pattern_of.unpack(self._float.pack(value))[0]
        return pattern

    def same(self, a: Any, b: Any) -> bool:
        if a == b:  # equal floats differ in bits only as 0.0 and -0.0
            return a != 0.0 or self._pattern(a) == self._pattern(b)
        return a != a and b != b and self._pattern(a) == self._pattern(b)  # two NaNs

    def write(self, out: bytearray, value: Any) -> None:
        out += self._float.pack(value)

    def read(self, reader: Reader) -> float:
        value: float = self._float.unpack(reader.take(self.size))[0]
        return value

    def write_relative(self, out: bytearray, old: Any, new: Any) -> None:
        step = (self._pattern(new) - self._pattern(old)) & ((1 << self.bits) - 1)
        if step >> (self.bits - 1):
            step -= 1 << self.bits
        write_varint(out, zigzag(step, self.bits))

    def read_relative(self, reader: Reader, old: Any) -> float:
        step = unzigzag(reader.varint())
        if not -(1 << (self.bits - 1)) <= step < 1 << (self.bits - 1):
            raise StateError(f"{self.name} difference wider than {self.bits} bits: corrupt")
        pattern = (self._pattern(old) + step) & ((1 << self.bits) - 1)
        value: float = self._float.unpack(self._pattern_of.pack(pattern))[0]
        return value

    def to_json(self, value: Any) -> Any:
        """JSON has no NaN or infinities (RFC 8259 §6): those travel as strings."""
        if not math.isfinite(value):
            return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        return _shortest32(value) if self.bits == 32 else value

    def from_json(self, value: Any) -> Any:
        if isinstance(value, str) and value in _JSON_SPECIALS:
            value = _JSON_SPECIALS[value]
        return super().from_json(value)


class _String(Primitive):
    __slots__ = ()

    def default(self) -> str:
        return ""

    def check(self, value: Any) -> str:
        if not isinstance(value, str):
            raise TypeError(f"str field takes a str, not {type(value).__name__}")
        try:
            value.encode()
        except UnicodeEncodeError:
            raise ValueError(f"{value!r} is not valid Unicode (a lone surrogate) and has "
                             "no UTF-8 form") from None
        return str(value)

    def write(self, out: bytearray, value: Any) -> None:
        data = value.encode()
        write_varint(out, len(data))
        out += data

    def read(self, reader: Reader) -> str:
        start = reader.pos
        data = reader.take(reader.count("string length"))
        try:
            return data.decode()
        except UnicodeDecodeError:
            raise StateError(f"string at offset {start} is not UTF-8: corrupt") from None


BOOL = _Bool("bool")
STRING = _String("str")
INT8, INT16, INT32, INT64 = (_Int(f"int{b}", b, signed=True) for b in (8, 16, 32, 64))
UINT8, UINT16, UINT32, UINT64 = (_Int(f"uint{b}", b, signed=False) for b in (8, 16, 32, 64))
FLOAT32, FLOAT64 = _Float("float32", 32), _Float("float64", 64)

int8 = Annotated[int, INT8]
int16 = Annotated[int, INT16]
int32 = Annotated[int, INT32]
int64 = Annotated[int, INT64]
uint8 = Annotated[int, UINT8]
uint16 = Annotated[int, UINT16]
uint32 = Annotated[int, UINT32]
uint64 = Annotated[int, UINT64]
float32 = Annotated[float, FLOAT32]
float64 = Annotated[float, FLOAT64]

PRIMITIVES: dict[Any, Primitive] = {bool: BOOL, str: STRING, int: INT64, float: FLOAT64}
"""Plain annotations and the type they stand for."""

PRIMITIVE_TYPES: dict[str, Primitive] = {
    kind.name: kind for kind in (BOOL, STRING, INT8, INT16, INT32, INT64, UINT8, UINT16, UINT32,
                                 UINT64, FLOAT32, FLOAT64)}
"""Every primitive by its name (the names of docs/state-sync.md and ``state.schema``)."""
