"""A sans-I/O JSON-RPC 2.0 codec, exactly per the specification.

Text in, events out; replies in, text out. Nothing here reads a socket or a
clock. The edge cases the specification spells out (§4–§6) are all handled:

* text that is not JSON is a Parse error (-32700) with ``"id": null`` (§5.1);
* a value that is not a Request object is an Invalid Request (-32600) (§4);
* an empty batch ``[]`` is answered with *one* error object, not an array (§6);
* a batch of invalid elements is answered with an array of errors (§6);
* notifications (no ``id`` member) are never answered, and a batch made only
  of notifications gets no reply at all (§4.1, §6);
* names beginning with ``rpc.`` are reserved (§4) and answered -32601.

JSON is decoded with orjson; a document that orjson refuses for its own
limits is decoded with the standard library, so no valid JSON is turned away.
Integers beyond 64 bits become doubles (see :func:`loads`). NaN and Infinity
are not JSON and stay refused.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeAlias

import orjson

from rtctl.protocol.codes import ErrorCode

__all__ = [
    "ID_NULL",
    "BatchReceived",
    "Incoming",
    "InvalidMessage",
    "Request",
    "RequestId",
    "decode",
    "dumps",
    "encode_error",
    "encode_notification",
    "encode_request",
    "encode_result",
    "error_object",
    "loads",
    "valid_id",
]

RequestId: TypeAlias = str | int | float | None
ID_NULL: RequestId = None

_NO_ID = object()  # marks a notification: the "id" member is absent (§4.1)


class Request(NamedTuple):
    """A valid Request object (§4). ``is_notification`` when it had no ``id``.

    A NamedTuple rather than a frozen dataclass: as immutable, and built
    several times faster, which the echo benchmark notices.
    """

    method: str
    params: list[Any] | dict[str, Any] | None
    id: RequestId
    is_notification: bool


@dataclass(frozen=True, slots=True)
class InvalidMessage:
    """Something that must be answered with an error object and nothing else."""

    code: ErrorCode
    message: str
    id: RequestId = ID_NULL


@dataclass(frozen=True, slots=True)
class BatchReceived:
    """A non-empty batch (§6): each element a Request or an InvalidMessage."""

    items: tuple[Request | InvalidMessage, ...]


Incoming: TypeAlias = Request | InvalidMessage | BatchReceived


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _stdlib_loads(text: str | bytes) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def loads(text: str | bytes) -> Any:
    """Decode JSON; raise ``ValueError`` with orjson's or json's reason.

    Integers within the 64-bit range are exact; larger ones are read as IEEE
    doubles, as RFC 8259 §6 allows and as JavaScript clients read them anyway
    (send such identifiers as strings). Checking every message for them cost
    a tenth of the gateway's echo throughput. Valid JSON that orjson refuses
    (lone surrogate escapes) is decoded by the standard library instead.
    """
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as first:
        try:
            return _stdlib_loads(text)
        except ValueError:
            raise ValueError(str(first)) from None


def dumps(value: Any) -> bytes:
    """Encode JSON as UTF-8 bytes; ``TypeError`` when a value cannot be JSON."""
    try:
        return orjson.dumps(value)
    except TypeError:
        # Integers beyond 64 bits again; anything json cannot encode raises TypeError too.
        try:
            return json.dumps(value, ensure_ascii=False, allow_nan=False).encode()
        except (ValueError, RecursionError) as exc:  # NaN, a circular or too deep value
            raise TypeError(str(exc)) from None


_new_request = functools.partial(tuple.__new__, Request)
_ID_TYPES = frozenset({str, int, float, type(None)})  # exact types: a bool is no id
_STRUCTURED = frozenset({list, dict})


def valid_id(value: Any) -> bool:
    """A string, a number or null (§4); a decoded JSON value is one of exact types."""
    return type(value) in _ID_TYPES


def _request(obj: Any) -> Request | InvalidMessage:
    """Validate one element against §4; the common valid case is checked first."""
    if type(obj) is dict and obj.get("jsonrpc") == "2.0":
        method = obj.get("method")
        params = obj.get("params", _NO_ID)
        raw_id = obj.get("id", _NO_ID)
        if (type(method) is str
                and (params is _NO_ID or type(params) in _STRUCTURED)
                and (raw_id is _NO_ID or type(raw_id) in _ID_TYPES)):  # valid_id, inlined
            if raw_id is _NO_ID:
                return _new_request((method, None if params is _NO_ID else params, None, True))
            return _new_request((method, None if params is _NO_ID else params, raw_id, False))
    return _invalid(obj)


def _invalid(obj: Any) -> InvalidMessage:
    """Say exactly what is wrong with an element that failed the fast check."""
    if not isinstance(obj, dict):
        return InvalidMessage(ErrorCode.INVALID_REQUEST, "Invalid Request: not an object")
    raw_id = obj.get("id", _NO_ID)
    # Echo the id when it is itself valid, so the caller can match the error;
    # otherwise it could not be detected and is null (§5).
    reply_id: RequestId = raw_id if raw_id is not _NO_ID and valid_id(raw_id) else ID_NULL
    if obj.get("jsonrpc") != "2.0":
        return InvalidMessage(
            ErrorCode.INVALID_REQUEST, 'Invalid Request: "jsonrpc" must be "2.0"', reply_id
        )
    method = obj.get("method")
    if not isinstance(method, str):
        return InvalidMessage(
            ErrorCode.INVALID_REQUEST, 'Invalid Request: "method" must be a string', reply_id
        )
    params = obj.get("params")
    if params is not None and not isinstance(params, list | dict):
        return InvalidMessage(
            ErrorCode.INVALID_REQUEST,
            'Invalid Request: "params" must be an array or an object',
            reply_id,
        )
    if "params" in obj and params is None:
        return InvalidMessage(
            ErrorCode.INVALID_REQUEST,
            'Invalid Request: "params" may be omitted but not null',
            reply_id,
        )
    # What is left to fail the fast check is the id itself.
    return InvalidMessage(
        ErrorCode.INVALID_REQUEST, 'Invalid Request: "id" must be a string, number or null'
    )


def decode(text: str | bytes) -> Incoming:
    """Turn one WebSocket message into what it asks for (§4, §6)."""
    try:
        value = orjson.loads(text)  # the common case, without loads()'s call on top
    except orjson.JSONDecodeError:
        try:
            value = loads(text)
        except ValueError as exc:
            return InvalidMessage(ErrorCode.PARSE_ERROR, f"Parse error: {exc}")
    if isinstance(value, list):
        if not value:
            return InvalidMessage(ErrorCode.INVALID_REQUEST, "Invalid Request: empty batch")
        return BatchReceived(tuple(_request(item) for item in value))
    return _request(value)


def error_object(code: int, message: str, data: Any = None) -> dict[str, Any]:
    """The Error object of §5.1; ``data`` is omitted when None."""
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return error


def encode_result(request_id: RequestId, result: Any) -> dict[str, Any]:
    """A success Response object (§5)."""
    return {"jsonrpc": "2.0", "result": result, "id": request_id}


def encode_error(
    request_id: RequestId, code: int, message: str, data: Any = None
) -> dict[str, Any]:
    """An error Response object (§5)."""
    return {"jsonrpc": "2.0", "error": error_object(code, message, data), "id": request_id}


def encode_notification(method: str, params: Any = None) -> dict[str, Any]:
    """A Notification (§4.1): how the gateway pushes events to clients."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    return message


def encode_request(
    method: str, params: Sequence[Any] | dict[str, Any] | None, request_id: RequestId
) -> dict[str, Any]:
    """A Request object (§4), as clients send it."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params if isinstance(params, dict) else list(params)
    message["id"] = request_id
    return message
