"""The client side: apply full states and deltas, binary or JSON, to a local copy.

::

    dec = Decoder(Arena)
    for message in messages:        # from Encoder.full()/delta()/since(), or their JSON
        for change in dec.apply(message):
            print(change.path, change.kind, change.value)
    dec.state.to_dict() == server_state.to_dict()

A message is checked whole before anything is applied: a corrupt or truncated
one raises :class:`~rtctl.state.wire.StateError` and leaves :attr:`Decoder.state`
as it was. A delta from another version than the one held raises
:class:`~rtctl.state.wire.VersionGap`: the client asks for a snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from rtctl.state import jsonform
from rtctl.state.containers import StateList, StateMap
from rtctl.state.encoder import DELTA, DELTA_ABSOLUTE, FULL
from rtctl.state.nodes import ItemType, ListOf, MapOf, Node, SchemaOf
from rtctl.state.patch import Change, ListOps, MapOps, SchemaOps, apply, install
from rtctl.state.schema import Schema
from rtctl.state.types import STRING, Primitive
from rtctl.state.wire import Reader, StateError, VersionGap

__all__ = ["Decoder", "versions"]


def versions(message: bytes) -> tuple[int, int | None]:
    """A binary message's version and base (None for a full state), read from its header."""
    reader = Reader(message)
    kind = reader.byte()
    version = reader.varint()
    if kind == FULL:
        return version, None
    if kind not in (DELTA, DELTA_ABSOLUTE):
        raise StateError(f"unknown state message kind 0x{kind:02x}")
    back = reader.varint()
    if not 0 < back <= version:
        raise StateError(f"delta to version {version} goes back {back}: corrupt")
    return version, version - back


class Decoder:
    """A client's copy of a state of type ``schema``, kept by the messages it applies."""

    def __init__(self, schema: type[Schema]) -> None:
        schema.fields()  # a schema without fields fails here, not at the first message
        self.schema = schema
        self.state: Schema = schema()
        self.version: int | None = None  # None until a full state arrives

    def apply(self, message: bytes | str | Mapping[str, Any]) -> list[Change]:
        """Apply one message: bytes (binary), str or parsed JSON; returns what changed."""
        if not message:
            return []
        if isinstance(message, bytes | bytearray | memoryview):
            return self._apply_binary(bytes(message))
        if isinstance(message, str):
            try:
                message = orjson.loads(message)
            except orjson.JSONDecodeError as exc:
                raise StateError(f"state message is not JSON: {exc}") from None
        return self._apply_json(message)

    def _apply_binary(self, message: bytes) -> list[Change]:
        version, base = versions(message)
        reader = Reader(message)
        kind = reader.byte()
        reader.varint()
        if base is None:
            state = _read_full(reader, self.schema)
            reader.expect_end()
            return self._replace(state, version)
        reader.varint()
        self._check_base(base)
        ops = _read_schema(reader, self.state, relative=kind == DELTA)
        reader.expect_end()
        return self._patch(ops, version)

    def _apply_json(self, message: Any) -> list[Change]:
        if not isinstance(message, Mapping) or not isinstance(message.get("version"), int):
            raise StateError("a JSON state message is an object with an integer 'version'")
        version = message["version"]
        if "state" in message:
            return self._replace(jsonform.read_full(self.schema, message["state"]), version)
        base = message.get("base")
        if not isinstance(base, int) or not 0 <= base < version:
            raise StateError(f"a JSON delta needs an integer 'base' below its version {version}")
        self._check_base(base)
        return self._patch(jsonform.read_schema(self.state, message.get("patch")), version)

    def _check_base(self, base: int) -> None:
        if self.version != base:
            raise VersionGap(self.version, base)

    def _replace(self, state: Node, version: int) -> list[Change]:
        assert isinstance(state, Schema)
        previous, self.state, self.version = self.state, state, version
        return [Change((), "replace", state, previous)]

    def _patch(self, ops: SchemaOps, version: int) -> list[Change]:
        changes: list[Change] = []
        apply(self.state, ops, (), changes)
        self.version = version
        return changes


def _read_item(reader: Reader, item: ItemType) -> Any:
    return item.read(reader) if isinstance(item, Primitive) else _read_full(reader, item.cls)


def _read_full(reader: Reader, schema: type[Schema]) -> Schema:
    node = schema()
    for field in schema.fields():
        kind = field.type
        if isinstance(kind, Primitive):
            value: Any = kind.read(reader)
        elif isinstance(kind, SchemaOf):
            value = _read_full(reader, kind.cls)
        else:
            value = _read_container(reader, kind)
        node._values[field.index] = install(value, node, field.index)
    return node


