"""``dict[str, T]`` and ``list[T]`` fields: containers that know what changed and when.

A :class:`StateMap` behaves as a dict (insertion order kept: a key that is
removed and added again goes to the end, as in a dict). Per key it remembers
the versions at which the entry was last added, changed and replaced, in a dict
ordered by the last of them, and a tombstone per removed key (every life it had
within the history: a key removed, added again and removed again must still be
removed from a client that held its first life): "what
changed since version v" is then a walk over the newest entries only, however
big the map.

A :class:`StateList` behaves as a list. An element set in place is a small
change; an insertion or removal (append, pop, del, a slice) changes the list's
*structure*, and a delta then carries the whole list (what Colyseus' arrays
also fall back to for anything but a push).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, MutableMapping, MutableSequence
from typing import Any, overload

from rtctl.state.nodes import ItemType, Node, plain
from rtctl.state.types import STRING, Primitive

__all__ = ["ADDED", "CHANGED", "REPLACED", "MapChanges", "StateList", "StateMap"]

ADDED, REPLACED, CHANGED = 1, 2, 4  # what happened to a map key since the last commit
_ABSENT = object()

MapChanges = tuple[list[str], list[str], list[str], list[str]]
"""Keys removed, added, replaced and changed (the last three in map order)."""


def _attach(value: Any, parent: Node, key: Any) -> None:
    if isinstance(value, Node):
        value._attach(parent, key)


def _detach(value: Any) -> None:
    if isinstance(value, Node):
        value._detach()


def _refuse_foreign(values: Iterable[Any], container: Node) -> None:
    """Check before changing anything that no value belongs to another tree, nor comes twice."""
    seen: set[int] = set()
    for value in values:
        if not isinstance(value, Node):
            continue
        if id(value) in seen:
            raise ValueError(f"the same {type(value).__name__} appears twice: an instance "
                             "has one place in a state tree")
        seen.add(id(value))
        if value._parent not in (None, container):
            value._attach(container, None)  # raises, naming the problem


class StateMap(Node, MutableMapping[str, Any]):
    """A tracked ``dict[str, T]``."""

    __slots__ = ("_data", "_item", "_meta", "_pending", "_positions", "_sent", "_tombs")

    def __init__(self, item: ItemType) -> None:
        super().__init__()
        self._item = item
        self._data: dict[str, Any] = {}
        self._meta: dict[str, list[int]] = {}  # key → [added, changed, replaced], by the newest
        # key → the (added, removed) versions of each past life, ordered by the last removal
        self._tombs: dict[str, list[tuple[int, int]]] = {}
        self._pending: dict[str, int] = {}  # key → ADDED | REPLACED | CHANGED since the commit
        self._sent: dict[str, Any] = {}  # primitive values the last relative delta was based on
        self._positions: dict[str, int] | None = None

    @property
    def item(self) -> ItemType:
        return self._item

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __repr__(self) -> str:
        return f"StateMap({self._data!r})"

    @staticmethod
    def _check_key(key: Any) -> str:
        if not isinstance(key, str):
            raise TypeError(f"map keys are str, not {type(key).__name__}")
        return STRING.check(key)

    def __setitem__(self, key: str, value: Any) -> None:
        self._check_key(key)
        value = self._item.check(value)
        old = self._data.get(key, _ABSENT)
        if old is _ABSENT:
            _attach(value, self, key)
            self._positions = None
            flag = ADDED
        elif old is value or (isinstance(self._item, Primitive) and self._item.same(old, value)):
            return
        elif isinstance(value, Node):
            value._attach(self, key)
            _detach(old)
            flag = REPLACED
        else:
            flag = CHANGED
        self._data[key] = value
        self._pending[key] = self._pending.get(key, 0) | flag
        self._touch()

    def __delitem__(self, key: str) -> None:
        _detach(self._data.pop(key))
        self._positions = None
        self._pending.setdefault(key, 0)
        self._touch()

    def replace_all(self, items: Mapping[str, Any]) -> None:
        """Make the map hold exactly ``items`` (what assigning to the field does)."""
        if not isinstance(items, Mapping):
            raise TypeError(f"a map field takes a dict, not {type(items).__name__}")
        checked = {self._check_key(key): self._item.check(value) for key, value in items.items()}
        _refuse_foreign(checked.values(), self)
        self.clear()
        self.update(checked)

    def _child_changed(self, key: Any) -> None:
        self._pending[key] = self._pending.get(key, 0) | CHANGED
        self._touch()

    def _commit(self, version: int, floor: int) -> None:
        for key, flags in self._pending.items():
            value = self._data.get(key, _ABSENT)
            meta = self._meta.pop(key, None)
            if value is _ABSENT:
                if meta is not None:  # a key added since the last commit leaves no trace
                    self._bury(key, meta[0], version, floor)
                    self._sent.pop(key, None)
                continue
            if meta is None or flags & ADDED:
                if meta is not None:  # removed and added again since the last commit
                    self._bury(key, meta[0], version, floor)
                meta = [version, version, version]
                if isinstance(value, Node):
                    value._reset(version)
            elif flags & REPLACED:
                meta[1] = meta[2] = version
                value._reset(version)
            else:
                meta[1] = version
                if isinstance(value, Node):
                    value._commit(version, floor)
            self._meta[key] = meta  # re-inserted last: the dict stays ordered by stamp
        self._pending.clear()
        self._dirty = False
        self._stamp = version
        self._prune(floor)

    def _reset(self, version: int) -> None:
        for value in self._data.values():
            if isinstance(value, Node):
                value._reset(version)
        self._meta = {key: [version, version, version] for key in self._data}
        self._tombs.clear()
        self._pending.clear()
        self._dirty = False
        self._stamp = version

    def _bury(self, key: str, added: int, removed: int, floor: int) -> None:
        """Remember that clients from version ``added`` to before ``removed`` held ``key``."""
        lives = [life for life in self._tombs.pop(key, ()) if life[1] > floor]
        lives.append((added, removed))
        self._tombs[key] = lives

    def _prune(self, floor: int) -> None:
        """Forget removals at or before ``floor``: no delta starts from before it."""
        tombs = self._tombs
        while tombs:
            key = next(iter(tombs))
            if tombs[key][-1][1] > floor:
                break
            del tombs[key]

    def held_earlier(self, key: str, base: int) -> bool:
        """Whether a client at version ``base`` holds a past life of ``key`` (since removed)."""
        return any(added <= base < gone for added, gone in self._tombs.get(key, ()))

    def positions(self) -> dict[str, int]:
        """Each key's index in map order (cached until the next add or removal)."""
        if self._positions is None:
            self._positions = {key: index for index, key in enumerate(self._data)}
        return self._positions

    def changes_since(self, base: int) -> MapChanges:
        """What a client at version ``base`` lacks: removed, added, replaced, changed keys."""
        removed = []
        for key, lives in reversed(self._tombs.items()):
            if lives[-1][1] <= base:
                break
            # a key held now is an add (if new since base); one whose lives all began or
            # ended after base never reached the client
            if key not in self._data and self.held_earlier(key, base):
                removed.append(key)
        newer = []
        for key, stamps in reversed(self._meta.items()):
            if stamps[1] <= base:
                break
            newer.append(key)
        newer.sort(key=self.positions().__getitem__)
        meta = self._meta
        added = [key for key in newer if meta[key][0] > base]
        replaced = [key for key in newer if meta[key][0] <= base < meta[key][2]]
        changed = [key for key in newer if meta[key][2] <= base]
        return removed, added, replaced, changed

    def to_plain(self) -> dict[str, Any]:
        return {key: plain(value) for key, value in self._data.items()}


