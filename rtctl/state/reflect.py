"""A schema as data, and back: what lets a client that does not share the game's code
(a C++ client, the inspector, the TUI) decode a room's state.

The gateway answers ``state.schema {room}`` with :func:`describe` of the room's
schema::

    {"root": "Arena",
     "types": {"Arena":  [{"name": "entities", "type": "map", "of": "Entity"}],
               "Entity": [{"name": "x", "type": "float32"}, {"name": "y", "type": "float32"},
                          {"name": "hp", "type": "uint8"}, {"name": "name", "type": "str"}]}}

Field types are a primitive's name (``bool``, ``int8`` … ``uint64``,
``float32``, ``float64``, ``str``), another type's name (a nested schema), or
``map`` / ``list`` with ``of`` naming a primitive or a type. Fields are listed
in wire order. :func:`build` makes working :class:`~rtctl.state.Schema`
classes from such a description.
"""

from __future__ import annotations

import types as types_
from typing import Annotated, Any

from rtctl.state.nodes import FieldType, ItemType, ListOf, MapOf, SchemaOf
from rtctl.state.schema import Schema
from rtctl.state.types import PRIMITIVE_TYPES, Primitive
from rtctl.state.wire import StateError

__all__ = ["build", "describe"]


def _name(item: ItemType) -> str:
    return item.name if isinstance(item, Primitive) else item.cls.__name__


def describe(schema: type[Schema]) -> dict[str, Any]:
    """``schema`` and every schema it contains, as JSON data."""
    types: dict[str, list[dict[str, str]]] = {}
    named: dict[str, type[Schema]] = {}
    pending = [schema]
    while pending:
        cls = pending.pop()
        if named.setdefault(cls.__name__, cls) is not cls:
            raise TypeError(f"two schemas are named {cls.__name__} ({named[cls.__name__]!r} "
                            f"and {cls!r}): a description names each type once")
        if cls.__name__ in types:
            continue
        fields = types[cls.__name__] = []
        for field in cls.fields():
            kind: FieldType = field.type
            entry = {"name": field.name}
            if isinstance(kind, MapOf | ListOf):
                entry["type"] = "map" if isinstance(kind, MapOf) else "list"
                entry["of"] = _name(kind.item)
                kind = kind.item
            else:
                entry["type"] = _name(kind)
            if isinstance(kind, SchemaOf):
                pending.append(kind.cls)
            fields.append(entry)
    return {"root": schema.__name__, "types": types}


def build(description: Any) -> type[Schema]:
    """Schema classes from :func:`describe`'s output; the root's is returned."""
    try:
        root, types = description["root"], description["types"]
        built: dict[str, type[Schema]] = {}

        def make(name: str, path: tuple[str, ...]) -> type[Schema]:
            if name in built:
                return built[name]
            if name in path:
                raise StateError(f"schema {name} contains itself")
            annotations = {field["name"]: _hint(field, (*path, name), make)
                           for field in types[name]}
            cls: type[Schema] = types_.new_class(
                name, (Schema,), exec_body=lambda ns: ns.update(__annotations__=annotations))
            built[name] = cls
            return cls

        return make(root, ())
    except (KeyError, TypeError) as exc:
        raise StateError(f"not a schema description: {exc!r}") from None


def _hint(field: dict[str, str], path: tuple[str, ...], make: Any) -> Any:
    def item(name: str) -> Any:
        primitive = PRIMITIVE_TYPES.get(name)
        return Annotated[Any, primitive] if primitive is not None else make(name, path)

    kind = field["type"]
    if kind == "map":
        return dict[str, item(field["of"])]  # type: ignore[misc]
    if kind == "list":
        return list[item(field["of"])]  # type: ignore[misc]
    return item(kind)
