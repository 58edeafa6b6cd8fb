"""What every place in a state tree shares, and the shapes a field can take.

A :class:`Node` (a schema instance, a map, a list) knows its parent and the key
it sits under there; the first change below it since the last commit marks the
path up to the root (``_dirty``), so a commit visits only what changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rtctl.state.types import Primitive

__all__ = ["FieldType", "ItemType", "ListOf", "MapOf", "Node", "SchemaOf", "plain"]


class Node:
    """A place in a state tree: knows its parent and whether anything below changed."""

    __slots__ = ("_dirty", "_key", "_parent", "_stamp")

    def __init__(self) -> None:
        self._parent: Node | None = None
        self._key: Any = None
        self._dirty = False
        self._stamp = 0  # the last version that changed anything at or below this node

    def _touch(self) -> None:
        """Something here changed: mark the path to the root, once per commit."""
        if not self._dirty:
            self._dirty = True
            if self._parent is not None:
                self._parent._child_changed(self._key)

    def _child_changed(self, key: Any) -> None:
        raise NotImplementedError

    def _attach(self, parent: Node, key: Any) -> None:
        if self._parent is not None:
            raise ValueError(f"this {type(self).__name__} is already part of a state tree: "
                             "remove it there first, or build a new one")
        self._parent, self._key = parent, key

    def _detach(self) -> None:
        self._parent = self._key = None

    def _commit(self, version: int, floor: int) -> None:
        """Stamp what changed since the last commit with ``version``; keep removals after
        ``floor`` (the oldest version a delta may still start from)."""
        raise NotImplementedError

    def _reset(self, version: int) -> None:
        """The whole subtree is new at ``version`` (it was added or replaced)."""
        raise NotImplementedError

    def to_plain(self) -> Any:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class SchemaOf:
    """A field or item that holds an instance of ``cls`` (a Schema class)."""

    cls: type[Any]  # a Schema subclass; typed loosely, as schema.py builds on this module

    def check(self, value: Any) -> Any:
        if not isinstance(value, self.cls):
            raise TypeError(f"expected a {self.cls.__name__}, not {type(value).__name__}")
        return value


ItemType = Primitive | SchemaOf


@dataclass(frozen=True, slots=True)
class MapOf:
    item: ItemType


@dataclass(frozen=True, slots=True)
class ListOf:
    item: ItemType


FieldType = Primitive | SchemaOf | MapOf | ListOf


def plain(value: Any) -> Any:
    """A value as plain data: nodes become dicts and lists, primitives stay."""
    return value.to_plain() if isinstance(value, Node) else value