class StateList(Node, MutableSequence[Any]):
    """A tracked ``list[T]``."""

    __slots__ = ("_data", "_item", "_pending", "_restructured", "_sent", "_stamps",
                 "_structure", "_touched")

    def __init__(self, item: ItemType) -> None:
        super().__init__()
        self._item = item
        self._data: list[Any] = []
        self._stamps: list[int] = []  # the version each element was last set
        self._structure = 0  # the version of the last insertion or removal
        self._pending: set[int] = set()  # elements set since the last commit
        self._touched: set[int] = set()  # schema elements changed inside since then
        self._restructured = False
        self._sent: list[Any] = []

    @property
    def item(self) -> ItemType:
        return self._item

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        return self._data[index]

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"StateList({self._data!r})"

    def __setitem__(self, index: Any, value: Any) -> None:
        if isinstance(index, slice):
            data = list(self._data)
            data[index] = value
            self.replace_all(data)
            return
        position = range(len(self._data))[index]  # IndexError as a list gives it
        value = self._item.check(value)
        old = self._data[position]
        if old is value or (isinstance(self._item, Primitive) and self._item.same(old, value)):
            return
        _attach(value, self, position)
        _detach(old)
        self._data[position] = value
        self._pending.add(position)
        self._touch()

    def __delitem__(self, index: int | slice) -> None:
        removed = self._data[index] if isinstance(index, slice) else [self._data[index]]
        del self._data[index]
        for value in removed:
            _detach(value)
        self._restructure()

    def insert(self, index: int, value: Any) -> None:
        value = self._item.check(value)
        _attach(value, self, index)
        self._data.insert(index, value)
        self._restructure()

    def replace_all(self, items: Iterable[Any]) -> None:
        """Make the list hold exactly ``items`` (what assigning to the field does)."""
        if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
            raise TypeError(f"a list field takes a list, not {type(items).__name__}")
        checked = [self._item.check(value) for value in items]
        _refuse_foreign(checked, self)
        for value in self._data:
            _detach(value)
        for value in checked:
            _attach(value, self, None)
        self._data = checked
        self._restructure()

    def _restructure(self) -> None:
        for index, value in enumerate(self._data):
            if isinstance(value, Node):
                value._key = index
        self._restructured = True
        self._touch()

    def _child_changed(self, key: Any) -> None:
        self._touched.add(key)
        self._touch()

    def _commit(self, version: int, floor: int) -> None:
        if self._restructured:
            self._reset(version)
            return
        for index in self._pending:
            self._stamps[index] = version
            value = self._data[index]
            if isinstance(value, Node):
                value._reset(version)
        for index in self._touched - self._pending:
            self._data[index]._commit(version, floor)
        self._pending.clear()
        self._touched.clear()
        self._dirty = False
        self._stamp = version

    def _reset(self, version: int) -> None:
        for value in self._data:
            if isinstance(value, Node):
                value._reset(version)
        self._stamps = [version] * len(self._data)
        self._structure = version
        self._restructured = False
        self._pending.clear()
        self._touched.clear()
        self._dirty = False
        self._stamp = version

    def changes_since(self, base: int) -> tuple[list[int], list[int]] | None:
        """Indexes set and indexes changed inside since ``base``; None: send it whole."""
        if self._structure > base:
            return None
        replaced = [index for index, stamp in enumerate(self._stamps) if stamp > base]
        changed = [index for index, value in enumerate(self._data)
                   if isinstance(value, Node) and value._stamp > base
                   and self._stamps[index] <= base]
        return replaced, changed

    def to_plain(self) -> list[Any]:
        return [plain(value) for value in self._data]
