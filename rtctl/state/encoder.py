"""The server side: commit a state's changes as versions and write them as bytes.

::

    enc = Encoder(arena)
    enc.full()          # the whole state: for a joining client
    arena.entities["e1"].x += 5
    enc.delta()         # what changed since the previous full()/delta(), as version + 1
    enc.since(3)        # everything a client still at version 3 lacks, in one message

A message (docs/state-sync.md has it byte by byte) starts with its kind:

``0x01`` full      ``version``, then every field of the root in declaration order;
``0x02`` delta     ``version``, ``back`` (base = version − back), then the changed
                   fields, numbers written *relative* to the value at base;
``0x03`` delta     the same with every value absolute: what :meth:`Encoder.since`
                   writes for a client further behind, whose values the encoder
                   does not keep.

An empty message means nothing changed. The JSON encoding of the same content
is :mod:`rtctl.state.jsonform`.
"""

from __future__ import annotations

from typing import Any

import orjson

from rtctl.state import jsonform
from rtctl.state.containers import StateList, StateMap
from rtctl.state.nodes import ItemType, Node
from rtctl.state.schema import Schema
from rtctl.state.types import STRING, Primitive
from rtctl.state.wire import HistoryLost, write_varint

__all__ = ["DEFAULT_HISTORY", "DELTA", "DELTA_ABSOLUTE", "FULL", "Encoder"]

FULL, DELTA, DELTA_ABSOLUTE = 0x01, 0x02, 0x03
DEFAULT_HISTORY = 1200  # versions a delta may reach back: a minute of ticks at 20 Hz


class Encoder:
    """Commits ``state``'s changes as versions; writes full states and deltas.

    ``history`` bounds how far back :meth:`since` reaches (removed map keys are
    remembered that long); a client further behind needs :meth:`full`.
    """

    def __init__(self, state: Schema, *, history: int = DEFAULT_HISTORY,
                 version: int = 0) -> None:
        if state._parent is not None:
            raise ValueError("encode a root: this state is part of another one")
        if history < 1:
            raise ValueError("history must be at least 1 version")
        if version < 0:
            raise ValueError("versions start at 0")
        self.state = state
        self.version = version  # a state restored from a snapshot goes on from its version
        self._origin = version  # nothing is known of the versions before it
        self._history = history
        self._started = False  # nothing sent yet: the first delta is a full state
        self._streamed = version  # the version the last full state or delta brought clients to
        self._sent_at = -1  # the version the values kept for relative deltas belong to
        state._reset(version)

    @property
    def floor(self) -> int:
        """The oldest version :meth:`since` can start from."""
        return max(self._origin, self.version - self._history)

    def commit(self, version: int | None = None) -> bool:
        """Stamp pending changes as ``version`` (default: the next); False if there were none."""
        if not self.state._dirty:
            return False
        new = self.version + 1 if version is None else version
        if new <= self.version:
            raise ValueError(f"version {new} does not follow {self.version}")
        self.state._commit(new, max(0, new - self._history))
        self.version = new
        return True

    def full(self, version: int | None = None) -> bytes:
        """The whole state (committing pending changes first)."""
        self.commit(version)
        out = bytearray((FULL,))
        write_varint(out, self.version)
        _full(out, self.state, track=True)
        self._started = True
        self._streamed = self._sent_at = self.version
        return bytes(out)

    def delta(self, version: int | None = None) -> bytes:
        """Every change since the previous :meth:`full` or :meth:`delta` (in either encoding,
        versions committed in between included); ``b""`` if none."""
        if not self._started:
            return self.full(version)
        base = self._advance(version)
        if base == self.version:
            return b""
        if base < self.floor:  # commits alone went past the history: start again
            return self.full()
        if self._sent_at != base:  # a JSON delta moved on without them: make them current
            _full(bytearray(), self.state, track=True)
            self._sent_at = self.version
            return self.since(base)
        out = self._header(DELTA, base)
        _since(out, self.state, base, relative=True)
        self._sent_at = self.version
        return bytes(out)

    def since(self, base: int) -> bytes:
        """What a client at version ``base`` lacks to reach :attr:`version` (committed changes)."""
        self._check_base(base)
        if base == self.version:
            return b""
        out = self._header(DELTA_ABSOLUTE, base)
        _since(out, self.state, base, relative=False)
        return bytes(out)

    def full_json(self, version: int | None = None) -> str:
        """:meth:`full` in the JSON encoding."""
        self.commit(version)
        self._started = True
        self._streamed = self.version
        return _dumps(self.full_object())

    def delta_json(self, version: int | None = None) -> str:
        """:meth:`delta` in the JSON encoding (RFC 7396 merge patch); ``""`` if nothing changed."""
        if not self._started:
            return self.full_json(version)
        base = self._advance(version)
        if base == self.version:
            return ""
        return self.full_json() if base < self.floor else self.since_json(base)

    def _advance(self, version: int | None) -> int:
        """Commit pending changes; the version the previous full state or delta reached."""
        base = self._streamed
        self.commit(version)
        self._streamed = self.version
        return base

    def since_json(self, base: int) -> str:
        """:meth:`since` in the JSON encoding."""
        self._check_base(base)
        return _dumps(self.since_object(base)) if base != self.version else ""

    def full_object(self) -> dict[str, Any]:
        """The JSON full message as data (to embed in a notification)."""
        return {"version": self.version, "state": jsonform.full(self.state)}

    def since_object(self, base: int) -> dict[str, Any]:
        """The JSON delta from ``base`` as data (a full state where no merge patch fits)."""
        self._check_base(base)
        try:
            patch = jsonform.since(self.state, base)
        except jsonform.NotMergeable:
            return self.full_object()
        return {"version": self.version, "base": base, "patch": patch}

    def _check_base(self, base: int) -> None:
        if self.state._dirty:
            raise ValueError("the state has uncommitted changes: call delta() or commit() first")
        if base > self.version:
            raise ValueError(f"version {base} is ahead of the state's {self.version}")
        if base < self.floor:
            raise HistoryLost(base, self.floor)

    def _header(self, kind: int, base: int) -> bytearray:
        out = bytearray((kind,))
        write_varint(out, self.version)
        write_varint(out, self.version - base)
        return out