def _read_container(reader: Reader, kind: MapOf | ListOf) -> Node:
    count = reader.count("entry count")
    if isinstance(kind, ListOf):
        items = StateList(kind.item)
        items._data = [install(_read_item(reader, kind.item), items, index)
                       for index in range(count)]
        return items
    entries = StateMap(kind.item)
    for _ in range(count):
        key = STRING.read(reader)
        if key in entries._data:
            raise StateError(f"key {key!r} appears twice in a map: corrupt")
        entries._data[key] = install(_read_item(reader, kind.item), entries, key)
    return entries


def _read_schema(reader: Reader, node: Schema, *, relative: bool) -> SchemaOps:
    fields = node.fields()
    mask = reader.varint()
    if mask >> len(fields):
        raise StateError(f"field mask 0x{mask:x} names a field {type(node).__name__} does not "
                         f"have (it has {len(fields)}): corrupt, or another schema")
    ops: SchemaOps = []
    for field in fields:
        if not mask >> field.index & 1:
            continue
        kind, current = field.type, node._values[field.index]
        if isinstance(kind, Primitive):
            ops.append((field.index, "set", _read_value(reader, kind, current, relative)))
        elif isinstance(kind, SchemaOf):
            tag = reader.byte()
            if tag > 1:
                raise StateError(f"nested state tag {tag} at offset {reader.pos - 1}: corrupt")
            if tag:
                ops.append((field.index, "replace", _read_full(reader, kind.cls)))
            else:
                ops.append((field.index, "delta", _read_schema(reader, current,
                                                               relative=relative)))
        elif isinstance(kind, MapOf):
            ops.append((field.index, "map", _read_map(reader, current, relative=relative)))
        else:
            ops.append((field.index, "list", _read_list(reader, current, relative=relative)))
    return ops


def _read_value(reader: Reader, kind: Primitive, current: Any, relative: bool) -> Any:
    return kind.read_relative(reader, current) if relative else kind.read(reader)


def _read_entry(reader: Reader, item: ItemType, current: Any, relative: bool) -> Any:
    if isinstance(item, Primitive):
        return _read_value(reader, item, current, relative)
    return _read_schema(reader, current, relative=relative)


def _positions(reader: Reader, count: int, size: int, what: str) -> Iterator[int]:
    """Entry positions, each read when the previous entry has been (gap-coded, ascending)."""
    position = -1
    for _ in range(count):
        position += reader.varint() + 1
        if position >= size:
            raise StateError(f"{what} at position {position} of {size}: corrupt")
        yield position


def _read_map(reader: Reader, node: StateMap, *, relative: bool) -> MapOps:
    head = reader.varint()
    data, item = node._data, node.item
    removed: list[str] = []
    if head & 4:
        for _ in range(reader.count("removed keys")):
            key = STRING.read(reader)
            if key not in data or key in removed:
                raise StateError(f"removal of key {key!r}, which the map does not hold: "
                                 "corrupt, or applied to another version")
            removed.append(key)
    added: list[tuple[str, Any]] = []
    if head & 2:
        for _ in range(reader.count("added keys")):
            added.append((STRING.read(reader), _read_item(reader, item)))
    if len({key for key, _ in added}) != len(added):
        raise StateError("a key is added twice in one delta: corrupt")
    gone = set(removed) | {key for key, _ in added if key in data}
    kept = [key for key in data if key not in gone] if gone else list(data)
    replaced: list[tuple[str, Any]] = []
    if head & 1:
        count = reader.count("replaced entries")
        for position in _positions(reader, count, len(kept), "replaced entry"):
            replaced.append((kept[position], _read_item(reader, item)))
    changed: list[tuple[str, Any]] = []
    gone_too = {key for key, _ in replaced}
    for position in _positions(reader, head >> 3, len(kept), "changed entry"):
        key = kept[position]
        if key in gone_too:  # parsed against the old entry, it would apply to the new one
            raise StateError(f"entry {key!r} is both replaced and changed: corrupt")
        changed.append((key, _read_entry(reader, item, data[key], relative)))
    return MapOps(removed, added, replaced, changed)


def _read_list(reader: Reader, node: StateList, *, relative: bool) -> ListOps:
    head = reader.varint()
    if head & 2:
        if head != 2:
            raise StateError(f"list head {head}: a whole list has no other entries: corrupt")
        whole = _read_container(reader, ListOf(node.item))
        assert isinstance(whole, StateList)
        return ListOps(list(whole._data), [], [])
    data = node._data
    replaced: list[tuple[int, Any]] = []
    if head & 1:
        count = reader.count("replaced elements")
        for index in _positions(reader, count, len(data), "replaced element"):
            replaced.append((index, _read_item(reader, node.item)))
    changed: list[tuple[int, Any]] = []
    gone_too = {index for index, _ in replaced}
    for index in _positions(reader, head >> 2, len(data), "changed element"):
        if index in gone_too:
            raise StateError(f"element {index} is both replaced and changed: corrupt")
        changed.append((index, _read_entry(reader, node.item, data[index], relative)))
    return ListOps(None, replaced, changed)
