"""A room's state as a tree, for any schema: fields, maps and lists, bounded to what fits.

A value is one line: a primitive (``hp = 100``), or a nested schema whose
fields are all primitives, written out on its line (the drift room's entities:
``e7  x=512.25 y=40.5 hp=100 name='KxYzAbCd'``; a float32 with the fewest
digits that are exactly it). Other schemas, maps
(``entities {100}``) and lists (``[3]``) are branches. A map or a list shows
its first :data:`SHOWN` entries and says how many more it has; a string shows
at most :data:`TEXT` characters. Fields of the root start open, deeper branches
closed; what the user opens or closes stays so while entries come and go.

:meth:`StateTree.apply` redraws what the store's change events
(:class:`~rtctl.state.Change`) touched, not the whole tree: a value set
relabels its line; an entry added to a map or removed from it adds or takes
away its lines (and those of the entries that move into the first
:data:`SHOWN`); a value replaced, or a list that changed length, redraws its
own branch; a new snapshot (a ``replace`` at the root) redraws everything.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from rtctl.state import Change, Schema
from rtctl.state.containers import StateList, StateMap
from rtctl.state.nodes import FieldType, ListOf, MapOf, SchemaOf
from rtctl.state.types import Primitive

__all__ = ["SHOWN", "TEXT", "StateTree"]

SHOWN = 100  # entries of a map or a list drawn; the rest is counted
TEXT = 24  # characters of a string drawn

Path = tuple[str | int, ...]


class _Line(NamedTuple):
    """What a line of the tree shows: the value at ``path``, of type ``kind``."""

    path: Path
    kind: FieldType


def _flat(kind: FieldType) -> bool:
    """Whether a value of ``kind`` fits on one line: a primitive, or a record of them."""
    if isinstance(kind, SchemaOf):
        return all(isinstance(field.type, Primitive) for field in kind.cls.fields())
    return isinstance(kind, Primitive)


def _scalar(value: Any, kind: Primitive) -> str:
    if isinstance(value, str):
        return repr(value if len(value) <= TEXT else value[:TEXT] + "…")
    if isinstance(value, float) and math.isfinite(value):
        return repr(kind.to_json(value))  # a float32 with the fewest digits that are it
    return repr(value)


def _key(key: str | int) -> str:
    return f"[{key}]" if isinstance(key, int) else key


def _label(key: str | int, value: Any, kind: FieldType) -> Text:
    """One line: the key, then the value (or, for a branch, its size)."""
    if isinstance(kind, Primitive):
        return Text(f"{_key(key)} = {_scalar(value, kind)}")
    if isinstance(kind, MapOf):
        return Text(f"{_key(key)}  {{{len(value)}}}")
    if isinstance(kind, ListOf):
        return Text(f"{_key(key)}  [{len(value)}]")
    if _flat(kind):
        return Text(f"{_key(key)}  " + " ".join(
            f"{field.name}={_scalar(getattr(value, field.name), field.type)}"
            for field in value.fields()))
    return Text(f"{_key(key)}  ({type(value).__name__})")


def _at(state: Schema, path: Path) -> Any:
    value: Any = state
    for key in path:
        value = getattr(value, str(key)) if isinstance(value, Schema) else value[key]
    return value


class StateTree(Tree[_Line]):
    """The state of one room, kept in step with its change events."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("no room", id=id)
        self._lines: dict[Path, TreeNode[_Line]] = {}
        self._opened: dict[Path, bool] = {}  # branches the user opened or closed

    def show(self, state: Schema | None, title: str) -> None:
        """Draw ``state`` (another room's, or None: just the ``title``) anew."""
        self._opened = {}  # what the user opened in the last room does not apply
        self._draw(state, title)

    def apply(self, state: Schema, changes: Sequence[Change]) -> None:
        """Redraw the lines ``changes`` touched; ``state`` is the store's state now."""
        if any(not change.path for change in changes):
            self._draw(state, str(self.root.label))  # a snapshot: the state is a new one
            return
        work: dict[Path, bool] = {}  # branches to draw again: whole (True) or their entries
        relabel: dict[Path, FieldType] = {}
        for change in changes:
            if change.kind in ("add", "remove"):
                if change.path[:-1] in self._lines:
                    work.setdefault(change.path[:-1], False)  # a map's entries came or went
                if change.kind == "remove":
                    continue
            line = self._nearest(change.path)  # an entry added again may be drawn already
            if not self._lines[line.path].allow_expand:
                relabel[line.path] = line.kind  # the value, or a field of the record on it
            elif line.path == change.path:
                work[line.path] = True  # a value replaced: its branch anew
            # else: below an entry past the SHOWN drawn: nothing of it is on screen
        # Outer branches first: one drawn anew takes what is below it along, and an entry
        # removed takes its lines (which its own changes may still name) with it.
        whole = {path for path, anew in work.items() if anew}
        for path in sorted(work, key=len):
            node = self._lines.get(path)
            if node is None or any(path[:end] in whole for end in range(len(path))):
                continue
            if work[path]:
                self._redraw(node, state)
            else:
                self._update_entries(node, state)
        for path, kind in relabel.items():
            node = self._lines.get(path)
            if node is not None:
                node.set_label(_label(path[-1], _at(state, path), kind))

    def _draw(self, state: Schema | None, title: str) -> None:
        self._lines = {}
        if state is None:
            self.reset(Text(title))
        else:
            kind = SchemaOf(type(state))
            self.reset(Text(title), _Line((), kind))
            self._lines[()] = self.root
            self._fill(self.root, state, (), kind)
        self.root.expand()

    def _nearest(self, path: Path) -> _Line:
        """The deepest line drawn at ``path`` or above it (the root, at least)."""
        node = next(self._lines[path[:end]] for end in range(len(path), -1, -1)
                    if path[:end] in self._lines)
        assert node.data is not None  # every line in _lines has its _Line
        return node.data

    def _redraw(self, node: TreeNode[_Line], state: Schema) -> None:
        line = node.data
        assert line is not None
        for child in node.children:
            self._forget(child)
        node.remove_children()
        value = _at(state, line.path)
        if line.path:
            node.set_label(_label(line.path[-1], value, line.kind))
        self._fill(node, value, line.path, line.kind)

    def _update_entries(self, node: TreeNode[_Line], state: Schema) -> None:
        """Take the lines of a map's removed entries away and add those now among the
        first SHOWN; entries keep their order (a map appends what it adds), so the
        lines still there need nothing, unless a key added again moved to the end."""
        line = node.data
        assert line is not None
        assert isinstance(line.kind, MapOf)  # lists come whole or by index, never added to
        value = _at(state, line.path)
        for child in list(node.children):
            if child.data is None or child.data.path[-1] not in value:
                self._forget(child)
                child.remove()  # an entry gone, or the "… more" line (written anew below)
        kept = [child.data.path[-1] for child in node.children if child.data is not None]
        shown = list(itertools.islice(value, SHOWN))
        if kept != shown[:len(kept)]:
            self._redraw(node, state)
            return
        for key in shown[len(kept):]:
            self._add(node, key, value[key], line.kind.item, line.path)
        self._more(node, value)
        node.set_label(_label(line.path[-1], value, line.kind))

    def _forget(self, node: TreeNode[_Line]) -> None:
        if node.data is not None:
            del self._lines[node.data.path]
        for child in node.children:
            self._forget(child)

    def _fill(self, node: TreeNode[_Line], value: Any, path: Path, kind: FieldType) -> None:
        """Add the lines below ``node``, which shows ``value`` of type ``kind``."""
        if isinstance(kind, SchemaOf):
            for field in kind.cls.fields():
                self._add(node, field.name, getattr(value, field.name), field.type, path)
            return
        assert isinstance(kind, MapOf | ListOf)
        entries = value.items() if isinstance(kind, MapOf) else enumerate(value)
        for key, item in itertools.islice(entries, SHOWN):
            self._add(node, key, item, kind.item, path)
        self._more(node, value)

    @staticmethod
    def _more(node: TreeNode[_Line], value: StateMap | StateList) -> None:
        if len(value) > SHOWN:
            node.add_leaf(Text(f"… {len(value) - SHOWN} more", style="dim"))

    def _add(self, parent: TreeNode[_Line], key: str | int, value: Any, kind: FieldType,
             above: Path) -> None:
        path = (*above, key)
        label, line = _label(key, value, kind), _Line(path, kind)
        if _flat(kind):
            node = parent.add_leaf(label, line)
        else:
            node = parent.add(label, line, expand=self._opened.get(path, len(path) == 1))
            self._fill(node, value, path, kind)
        self._lines[path] = node

    def _toggled(self, event: Tree.NodeExpanded[_Line] | Tree.NodeCollapsed[_Line]) -> None:
        if event.node.data is not None and event.node.data.path:
            self._opened[event.node.data.path] = event.node.is_expanded

    on_tree_node_expanded = _toggled
    on_tree_node_collapsed = _toggled
