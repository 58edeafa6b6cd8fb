"""A method's params, described exactly as :meth:`rtctl.router.Method.bind` binds them.

Python binds an array to positional parameters and an object to keyword ones
(JSON-RPC 2.0 §4.2), so which JSON form reaches a parameter depends on its kind:
a positional-or-keyword one either form, a positional-only one and ``*args``
only an array, a keyword-only one and ``**kwargs`` only an object. The
``x-params-schema`` published for a method is the exact set of ``params`` values
that bind (an object form, an array form, or both as ``anyOf``): an object holds
the named params, ``**kwargs`` as ``additionalProperties`` (never named like a
positional-only one: ``propertyNames``); an array holds the
positional ones in order (``prefixItems``), ``*args`` as further ``items``.

OpenRPC's ``paramStructure`` and ``params`` list can say less: ``either`` only
when every parameter is positional-or-keyword; otherwise the one form that
reaches ``*args`` (by position) or the keyword-only parameters (by name), listing
only the parameters that form reaches (the others are optional). A signature no
JSON value can call — a required positional-only parameter and a required
keyword-only one — is a :class:`SpecError`.
"""

from __future__ import annotations

import inspect
from typing import Any

from rtctl.router import Method
from rtctl.spec.jsonschema import DIALECT, schema

__all__ = ["SpecError", "describe_params"]

_P = inspect.Parameter
_Kinds = tuple[inspect._ParameterKind, ...]
_BY_POSITION: _Kinds = (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD)
_BY_NAME: _Kinds = (_P.POSITIONAL_OR_KEYWORD, _P.KEYWORD_ONLY)
_JSON = (str, int, float, bool, type(None), list, dict)


class SpecError(ValueError):
    """A router the spec cannot describe truthfully; the message names the method."""


def describe_params(method: Method) -> dict[str, Any]:
    """``paramStructure``, ``params`` (content descriptors), ``x-params-schema`` and, for
    ``*args``, ``x-variadic`` (its content descriptor) of ``method``'s OpenRPC object."""
    params = list(method.signature.parameters.values())
    kinds = {p.kind for p in params}

    def required(kind: inspect._ParameterKind) -> bool:
        return any(p.kind is kind and p.default is p.empty for p in params)

    can_position, can_name = not required(_P.KEYWORD_ONLY), not required(_P.POSITIONAL_ONLY)
    if not (can_position or can_name):
        raise SpecError(f"{method.name}: no JSON params can call it (a required "
                        "positional-only parameter and a required keyword-only one)")
    forms = []
    if can_name:
        forms.append(_object(method, params))
    if can_position:
        forms.append(_array(method, params))
    # A dialect of its own: OpenRPC's Schema Objects are draft-07, this uses 2020-12's words.
    body = forms[0] if len(forms) == 1 else {"anyOf": forms}
    out: dict[str, Any] = {"x-params-schema": {"$schema": DIALECT, **body}}
    positional_only = {_P.POSITIONAL_ONLY, _P.VAR_POSITIONAL} & kinds
    named_only = {_P.KEYWORD_ONLY, _P.VAR_KEYWORD} & kinds
    if not (positional_only or named_only):
        structure, listed = "either", _BY_POSITION
    elif can_position and (_P.VAR_POSITIONAL in kinds or not named_only or not can_name):
        structure, listed = "by-position", _BY_POSITION
    else:
        structure, listed = "by-name", _BY_NAME
    out["paramStructure"] = structure
    out["params"] = [_descriptor(p, method) for p in params if p.kind in listed]
    variadic = [p for p in params if p.kind is _P.VAR_POSITIONAL]
    if structure == "by-position" and variadic:
        out["x-variadic"] = {"name": variadic[0].name, "required": False,
                             "schema": _item(variadic[0], method)}
    return out


def _item(param: inspect.Parameter, method: Method) -> dict[str, Any]:
    try:
        return schema(method.hints.get(param.name, Any))
    except TypeError as exc:
        raise SpecError(f"{method.name}: parameter {param.name!r}: {exc}") from None


def _descriptor(param: inspect.Parameter, method: Method) -> dict[str, Any]:
    item = _item(param, method)
    if isinstance(param.default, _JSON):  # (a default JSON cannot carry is left unsaid)
        item = {**item, "default": param.default}
    return {"name": param.name, "required": param.default is param.empty, "schema": item}


def _object(method: Method, params: list[inspect.Parameter]) -> dict[str, Any]:
    named = [p for p in params if p.kind in _BY_NAME]
    out: dict[str, Any] = {"type": "object",
                           "properties": {p.name: _item(p, method) for p in named}}
    required = [p.name for p in named if p.default is p.empty]
    if required:
        out["required"] = required
    extra = [p for p in params if p.kind is _P.VAR_KEYWORD]
    out["additionalProperties"] = _item(extra[0], method) if extra else False
    positional = [p.name for p in params if p.kind is _P.POSITIONAL_ONLY]
    if extra and positional:  # Python refuses a positional-only name as a keyword
        out["propertyNames"] = {"not": {"enum": positional}}
    return out


def _array(method: Method, params: list[inspect.Parameter]) -> dict[str, Any]:
    positional = [p for p in params if p.kind in _BY_POSITION]
    out: dict[str, Any] = {"type": "array",
                           "prefixItems": [_item(p, method) for p in positional]}
    required = sum(p.default is p.empty for p in positional)  # they come first in Python
    if required:
        out["minItems"] = required
    extra = [p for p in params if p.kind is _P.VAR_POSITIONAL]
    out["items"] = _item(extra[0], method) if extra else False
    return out
