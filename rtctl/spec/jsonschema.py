"""Python annotations as JSON Schema 2020-12 (https://json-schema.org/draft/2020-12).

The vocabulary of :mod:`rtctl.params` — ``int``, ``float``, ``str``, ``bool``,
``None``, ``list[...]``, ``dict[str, ...]``, ``Literal[...]``, unions, ``Any`` —
plus the TypedDicts that results and notifications are declared with, and the
explicit schema of ``Annotated[Any, Schema({...})]``. A TypedDict
is a closed object (``additionalProperties: false``): a field a handler adds
without declaring it fails validation, so the description cannot drift from the
code unnoticed. JSON keeps ``true`` and ``1`` apart, and so does the schema: an
``int`` is ``integer``, never ``boolean``.
"""

from __future__ import annotations

import copy
import inspect
import types
import typing
from typing import Any, is_typeddict

from rtctl.params import Schema

__all__ = ["DIALECT", "schema"]

DIALECT = "https://json-schema.org/draft/2020-12/schema"  # for "$schema"

_INTEGER = "no fraction or exponent (§1)"

_SCALARS: dict[Any, dict[str, Any]] = {
    bool: {"type": "boolean"},
    # JSON Schema's integer takes 1.0 and 1e3; the Router does not (rtctl.params, -32602).
    int: {"type": "integer", "$comment": _INTEGER},
    float: {"type": "number"},
    str: {"type": "string"},
    type(None): {"type": "null"},
    None: {"type": "null"},
    list: {"type": "array"},
    dict: {"type": "object"},
}


def schema(annotation: Any) -> dict[str, Any]:
    """The JSON Schema of what ``annotation`` allows; ``{}`` (anything) for ``Any``."""
    if annotation in (Any, inspect.Parameter.empty, object):
        return {}
    if annotation in _SCALARS:
        return dict(_SCALARS[annotation])
    if is_typeddict(annotation):
        return _object(annotation)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:  # a handler's own parser says what it takes (Schema)
        explicit = [meta.schema for meta in args[1:] if isinstance(meta, Schema)]
        return copy.deepcopy(dict(explicit[0])) if explicit else schema(args[0])
    if origin in (typing.Union, types.UnionType):
        options = [schema(arg) for arg in args]
        return {} if {} in options else {"anyOf": options}
    if origin is typing.Literal:
        return {"const": args[0]} if len(args) == 1 else {"enum": list(args)}
    if origin is list:
        return {"type": "array", "items": schema(args[0])} if args else {"type": "array"}
    if origin is dict:
        values = schema(args[1]) if len(args) == 2 else {}
        return {"type": "object", "additionalProperties": values} if values else {
            "type": "object"}
    raise TypeError(f"no JSON Schema for {annotation!r}: describe it with JSON types "
                    "(int, float, str, bool, None, list[...], dict[str, ...], Literal, "
                    "unions, TypedDict) or Any")


def _object(cls: Any) -> dict[str, Any]:
    # Required/NotRequired read from the hints, not ``__required_keys__``: under
    # ``from __future__ import annotations`` Python 3.11 counts a NotRequired key as required.
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, hint in typing.get_type_hints(cls, include_extras=True).items():
        marker = typing.get_origin(hint)
        if marker in (typing.Required, typing.NotRequired):
            hint = typing.get_args(hint)[0]
        if marker is typing.Required or (marker is not typing.NotRequired
                                         and name in cls.__required_keys__):
            required.append(name)
        properties[name] = schema(hint)
    out: dict[str, Any] = {"type": "object", "title": cls.__name__, "properties": properties}
    if required:
        out["required"] = required
    out["additionalProperties"] = False
    return out
