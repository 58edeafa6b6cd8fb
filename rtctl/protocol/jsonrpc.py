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

What is valid JSON but unfit to go further is refused here, once, so nothing
past the decoder meets it (the -32600 of each is answered on an open connection):

* a string holding a lone surrogate escape such as ``"\\ud800"``: valid JSON
  text (RFC 8259 §7), but not Unicode, so not encodable as UTF-8 (RFC 8259
  §8.2; I-JSON, RFC 7493 §2.1, forbids it). Echoing, storing or relaying it
  would fail later, far from its cause; :func:`loads` refuses it too;
* arrays and objects nested more than :data:`MAX_DEPTH` deep;
* a batch of more than ``max_batch`` elements (one error names the limit).

One member beyond the specification's is read (§4 names the members a Request
has and says nothing of others): ``idempotency_key``, a string of 1 to 64
characters ``A-Z a-z 0-9 _ . : -`` that a client sets on a request it may send
again after a reconnect, so the server can answer the repeat without doing the
work twice (as Stripe's ``Idempotency-Key`` header). Any other value of it is
an Invalid Request; other unknown members are ignored.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeAlias

import orjson

from rtctl.protocol.codes import ErrorCode

__all__ = [
    "IDEMPOTENCY_KEY",
    "ID_NULL",
    "MAX_DEPTH",
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

IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,64}")  # the idempotency_key member's values

# Arrays and objects inside one another, the message itself counted: serde_json's
# recursion limit. Anything decoded here re-encodes with orjson (which writes 254
# levels at most), so a handler that echoes its params never fails on the way out.
MAX_DEPTH = 128


class Request(NamedTuple):
    """A valid Request object (§4). ``is_notification`` when it had no ``id``.

    A NamedTuple rather than a frozen dataclass: as immutable, and built
    several times faster, which the echo benchmark notices.
    """

    method: str
    params: list[Any] | dict[str, Any] | None
    id: RequestId
    is_notification: bool
    idempotency_key: str | None = None


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


def _stdlib_loads(text: str | bytes, first: orjson.JSONDecodeError) -> Any:
    """What orjson refused (``first``), by the standard library; ValueError with orjson's reason."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise ValueError(str(first)) from None


def _lone_surrogate(text: str) -> str | None:
    """The first lone surrogate of ``text`` as ``U+D800``; None for Unicode text.

    The standard library joins a valid escaped pair into one character, so any
    code point left in U+D800..U+DFFF stood alone (RFC 8259 §7).
    """
    if text.isascii():
        return None
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        return f"U+{ord(text[exc.start]):04X}"
    return None


def _unfit(value: Any, limit: int) -> str | None:
    """Why a decoded value must go no further (see the module docstring), or None.

    Iterative, so a value nested as deep as the standard library allows is walked safely.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind is str:
            where = _lone_surrogate(item)
            if where is not None:
                return (f"a string holds the lone surrogate {where}, which is not Unicode "
                        "(RFC 8259 §8.2); send well-formed UTF-16 pairs")
        elif kind is list or kind is dict:
            if depth > limit:
                return f"arrays and objects nested more than {MAX_DEPTH} deep"
            if kind is dict:
                stack.extend((key, depth) for key in item)
                item = item.values()
            stack.extend((child, depth + 1) for child in item)
    return None


def loads(text: str | bytes) -> Any:
    """Decode JSON; raise ``ValueError`` with orjson's or json's reason.

    Integers within the 64-bit range are exact; larger ones are read as IEEE
    doubles, as RFC 8259 §6 allows and as JavaScript clients read them anyway
    (send such identifiers as strings). Checking every message for them cost
    a tenth of the gateway's echo throughput. Valid JSON that orjson refuses
    for its depth limit is decoded by the standard library instead; a lone
    surrogate escape is refused (module docstring), whatever the depth.
    """
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as first:
        value = _stdlib_loads(text, first)
    problem = _unfit(value, sys.maxsize)  # orjson took none: only what it refused is walked
    if problem is not None:
        raise ValueError(problem)
    return value


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
            key = obj.get("idempotency_key")
            if key is not None and not (type(key) is str and IDEMPOTENCY_KEY.fullmatch(key)):
                return InvalidMessage(
                    ErrorCode.INVALID_REQUEST, 'Invalid Request: "idempotency_key" must be '
                    "a string of 1 to 64 characters A-Z a-z 0-9 _ . : -",
                    ID_NULL if raw_id is _NO_ID else raw_id)
            if raw_id is _NO_ID:
                return _new_request((method, None if params is _NO_ID else params, None, True,
                                     key))
            return _new_request((method, None if params is _NO_ID else params, raw_id, False,
                                 key))
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


def _screened(obj: Any, limit: int) -> Request | InvalidMessage:
    """:func:`_request`, after refusing an element that is unfit as a whole (-32600).

    The id is echoed when it is itself fit to echo, so the caller can match the error.
    """
    problem = _unfit(obj, limit)
    if problem is None:
        return _request(obj)
    raw_id = obj.get("id") if type(obj) is dict else None
    fit_id = valid_id(raw_id) and not (type(raw_id) is str and _lone_surrogate(raw_id))
    return InvalidMessage(ErrorCode.INVALID_REQUEST, f"Invalid Request: {problem}",
                          raw_id if fit_id else ID_NULL)


_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))


