"""Schemas declared with annotations, and instances that track their own changes.

::

    class Entity(Schema):
        x: float32
        y: float32
        hp: uint8
        name: str

    class Arena(Schema):
        entities: dict[str, Entity]

    arena = Arena()                       # every field at its default: 0, "", False, {}
    arena.entities["e1"] = Entity(x=1.5, y=2.0, hp=100, name="ada")
    arena.entities["e1"].hp = 90          # checked at once: 300 raises ValueError

A field is a primitive (:mod:`rtctl.state.types`), a nested schema (always
present: it starts as its own default instance), ``dict[str, T]`` or
``list[T]`` where ``T`` is a primitive or a schema. Fields keep the order they
are declared in; that order is the wire's.

Every instance belongs to at most one place in one tree: a mutation marks the
path up to the root as changed (:class:`Node`), and the
:class:`~rtctl.state.encoder.Encoder` commits those marks as a version. What
was committed at which version stays on the nodes (per field, per map entry,
plus tombstones of removed keys), so the encoder can also describe everything
that changed since any recent version in one message: that is how a slow
client gets one delta instead of a queue of them.
"""

from __future__ import annotations

import sys
import typing
from dataclasses import dataclass
from typing import Any, ClassVar

from rtctl.state.containers import StateList, StateMap
from rtctl.state.nodes import FieldType, ItemType, ListOf, MapOf, Node, SchemaOf, plain
from rtctl.state.types import PRIMITIVES, Primitive

__all__ = ["Field", "Schema"]


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    index: int
    type: FieldType


class _FieldAccess:
    """The descriptor behind each declared field: reads the slot, checks writes."""

    __slots__ = ("index", "name")

    def __init__(self, name: str, index: int) -> None:
        self.name = name
        self.index = index

    def __get__(self, obj: Schema | None, owner: type) -> Any:
        if obj is None:
            return self
        return obj._values[self.index]

    def __set__(self, obj: Schema, value: Any) -> None:
        obj._assign(self.index, value)


def _item_type(hint: Any, where: str) -> ItemType:
    if isinstance(hint, type) and issubclass(hint, Schema):
        return SchemaOf(hint)
    if typing.get_origin(hint) is typing.Annotated:
        for extra in hint.__metadata__:
            if isinstance(extra, Primitive):
                return extra
    if hint in PRIMITIVES:
        return PRIMITIVES[hint]
    raise TypeError(f"{where}: {hint!r} is not a state type (a primitive such as float32 or "
                    "uint8, bool, str, or a Schema)")


def _field_type(hint: Any, where: str) -> FieldType:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is dict:
        if args[:1] != (str,):
            raise TypeError(f"{where}: maps are keyed by str, not {args[:1]!r}")
        return MapOf(_item_type(args[1], where))
    if origin is list:
        return ListOf(_item_type(args[0], where))
    return _item_type(hint, where)


class _SchemaMeta(type):
    """Gives each schema class slots only (a typo'd field is an error, not a new attribute)
    and a descriptor per annotated field; the types are resolved at first use, so a
    field may name a schema declared later in the module."""

    def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any],
                **kwargs: Any) -> _SchemaMeta:
        inherited = tuple(n for base in bases for n in getattr(base, "_names", ()))
        own = [n for n, hint in namespace.get("__annotations__", {}).items()
               if not n.startswith("_") and "ClassVar" not in str(hint)]
        for clash in set(own) & set(inherited):
            raise TypeError(f"{name}.{clash} is declared by a base schema already")
        namespace.setdefault("__slots__", ())
        for index, field_name in enumerate(own, len(inherited)):
            namespace[field_name] = _FieldAccess(field_name, index)
        cls = super().__new__(mcs, name, bases, namespace, **kwargs)
        caller = sys._getframe(1)
        cls._names = (*inherited, *own)  # type: ignore[attr-defined]
        cls._scope = {**caller.f_globals, **caller.f_locals}  # type: ignore[attr-defined]
        return cls


class Schema(Node, metaclass=_SchemaMeta):
    """Base of every state class; subclasses declare fields as annotations."""

    __slots__ = ("_pending", "_sent", "_stamps", "_values")
    _names: ClassVar[tuple[str, ...]]
    _scope: ClassVar[dict[str, Any]]
    _resolved: ClassVar[tuple[Field, ...] | None] = None

    @classmethod
    def fields(cls) -> tuple[Field, ...]:
        """The declared fields, in order, with their types."""
        resolved = cls.__dict__.get("_resolved")
        if resolved is None:
            if cls is Schema or not cls._names:
                raise TypeError(f"{cls.__name__} declares no fields")
            hints = typing.get_type_hints(cls, localns=cls._scope, include_extras=True)
            resolved = tuple(Field(name, index, _field_type(hints[name], f"{cls.__name__}.{name}"))
                             for index, name in enumerate(cls._names))
            cls._resolved = resolved
        return resolved

    def __init__(self, **values: Any) -> None:
        super().__init__()
        fields = self.fields()
        self._values: list[Any] = [_default(field.type, self, field.index) for field in fields]
        self._sent: list[Any] = list(self._values)  # what the last relative delta was based on
        self._stamps = [0] * len(fields)  # the version each field was last set or replaced
        self._pending: set[int] = set()  # fields set or replaced since the last commit
        for name, value in values.items():
            if name not in self._names:
                raise TypeError(f"{type(self).__name__} has no field {name!r} "
                                f"(fields: {', '.join(self._names)})")
            setattr(self, name, value)

    def _assign(self, index: int, value: Any) -> None:
        kind = self.fields()[index].type
        current = self._values[index]
        if isinstance(kind, Primitive):
            value = kind.check(value)
            if kind.same(current, value):
                return
        elif isinstance(kind, SchemaOf):
            value = kind.check(value)
            if value is current:
                return
            value._attach(self, index)
            current._detach()
        else:  # a map or list field is replaced in place, tracked entry by entry
            current.replace_all(value)
            return
        self._values[index] = value
        self._pending.add(index)
        self._touch()

    def _child_changed(self, key: Any) -> None:
        self._touch()

    def _commit(self, version: int, floor: int) -> None:
        for index, value in enumerate(self._values):
            if index in self._pending:
                self._stamps[index] = version
                if isinstance(value, Node):
                    value._reset(version)
            elif isinstance(value, Node) and value._dirty:
                value._commit(version, floor)
        self._pending.clear()
        self._dirty = False
        self._stamp = version

    def _reset(self, version: int) -> None:
        for value in self._values:
            if isinstance(value, Node):
                value._reset(version)
        self._stamps = [version] * len(self._values)
        self._pending.clear()
        self._dirty = False
        self._stamp = version

    def to_plain(self) -> dict[str, Any]:
        return {name: plain(value) for name, value in zip(self._names, self._values, strict=True)}

    def to_dict(self) -> dict[str, Any]:
        """Plain data: fields by name, maps as dicts, lists as lists, floats as held."""
        return self.to_plain()

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in zip(self._names, self._values,
                                                                      strict=True))
        return f"{type(self).__name__}({shown})"


def _default(kind: FieldType, parent: Schema, index: int) -> Any:
    if isinstance(kind, Primitive):
        return kind.default()
    child: Node
    if isinstance(kind, SchemaOf):
        child = kind.cls()
    elif isinstance(kind, MapOf):
        child = StateMap(kind.item)
    else:
        child = StateList(kind.item)
    child._attach(parent, index)
    return child
