"""Authoritative state: schemas, versions, and the bytes that keep every client's copy right.

Sans-I/O: values in, bytes out; no sockets, no clocks. A game declares its
state as :class:`Schema` classes, mutates instances like plain objects, and an
:class:`Encoder` turns what changed into small versioned deltas that a
:class:`Decoder` (on a client, or offline in a benchmark) applies exactly::

    from rtctl.state import Decoder, Encoder, Schema, float32, uint8

    class Entity(Schema):
        x: float32
        y: float32
        hp: uint8
        name: str

    class Arena(Schema):
        entities: dict[str, Entity]

    arena = Arena()
    enc, dec = Encoder(arena), Decoder(Arena)
    dec.apply(enc.full())
    arena.entities["e1"] = Entity(x=1.5, y=2.0, hp=100, name="ada")
    dec.apply(enc.delta())
    assert dec.state.to_dict() == arena.to_dict()

docs/state-sync.md has the wire format byte by byte.
"""

from rtctl.state.decoder import Decoder, versions
from rtctl.state.encoder import DEFAULT_HISTORY, Encoder
from rtctl.state.patch import Change
from rtctl.state.schema import Field, Schema
from rtctl.state.types import (
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
from rtctl.state.wire import HistoryLost, StateError, VersionGap

__all__ = [
    "DEFAULT_HISTORY",
    "Change",
    "Decoder",
    "Encoder",
    "Field",
    "HistoryLost",
    "Schema",
    "StateError",
    "VersionGap",
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
    "versions",
]
