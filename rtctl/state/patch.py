"""A parsed delta, applied in one go: what the decoders produce and how it lands.

Decoding is two steps so a bad message never leaves a half-applied state: the
binary and JSON readers first parse and check the whole message into these
operations (every position, key and value validated against the state held),
then :func:`apply` carries them out, which cannot fail, and reports each
change as a :class:`Change`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from rtctl.state.containers import StateList, StateMap
from rtctl.state.nodes import Node
from rtctl.state.schema import Schema

__all__ = ["Change", "ListOps", "MapOps", "SchemaOps", "apply", "install"]

Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Change:
    """One thing a message changed: at ``path``, ``value`` where there was ``previous``.

    ``kind`` is ``set`` (a field or entry's value), ``add`` / ``remove`` (a map
    key or list element), or ``replace`` (a nested state replaced whole; path
    ``()`` for a full snapshot).
    """

    path: Path
    kind: Literal["set", "add", "remove", "replace"]
    value: Any
    previous: Any


SchemaOps = list[tuple[int, str, Any]]
"""(field index, ``set`` | ``replace`` | ``delta`` | ``map`` | ``list``, payload)."""


@dataclass(frozen=True, slots=True)
class MapOps:
    removed: list[str]
    added: list[tuple[str, Any]]
    replaced: list[tuple[str, Any]]
    changed: list[tuple[str, Any]]  # a primitive's new value, or a schema's SchemaOps


@dataclass(frozen=True, slots=True)
class ListOps:
    whole: list[Any] | None  # every element, after an insertion or removal
    replaced: list[tuple[int, Any]]
    changed: list[tuple[int, Any]]


Ops = SchemaOps | MapOps | ListOps


def install(value: Any, parent: Node, key: Any) -> Any:
    """Put a decoded node under ``parent`` (decoded states are trees like any other)."""
    if isinstance(value, Node):
        value._parent, value._key = parent, key
    return value


def apply(node: Node, ops: Ops, path: Path, changes: list[Change]) -> None:
    if isinstance(node, Schema):
        assert isinstance(ops, list)
        _apply_schema(node, ops, path, changes)
    elif isinstance(node, StateMap):
        assert isinstance(ops, MapOps)
        _apply_map(node, ops, path, changes)
    else:
        assert isinstance(node, StateList)
        assert isinstance(ops, ListOps)
        _apply_list(node, ops, path, changes)


def _apply_schema(node: Schema, ops: SchemaOps, path: Path, changes: list[Change]) -> None:
    for index, kind, payload in ops:
        where = (*path, node._names[index])
        if kind in ("set", "replace"):
            previous = node._values[index]
            node._values[index] = install(payload, node, index)
            changes.append(Change(where, kind, payload, previous))  # type: ignore[arg-type]
        else:
            apply(node._values[index], payload, where, changes)


def _apply_map(node: StateMap, ops: MapOps, path: Path, changes: list[Change]) -> None:
    data = node._data
    for key in ops.removed:
        changes.append(Change((*path, key), "remove", None, data.pop(key)))
    previous = {key: data.pop(key) for key, _ in ops.added if key in data}
    for key, value in ops.replaced:
        changes.append(Change((*path, key), "replace", value, data[key]))
        data[key] = install(value, node, key)
    for key, payload in ops.changed:
        if isinstance(data[key], Schema):
            _apply_schema(data[key], payload, (*path, key), changes)
        else:
            changes.append(Change((*path, key), "set", payload, data[key]))
            data[key] = payload
    for key, value in ops.added:
        data[key] = install(value, node, key)
        changes.append(Change((*path, key), "add", value, previous.get(key)))
    node._positions = None


def _apply_list(node: StateList, ops: ListOps, path: Path, changes: list[Change]) -> None:
    data = node._data
    if ops.whole is not None:
        changes.append(Change(path, "replace", ops.whole, list(data)))
        node._data = [install(value, node, index) for index, value in enumerate(ops.whole)]
        return
    for index, value in ops.replaced:
        changes.append(Change((*path, index), "replace", value, data[index]))
        data[index] = install(value, node, index)
    for index, payload in ops.changed:
        if isinstance(data[index], Schema):
            _apply_schema(data[index], payload, (*path, index), changes)
        else:
            changes.append(Change((*path, index), "set", payload, data[index]))
            data[index] = payload
