"""What a decoded state message changed, as short phrases for the inspector.

::

    entities.e7.x 512.25 → 515.75      a value set (float32s with the fewest digits that are them)
    +entities.e103                      a map entry added (+scores.bob=3 for a primitive)
    -entities.e9                        an entry removed
    entities.e7 replaced                a nested state replaced whole
    entities={100}                      a full snapshot: each top-level field, {n} / [n] sized

A message of a busy room changes dozens of values and a line shows a few, so
:func:`kept` keeps each :class:`~rtctl.state.Change` as a :class:`ShownChange`
and the phrase is made only when shown. Only what cannot move on is kept:
primitives as they are, a state node (which the decoder goes on changing) as
its stand-in, rendered at once.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

from rtctl.protocol import jsonrpc
from rtctl.state import Change, Schema
from rtctl.state.containers import StateList, StateMap
from rtctl.state.nodes import ListOf, MapOf, SchemaOf
from rtctl.state.types import FLOAT32, Primitive

__all__ = ["ShownChange", "kept"]

_STRING_PREVIEW = 24  # characters of a string value shown

Path = tuple[str | int, ...]


class _Rendered(str):
    """A stand-in already rendered (``{…}``, ``[3]``), not a string value to quote."""

    __slots__ = ()


_NESTED = _Rendered("{…}")  # a nested state: its fields are changes of their own


class ShownChange(NamedTuple):
    """One change, kept to be rendered when shown (``kind`` ``field``: a snapshot's field)."""

    path: Path
    kind: str  # set, add, remove, replace, field
    value: Any
    previous: Any
    type: Primitive | None

    def text(self) -> str:
        where = _path(self.path)
        if self.kind == "remove":
            return f"-{where}"
        if self.kind == "add":
            return f"+{where}" + ("" if self.value is _NESTED
                                  else f"={_value(self.value, self.type)}")
        if self.kind == "field":
            return f"{where}={_value(self.value, self.type)}"
        if self.value is _NESTED:
            return f"{where} replaced"
        return f"{where} {_value(self.previous, self.type)} → {_value(self.value, self.type)}"


def kept(schema: type[Schema], state: Schema, changes: list[Change]) -> tuple[ShownChange, ...]:
    """``changes`` as applied to ``state`` (of ``schema``); a full snapshot as its fields."""
    if len(changes) == 1 and not changes[0].path:
        return tuple(ShownChange((f.name,), "field", _keep(getattr(state, f.name)), None,
                                 _primitive(f.type)) for f in schema.fields())
    return tuple(ShownChange(c.path, c.kind, _keep(c.value), _keep(c.previous),
                             _type_at(schema, c.path)) for c in changes)


def _keep(value: Any) -> Any:
    """``value`` as it is now, however the decoder's state moves on."""
    if isinstance(value, Schema):
        return _NESTED
    if isinstance(value, StateMap | dict):
        return _Rendered(f"{{{len(value)}}}")
    if isinstance(value, StateList | list):
        return _Rendered(f"[{len(value)}]")
    return value


def _primitive(kind: Any) -> Primitive | None:
    return kind if isinstance(kind, Primitive) else None


def _type_at(schema: type[Schema], path: Path) -> Primitive | None:
    """The primitive type at ``path``, from the schema's declarations alone."""
    kind: Any = SchemaOf(schema)
    for part in path:
        if isinstance(kind, MapOf | ListOf):
            kind = kind.item
        elif isinstance(kind, SchemaOf):
            cls: type[Schema] = kind.cls  # typed: mypy takes a type[Any] for unhashable
            kind = _field_types(cls)[str(part)]
    return _primitive(kind)


@functools.lru_cache(maxsize=256)  # bounded: classes come and go with the gateway's schemas
def _field_types(schema: type[Schema]) -> dict[str, Any]:
    """A schema's fields by name, kept: a busy room's patch asks for the same few often."""
    return {f.name: f.type for f in schema.fields()}


def _path(path: Path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text


def _value(value: Any, kind: Primitive | None = None) -> str:
    if isinstance(value, _Rendered):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        cut = value[:_STRING_PREVIEW]
        return jsonrpc.dumps(cut).decode() + ("…" if len(value) > len(cut) else "")
    if kind is FLOAT32 and math.isfinite(value):
        value = kind.to_json(value)  # the fewest digits that are still this float32
    return repr(value)