def _dumps(message: dict[str, Any]) -> str:
    return orjson.dumps(message).decode()


def _item(out: bytearray, item: ItemType, value: Any, *, track: bool) -> None:
    if isinstance(item, Primitive):
        item.write(out, value)
    else:
        _full(out, value, track=track)


def _full(out: bytearray, node: Node, *, track: bool) -> None:
    """Append ``node`` whole; with ``track``, its values become the next relative base."""
    if isinstance(node, Schema):
        for field, value in zip(node.fields(), node._values, strict=True):
            if isinstance(value, Node):
                _full(out, value, track=track)
            else:
                field.type.write(out, value)  # type: ignore[union-attr]
        if track:
            node._sent = list(node._values)
        return
    assert isinstance(node, (StateMap, StateList))
    write_varint(out, len(node))
    if isinstance(node, StateMap):
        for key, value in node._data.items():
            STRING.write(out, key)
            _item(out, node.item, value, track=track)
        if track and isinstance(node.item, Primitive):
            node._sent = dict(node._data)
    else:
        for value in node._data:
            _item(out, node.item, value, track=track)
        if track:
            node._sent = list(node._data)


def _value(out: bytearray, kind: Primitive, sent: Any, key: Any, value: Any, *,
           relative: bool) -> None:
    """A primitive in a delta: relative to what the client holds, or absolute."""
    if relative:
        kind.write_relative(out, sent[key], value)
        sent[key] = value
    else:
        kind.write(out, value)


def _at(out: bytearray, position: int, previous: int) -> int:
    """Write an entry's position as its gap from the previous one's (the first's from -1)."""
    write_varint(out, position - previous - 1)
    return position


def _since(out: bytearray, node: Node, base: int, *, relative: bool) -> None:
    if isinstance(node, Schema):
        _schema_since(out, node, base, relative=relative)
    elif isinstance(node, StateMap):
        _map_since(out, node, base, relative=relative)
    else:
        assert isinstance(node, StateList)
        _list_since(out, node, base, relative=relative)


def _schema_since(out: bytearray, node: Schema, base: int, *, relative: bool) -> None:
    changed = [index for index, value in enumerate(node._values)
               if node._stamps[index] > base or (isinstance(value, Node) and value._stamp > base)]
    write_varint(out, sum(1 << index for index in changed))
    fields = node.fields()
    for index in changed:
        value = node._values[index]
        if not isinstance(value, Node):
            _value(out, fields[index].type, node._sent, index, value,  # type: ignore[arg-type]
                   relative=relative)
        elif isinstance(value, Schema):  # a nested schema: replaced (1) or changed inside (0)
            replaced = node._stamps[index] > base
            out.append(1 if replaced else 0)
            if replaced:
                _full(out, value, track=relative)
            else:
                _schema_since(out, value, base, relative=relative)
        else:
            _since(out, value, base, relative=relative)


def _map_since(out: bytearray, node: StateMap, base: int, *, relative: bool) -> None:
    removed, added, replaced, changed = node.changes_since(base)
    write_varint(out, len(changed) << 3 | bool(removed) << 2 | bool(added) << 1 | bool(replaced))
    data, item, sent = node._data, node.item, node._sent
    if removed:
        write_varint(out, len(removed))
        for key in removed:
            STRING.write(out, key)
    if added:
        write_varint(out, len(added))
        for key in added:
            STRING.write(out, key)
            _item(out, item, data[key], track=relative)
            if relative and isinstance(item, Primitive):
                sent[key] = data[key]
    position = node.positions()
    if replaced:
        write_varint(out, len(replaced))
        previous = -1
        for key in replaced:
            previous = _at(out, position[key], previous)
            _full(out, data[key], track=relative)
    previous = -1
    for key in changed:
        previous = _at(out, position[key], previous)
        if isinstance(item, Primitive):
            _value(out, item, sent, key, data[key], relative=relative)
        else:
            _schema_since(out, data[key], base, relative=relative)


def _list_since(out: bytearray, node: StateList, base: int, *, relative: bool) -> None:
    """A list's delta: whole (after an insertion or removal), else the elements set in
    place (``replaced`` for schema elements) and those changed inside."""
    changes = node.changes_since(base)
    if changes is None:
        write_varint(out, 2)
        _full(out, node, track=relative)
        return
    replaced, changed = changes
    data, item = node._data, node.item
    if isinstance(item, Primitive):
        replaced, changed = [], replaced
    write_varint(out, len(changed) << 2 | bool(replaced))
    if replaced:
        write_varint(out, len(replaced))
        previous = -1
        for index in replaced:
            previous = _at(out, index, previous)
            _full(out, data[index], track=relative)
    previous = -1
    for index in changed:
        previous = _at(out, index, previous)
        if isinstance(item, Primitive):
            _value(out, item, node._sent, index, data[index], relative=relative)
        else:
            _schema_since(out, data[index], base, relative=relative)
