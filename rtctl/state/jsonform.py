"""The JSON encoding of states and deltas, for clients that cannot take binary frames.

A full state is the state's plain form; a delta is an RFC 7396 merge patch of
it: an object names only what changed, ``null`` removes a map key (removal is
explicit: no field or entry is ever null otherwise), an added or replaced
entry is written whole, and a list that changed is written whole (§2: arrays
are replaced, never merged). Messages::

    {"version": 7, "state": {...}}                 a full state
    {"version": 8, "base": 7, "patch": {...}}      a delta from version 7

Numbers are JSON numbers, float32 ones with the fewest digits that read back
the same float32; NaN and the infinities, which JSON lacks (RFC 8259 §6), are
the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``. A 64-bit integer
beyond 2**53 is exact in JSON, but a JavaScript client reading it with
``JSON.parse`` is not: such clients should take the binary encoding.

One difference from the binary form: a key removed and added again in one
delta keeps its old place in the client's map (a merge patch cannot move a
key); the contents are the same. And a merge patch cannot replace an object
(RFC 7396 §2 merges it into the one the client holds): when a state with a map
inside was replaced, or re-added under a key the client still holds, the old
map's keys would survive, so :class:`NotMergeable` asks for a full state instead.
"""

from __future__ import annotations

from typing import Any

from rtctl.state.containers import StateList, StateMap
from rtctl.state.nodes import ItemType, ListOf, MapOf, Node, SchemaOf
from rtctl.state.patch import ListOps, MapOps, SchemaOps, install
from rtctl.state.schema import Schema
from rtctl.state.types import Primitive
from rtctl.state.wire import StateError

__all__ = ["NotMergeable", "full", "read_full", "read_schema", "since"]


# -- writing ---------------------------------------------------------------------


class NotMergeable(Exception):
    """No merge patch reaches the state from the base: send a full state."""


def _holds_maps(cls: type[Schema]) -> bool:
    return any(isinstance(field.type, MapOf)
               or (isinstance(field.type, SchemaOf) and _holds_maps(field.type.cls))
               for field in cls.fields())


def _item(item: ItemType, value: Any) -> Any:
    return item.to_json(value) if isinstance(item, Primitive) else full(value)


def _over(item: ItemType, value: Any) -> Any:
    """``value`` written whole over the one the client holds, which it is merged into."""
    if isinstance(item, SchemaOf) and _holds_maps(item.cls):
        raise NotMergeable
    return _item(item, value)


def full(node: Node) -> Any:
    """``node`` whole, as JSON data."""
    if isinstance(node, Schema):
        return {field.name: (full(value) if isinstance(value, Node)
                             else field.type.to_json(value))  # type: ignore[union-attr]
                for field, value in zip(node.fields(), node._values, strict=True)}
    if isinstance(node, StateMap):
        return {key: _item(node.item, value) for key, value in node._data.items()}
    assert isinstance(node, StateList)
    return [_item(node.item, value) for value in node._data]


def since(node: Node, base: int) -> Any:
    """The merge patch that takes ``node`` from version ``base`` to now."""
    if isinstance(node, Schema):
        patch: dict[str, Any] = {}
        for field, value in zip(node.fields(), node._values, strict=True):
            stamp = node._stamps[field.index]
            if stamp > base:
                patch[field.name] = _over(field.type, value)  # type: ignore[arg-type]
            elif isinstance(value, Node) and value._stamp > base:
                patch[field.name] = since(value, base)
        return patch
    if isinstance(node, StateMap):
        removed, added, replaced, changed = node.changes_since(base)
        data, item = node._data, node.item
        patch = dict.fromkeys(removed)
        for key in replaced:
            patch[key] = _over(item, data[key])
        for key in added:
            patch[key] = (_over if node.held_earlier(key, base) else _item)(item, data[key])
        for key in changed:
            patch[key] = (item.to_json(data[key]) if isinstance(item, Primitive)
                          else since(data[key], base))
        return patch
    assert isinstance(node, StateList)
    return full(node)


# -- reading ---------------------------------------------------------------------


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise StateError(f"{what} must be a JSON object, not {type(value).__name__}")
    return value


def _read_item(item: ItemType, value: Any, what: str) -> Any:
    if isinstance(item, Primitive):
        return item.from_json(value)
    return read_full(item.cls, value, what)


def read_full(schema: type[Schema], data: Any, what: str = "state") -> Schema:
    """A whole ``schema`` from JSON data; every field must be there, and nothing else."""
    data = _object(data, what)
    node = schema()
    names = {field.name for field in schema.fields()}
    if set(data) != names:
        missing, extra = sorted(names - set(data)), sorted(set(data) - names)
        raise StateError(f"{what} ({schema.__name__}): missing {missing}, unknown {extra}")
    for field in schema.fields():
        kind, value, where = field.type, data[field.name], f"{what}.{field.name}"
        decoded: Any
        if isinstance(kind, Primitive):
            decoded = kind.from_json(value)
        elif isinstance(kind, SchemaOf):
            decoded = read_full(kind.cls, value, where)
        else:
            decoded = _read_container(kind, value, where)
        node._values[field.index] = install(decoded, node, field.index)
    return node


def _read_container(kind: MapOf | ListOf, value: Any, what: str) -> Node:
    if isinstance(kind, MapOf):
        entries = StateMap(kind.item)
        for key, item in _object(value, what).items():
            entries._data[key] = install(_read_item(kind.item, item, f"{what}.{key}"),
                                         entries, key)
        return entries
    if not isinstance(value, list):
        raise StateError(f"{what} must be a JSON array, not {type(value).__name__}")
    items = StateList(kind.item)
    items._data = [install(_read_item(kind.item, item, f"{what}[{index}]"), items, index)
                   for index, item in enumerate(value)]
    return items


def read_schema(node: Schema, patch: Any, what: str = "patch") -> SchemaOps:
    """The operations of a merge patch on ``node``, checked against it."""
    by_name = {field.name: field for field in node.fields()}
    ops: SchemaOps = []
    for name, value in _object(patch, what).items():
        field = by_name.get(name)
        if field is None:
            raise StateError(f"{what}: {type(node).__name__} has no field {name!r}")
        kind, current, where = field.type, node._values[field.index], f"{what}.{name}"
        if isinstance(kind, Primitive):
            ops.append((field.index, "set", kind.from_json(value)))
        elif isinstance(kind, SchemaOf):
            ops.append((field.index, "delta", read_schema(current, value, where)))
        elif isinstance(kind, MapOf):
            ops.append((field.index, "map", _read_map(current, value, where)))
        else:
            whole = _read_container(kind, value, where)
            assert isinstance(whole, StateList)
            ops.append((field.index, "list", ListOps(list(whole._data), [], [])))
    return ops


def _read_map(node: StateMap, patch: Any, what: str) -> MapOps:
    ops = MapOps([], [], [], [])
    item, data = node.item, node._data
    for key, value in _object(patch, what).items():
        where = f"{what}.{key}"
        if value is None:
            if key not in data:
                raise StateError(f"{where}: removal of a key the map does not hold")
            ops.removed.append(key)
        elif key not in data:
            ops.added.append((key, _read_item(item, value, where)))
        elif isinstance(item, Primitive):
            ops.changed.append((key, item.from_json(value)))
        else:
            ops.changed.append((key, read_schema(data[key], value, where)))
    return ops