def _may_nest_deeper(text: str | bytes) -> bool:
    """Could ``text`` nest more than :data:`MAX_DEPTH` deep? Cheap, and never wrong when False.

    Each level takes two characters. Otherwise the brackets alone are kept and
    innermost pairs taken away, a level a pass, all at C speed; what is left
    after :data:`MAX_DEPTH` passes is too deep, or a bracket inside a string
    (rare: the decoded value is then walked to tell).
    """
    if len(text) <= 2 * MAX_DEPTH:
        return False
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    brackets = data.translate(None, _NOT_BRACKETS).replace(b"{", b"[").replace(b"}", b"]")
    for _ in range(MAX_DEPTH):
        brackets = brackets.replace(b"[]", b"")
        if not brackets:
            return False
    return True


def decode(text: str | bytes, max_batch: int | None = None) -> Incoming:
    """Turn one WebSocket message into what it asks for (§4, §6).

    A batch of more than ``max_batch`` elements is one Invalid Request naming
    the limit; none of its elements is looked at.
    """
    try:
        value = orjson.loads(text)  # the common case, without loads()'s call on top
        screen = False  # orjson takes no lone surrogate: only depth is left to check
    except orjson.JSONDecodeError as first:
        try:
            value = _stdlib_loads(text, first)
        except ValueError as exc:
            return InvalidMessage(ErrorCode.PARSE_ERROR, f"Parse error: {exc}")
        screen = True
    if type(value) is list:
        if not value:
            return InvalidMessage(ErrorCode.INVALID_REQUEST, "Invalid Request: empty batch")
        if max_batch is not None and len(value) > max_batch:
            return InvalidMessage(
                ErrorCode.INVALID_REQUEST,
                f"Invalid Request: a batch of {len(value)} requests is over this "
                f"server's limit of {max_batch}; send it in smaller batches")
        if screen or _may_nest_deeper(text):
            return BatchReceived(tuple(_screened(item, MAX_DEPTH - 1) for item in value))
        return BatchReceived(tuple(_request(item) for item in value))
    if screen or _may_nest_deeper(text):
        return _screened(value, MAX_DEPTH)
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
    method: str, params: Sequence[Any] | dict[str, Any] | None, request_id: RequestId, *,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """A Request object (§4), as clients send it (with the ``idempotency_key`` member if given)."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params if isinstance(params, dict) else list(params)
    message["id"] = request_id
    if idempotency_key is not None:
        message["idempotency_key"] = idempotency_key
    return message
