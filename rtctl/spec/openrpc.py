"""A router as an OpenRPC 1.3.2 document (https://spec.open-rpc.org/).

Methods come from what the :class:`~rtctl.router.Router` binds (the CallContext
parameter left out; :mod:`rtctl.spec.params` says how each JSON form binds). The
result is the handler's return annotation. Errors: ``components.errors`` holds every
code rtctl answers (``rtctl.protocol.codes``), with the schema of its ``data`` where
that has one shape (under ``data``); a method lists the codes any call may get and
those its handler declares (``Router.add_method(errors=...)``), a game's own codes
inline. OpenRPC describes
only calls to the server, so the server-to-client notifications a router declares go
in the extension list ``x-notifications`` (OpenRPC §4.9: fields starting ``x-``),
each shaped like a method object whose params are always by name. A method that
takes its params exactly as sent (``raw_params``, like ``sys.echo``) lists none and
says so with ``x-raw-params: true``. An annotation with no JSON Schema is a
:class:`~rtctl.spec.params.SpecError` naming the method, not a guess.
"""

from __future__ import annotations

import inspect
import re
from typing import Any, NotRequired, TypedDict

from rtctl import __version__
from rtctl.exceptions import ErrorDecl
from rtctl.protocol.codes import ERROR_DESCRIPTIONS, ErrorCode
from rtctl.router import Method, Notification, Router
from rtctl.spec.jsonschema import DIALECT, schema
from rtctl.spec.params import SpecError, describe_params

__all__ = ["CALL_ERRORS", "ERROR_DATA", "OPENRPC_VERSION", "describe_text", "openrpc"]

OPENRPC_VERSION = "1.3.2"
# What any call may be answered, whatever its handler does: bad params, a failing
# handler, the connection's inbound rate (docs/protocol.md §6.1 has the rest).
CALL_ERRORS = (ErrorCode.INVALID_PARAMS, ErrorCode.INTERNAL_ERROR, ErrorCode.RATE_LIMITED)


class _Correlation(TypedDict):
    correlation_id: str


class _Reason(TypedDict):
    reason: str


class _Conflict(TypedDict):
    path: NotRequired[str]  # state.update's; the conformance client's scripted one has none
    version: int
    value: Any


class _Owner(TypedDict):
    room: str
    node: str


class _RetryAfter(TypedDict):
    retry_after_ms: int


class _Backend(TypedDict):
    backend: str


# The ``data`` of the codes whose data has one shape, wherever rtctl raises them
# (rtctl.router, services/system.py, services/state.py, gateway/dispatch.py, backends/errors.py,
# conformance/scenarios.py): a member is required where every one of those includes it. A
# game may raise these codes too, so the schemas stay open (further members allowed).
ERROR_DATA: dict[ErrorCode, type] = {
    ErrorCode.INTERNAL_ERROR: _Correlation, ErrorCode.UNAUTHORIZED: _Reason,
    ErrorCode.CONFLICT: _Conflict, ErrorCode.WRONG_NODE: _Owner,
    ErrorCode.RATE_LIMITED: _RetryAfter, ErrorCode.BACKEND_UNAVAILABLE: _Backend,
}
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
    out: dict[str, Any] = {"code": int(code), "message": ERROR_DESCRIPTIONS[code]}
    if code in ERROR_DATA:
        out["x-data-schema"] = {k: v for k, v in schema(ERROR_DATA[code]).items()
                       if k not in ("title", "additionalProperties")}
    return out


def _declared(error: ErrorCode | ErrorDecl) -> dict[str, Any]:
    """rtctl's codes by reference to ``components.errors``; a game's own inline (OpenRPC
    Error Object: code, message). OpenRPC's ``data`` is an example value, not a schema, so
    the shape of the error's ``data`` is the extension member ``x-data-schema``."""
    if not isinstance(error, ErrorDecl):
        return {"$ref": f"#/components/errors/{error.name}"}
    out: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.data is not None:
        out["x-data-schema"] = schema(error.data)
    return out


def _method(method: Method) -> dict[str, Any]:
    out: dict[str, Any] = {"name": method.name,
                           "description": describe_text(method.func.__doc__)}
    if method.raw_params:
        out.update(paramStructure="either", params=[], **{"x-raw-params": True})
    else:
        out.update(describe_params(method))
    try:
        result = schema(method.hints.get("return", Any))
    except TypeError as exc:
        raise SpecError(f"{method.name}: its return annotation: {exc}") from None
    out["result"] = {"name": "result", "schema": result}
    codes = [*method.errors, *(code for code in CALL_ERRORS if code not in method.errors)]
    out["errors"] = [_declared(code) for code in codes]
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
        "x-params-schema": {"$schema": DIALECT, **body},
    }
