"""Checking JSON params against a handler's annotations (JSON-RPC 2.0 §4.2, -32602).

:func:`checker` turns an annotation into a function that raises
:class:`~rtctl.exceptions.InvalidParams` naming the parameter when a value does
not fit: JSON types (``int``, ``float``, ``str``, ``bool``, ``None``),
``list[...]``, ``dict[str, ...]``, ``Literal[...]`` and unions of them; ``Any``
(or no annotation) accepts everything. JSON keeps ``true`` and ``1`` apart, so
a ``bool`` is never an ``int`` here. ``Annotated[T, ...]`` checks as ``T``: a
handler that parses a value itself declares ``Annotated[Any, Schema({...})]``, so
the published description (``rtctl spec``) says what its parser takes.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from rtctl.exceptions import InvalidParams

__all__ = ["Checker", "Schema", "checker"]

Checker: TypeAlias = Callable[[Any, str], None]


@dataclass(frozen=True, eq=False)  # eq=False: hashable, as typing's unions need their args
class Schema:
    """``Annotated`` metadata: the JSON Schema of a parameter its handler parses itself
    (binding ignores it; :mod:`rtctl.spec.jsonschema` publishes it instead of ``T``'s)."""

    schema: Mapping[str, Any]


_NAMES = {int: "integer", float: "number", str: "string", bool: "boolean",
          list: "array", dict: "object", type(None): "null"}


def _json_type(value: Any) -> str:
    return _NAMES.get(type(value), type(value).__name__)


def _isinstance_checker(py_type: type, label: str) -> Checker:
    def check(value: Any, where: str) -> None:
        # bool is an int subclass in Python, but JSON keeps them apart.
        if not isinstance(value, py_type) or (isinstance(value, bool) and py_type is not bool):
            raise InvalidParams(
                f"Invalid params: {where!r} must be {label}, got {_json_type(value)}")

    return check


def _float_check(value: Any, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidParams(f"Invalid params: {where!r} must be number, got {_json_type(value)}")


def checker(annotation: Any) -> Checker | None:
    """Build a checker for an annotation; None means anything goes."""
    if annotation in (Any, inspect.Parameter.empty, object):
        return None
    if annotation is float:
        return _float_check
    if annotation is None or annotation is type(None):
        return _isinstance_checker(type(None), "null")
    if annotation in _NAMES:
        return _isinstance_checker(annotation, _NAMES[annotation])
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return checker(args[0])
    if origin in (typing.Union, types.UnionType):
        options = [checker(arg) for arg in args]
        if any(option is None for option in options):
            return None
        label = " or ".join(_label(arg) for arg in args)

        def check_union(value: Any, where: str) -> None:
            for option in options:
                try:
                    option(value, where)  # type: ignore[misc]
                except InvalidParams:
                    continue
                return
            raise InvalidParams(
                f"Invalid params: {where!r} must be {label}, got {_json_type(value)}")

        return check_union
    if origin is typing.Literal:
        allowed = args

        def check_literal(value: Any, where: str) -> None:
            # 1 == True in Python; a JSON literal must match in type too.
            if not any(value == a and type(value) is type(a) for a in allowed):
                choices = ", ".join(repr(a) for a in allowed)
                raise InvalidParams(f"Invalid params: {where!r} must be one of {choices}")

        return check_literal
    if origin is list:
        outer = _isinstance_checker(list, "array")
        inner = checker(args[0]) if args else None

        def check_list(value: Any, where: str) -> None:
            outer(value, where)
            if inner is not None:
                for index, item in enumerate(value):
                    inner(item, f"{where}[{index}]")

        return check_list
    if origin is dict:
        outer = _isinstance_checker(dict, "object")
        inner = checker(args[1]) if len(args) == 2 else None

        def check_dict(value: Any, where: str) -> None:
            outer(value, where)
            if inner is not None:
                for key, item in value.items():
                    inner(item, f"{where}[{key!r}]")

        return check_dict
    raise TypeError(
        f"rtctl cannot check parameters annotated {annotation!r}: use JSON types "
        "(int, float, str, bool, None, list[...], dict[str, ...], Literal, unions) or Any"
    )


def _label(annotation: Any) -> str:
    if annotation in _NAMES:
        return _NAMES[annotation]
    if annotation is float:
        return "number"
    return getattr(annotation, "__name__", str(annotation))
