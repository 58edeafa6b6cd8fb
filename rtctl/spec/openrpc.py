"""A router as an OpenRPC 1.3.2 document (https://spec.open-rpc.org/).

Methods come from what the :class:`~rtctl.router.Router` binds (the CallContext
parameter left out): each parameter is a content descriptor, required when it has
no default; ``paramStructure`` says whether params go by name (an object), by
position (an array in signature order) or ``either`` (JSON-RPC 2.0 §4.2), as
Python's binding allows. The result is the handler's return annotation. Errors:
``components.errors`` holds every code rtctl answers (``rtctl.protocol.codes``);
a method lists those any call may get. OpenRPC describes only calls to the server,
so the server-to-client notifications a router declares go in the extension list
``x-notifications`` (OpenRPC §4.9: fields starting ``x-``), each shaped like a
method object whose params are always by name. A method that takes its params
exactly as sent (``raw_params``, like ``sys.echo``) lists none and says so with
``x-raw-params: true``.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from rtctl import __version__
from rtctl.protocol.codes import ERROR_DESCRIPTIONS, ErrorCode
from rtctl.router import Method, Notification, Router
from rtctl.spec.jsonschema import schema

__all__ = ["CALL_ERRORS", "OPENRPC_VERSION", "describe_text", "openrpc"]

OPENRPC_VERSION = "1.3.2"
# What any call may be answered, whatever its handler does: bad params, a failing
# handler, the connection's inbound rate (docs/protocol.md §6.1 has the rest).
CALL_ERRORS = (ErrorCode.INVALID_PARAMS, ErrorCode.INTERNAL_ERROR, ErrorCode.RATE_LIMITED)

_JSON = (str, int, float, bool, type(None), list, dict)
_ROLE = re.compile(r":[a-z]+:`(~?)([^`]+)`")


def describe_text(doc: str | None) -> str:
    """A docstring as CommonMark (OpenRPC descriptions are): Sphinx roles and
    ````literals```` become `code`, ``~a.b.C`` reads ``C``."""
    if not doc:
        return ""
    text = inspect.cleandoc(doc)
    text = _ROLE.sub(lambda m: f"`{m[2].rsplit('.', 1)[-1] if m[1] else m[2]}`", text)
    return text.replace("``", "`")


def openrpc(router: Router) -> dict[str, Any]:
    """The OpenRPC document of every method and notification ``router`` offers."""
    methods = []
    for name in router.methods:
        method = router.get(name)
        assert method is not None, "listed by the router"
        methods.append(_method(method))
    return {
        "openrpc": OPENRPC_VERSION,
        "info": {
            "title": "rtctl gateway",
            "version": __version__,
            "description": "JSON-RPC 2.0 over WebSocket (subprotocol rtctl.v1); the "
                           "protocol is docs/protocol.md.",
        },
        "methods": methods,
        "components": {"errors": {code.name: _error(code) for code in ErrorCode}},
        "x-notifications": [_notification(note) for note in router.notifications.values()],
    }


def _error(code: ErrorCode) -> dict[str, Any]:
    return {"code": int(code), "message": ERROR_DESCRIPTIONS[code]}


def _method(method: Method) -> dict[str, Any]:
    out: dict[str, Any] = {"name": method.name,
                           "description": describe_text(method.func.__doc__)}
    if method.raw_params:
        out.update(paramStructure="either", params=[], **{"x-raw-params": True})
    else:
        out.update(paramStructure=_structure(method.signature),
                   params=[_param(p, method.hints) for p in method.signature.parameters.values()])
    out["result"] = {"name": "result", "schema": schema(method.hints.get("return", Any))}
    out["errors"] = [{"$ref": f"#/components/errors/{code.name}"} for code in CALL_ERRORS]
    return out


def _structure(signature: inspect.Signature) -> str:
    """Which params a call may send: an array binds positionally, an object by keyword."""
    kinds = [(p.kind, p.default is p.empty) for p in signature.parameters.values()]
    by_position = not any(kind is inspect.Parameter.KEYWORD_ONLY and required
                          for kind, required in kinds)
    by_name = not any(kind is inspect.Parameter.POSITIONAL_ONLY and required
                      for kind, required in kinds)
    if by_position and by_name:
        return "either"
    return "by-position" if by_position else "by-name"


def _param(param: inspect.Parameter, hints: dict[str, Any]) -> dict[str, Any]:
    item = schema(hints.get(param.name, Any))
    if param.kind is param.VAR_POSITIONAL:
        return {"name": param.name, "required": False, "description": "any further "
                "positional params", "schema": {"type": "array", "items": item}}
    if param.kind is param.VAR_KEYWORD:
        return {"name": param.name, "required": False, "description": "any further "
                "named params", "schema": {"type": "object", "additionalProperties": item}}
    out: dict[str, Any] = {"name": param.name, "required": param.default is param.empty,
                           "schema": item}
    if isinstance(param.default, _JSON):  # (a default JSON cannot carry is left unsaid)
        out["schema"] = {**item, "default": param.default}
    return out


def _notification(note: Notification) -> dict[str, Any]:
    body = schema(note.params)
    required = set(body.get("required", ()))
    return {
        "name": note.name,
        "description": describe_text(note.doc),
        "paramStructure": "by-name",
        "params": [{"name": name, "required": name in required, "schema": sub}
                   for name, sub in body["properties"].items()],
        "x-params-schema": body,
    }
