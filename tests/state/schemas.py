"""What the state tests share: schemas with every kind of field, every type's edge
values, and comparisons that see what ``==`` misses (NaN bit patterns, key order).
"""

from __future__ import annotations

import math
import struct
import sys
from typing import Any

from rtctl.state import (
    Schema,
    float32,
    float64,
    int8,
    int16,
    int32,
    int64,
    uint8,
    uint16,
    uint32,
    uint64,
)

__all__ = ["EDGES", "LEAF_FIELDS", "Leaf", "Unit", "World", "exact", "f32", "loose"]


class Leaf(Schema):
    """One field of every primitive type."""

    flag: bool
    i8: int8
    i16: int16
    i32: int32
    i64: int64
    u8: uint8
    u16: uint16
    u32: uint32
    u64: uint64
    f32: float32
    f64: float64
    text: str
    count: int  # a bare int is an int64
    ratio: float  # a bare float is a float64


class Unit(Schema):
    """A map entry that holds a map and a list itself."""

    hp: uint8
    x: float32
    bag: dict[str, int8]
    tags: list[str]


class World(Schema):
    """Every kind of field: primitives, a nested schema, maps and lists of both."""

    tick: uint32
    speed: float64
    leaf: Leaf
    units: dict[str, Unit]
    scores: dict[str, float32]
    squad: list[Unit]
    path: list[int16]


LEAF_FIELDS = tuple(field.name for field in Leaf.fields())


def f32(pattern: int) -> float:
    """The float32 with the bit pattern ``pattern``, as the Python float that holds it."""
    value: float = struct.unpack("<f", struct.pack("<I", pattern))[0]
    return value


# The values each type must carry exactly, chosen where encodings change behaviour:
# sign, zigzag, varint length, the extremes, and the IEEE 754 specials.
EDGES: dict[str, list[Any]] = {
    "flag": [False, True],
    "i8": [-128, -1, 0, 1, 63, -64, 64, 127],
    "i16": [-(2**15), -1, 2**15 - 1],
    "i32": [-(2**31), -1, 2**31 - 1],
    "i64": [-(2**63), -1, 2**63 - 1],
    "u8": [0, 127, 128, 255],
    "u16": [0, 2**16 - 1],
    "u32": [0, 2**32 - 1],
    "u64": [0, 2**63, 2**64 - 1],
    "f32": [
        f32(0x7FC00000), f32(0x7FC00001), f32(0xFFC12345),  # NaN: quiet, payload, negative
        math.inf, -math.inf, -0.0, 0.0,
        f32(0x00000001),  # the smallest subnormal, 1e-45
        f32(0x007FFFFF),  # the largest subnormal
        f32(0x7F7FFFFF), -f32(0x7F7FFFFF),  # ±float32 max
        f32(0x3DCCCCCD),  # 0.1 as float32
    ],
    "f64": [math.nan, -math.nan, math.inf, -math.inf, -0.0, 5e-324,
            sys.float_info.max, -sys.float_info.max, 0.1],
    "text": ["", "a", "🙂", "中文字", "e\u0301", "a\x00b", "ß" * 200],  # 200 chars: 2-byte length
    "count": [-(2**63), 2**63 - 1],
    "ratio": [math.nan, -0.0, math.inf],
}


def _bits(value: float) -> bytes:
    return struct.pack("<d", value)


def exact(value: Any) -> Any:
    """``value`` with floats as their bit patterns and maps as ordered item lists:
    equal only if every bit and every key's place is."""
    if isinstance(value, dict):
        return [("map", key, exact(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [exact(item) for item in value]
    if isinstance(value, float):
        return ("float", _bits(value))
    return value


def loose(value: Any) -> Any:
    """``value`` compared as JSON can carry it: any NaN is NaN (JSON has no payloads,
    RFC 8259 §6), -0.0 still differs from 0.0, map order does not count."""
    if isinstance(value, dict):
        return {key: loose(item) for key, item in value.items()}
    if isinstance(value, list):
        return [loose(item) for item in value]
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else _bits(value))
    return value
