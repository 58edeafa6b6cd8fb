"""Tests for rtctl.protocol.jsonrpc: the sans-I/O codec against JSON-RPC 2.0 §4–§6."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rtctl.protocol.codes import ErrorCode
from rtctl.protocol.jsonrpc import (
    ID_NULL,
    MAX_DEPTH,
    BatchReceived,
    InvalidMessage,
    Request,
    decode,
    dumps,
    encode_error,
    encode_notification,
    encode_request,
    encode_result,
    error_object,
    loads,
)

NOT_AN_OBJECT = InvalidMessage(ErrorCode.INVALID_REQUEST, "Invalid Request: not an object")
BAD_VERSION = 'Invalid Request: "jsonrpc" must be "2.0"'
BAD_METHOD = 'Invalid Request: "method" must be a string'
BAD_PARAMS = 'Invalid Request: "params" must be an array or an object'
NULL_PARAMS = 'Invalid Request: "params" may be omitted but not null'
BAD_ID = 'Invalid Request: "id" must be a string, number or null'

BIG = 123456789012345678901234567890  # beyond 64 bits
BIG_NEGATIVE = -9223372036854775809  # one below the smallest int64


# ---------------------------------------------------------------------------
# decode: valid requests and notifications (§4, §4.1, §4.2)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            '{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}',
            Request("subtract", [42, 23], 1, False),
            id="positional-int-id",
        ),
        pytest.param(
            '{"jsonrpc": "2.0", "method": "subtract",'
            ' "params": {"subtrahend": 23, "minuend": 42}, "id": 3}',
            Request("subtract", {"subtrahend": 23, "minuend": 42}, 3, False),
            id="named-params",
        ),
        pytest.param(
            '{"jsonrpc": "2.0", "method": "get_data", "id": "9"}',
            Request("get_data", None, "9", False),
            id="no-params-string-id",
        ),
        pytest.param(
            '{"jsonrpc": "2.0", "method": "m", "params": [], "id": 2.5}',
            Request("m", [], 2.5, False),
            id="float-id",
        ),
        pytest.param(
            '{"jsonrpc": "2.0", "method": "m", "params": {}, "id": null}',
            Request("m", {}, None, False),
            id="null-id-is-a-request",
        ),
        pytest.param(
            '{"jsonrpc": "2.0", "method": "m", "id": 0}',
            Request("m", None, 0, False),
            id="zero-id",
        ),
        pytest.param(
            '{"jsonrpc": "2.0", "method": "m", "id": ""}',
            Request("m", None, "", False),
            id="empty-string-id",
        ),
        pytest.param(
            '{"jsonrpc": "2.0", "method": "update", "params": [1, 2, 3, 4, 5]}',
            Request("update", [1, 2, 3, 4, 5], None, True),
            id="notification",
        ),
        pytest.param(
            '{"jsonrpc": "2.0", "method": "foobar"}',
            Request("foobar", None, None, True),
            id="notification-without-params",
        ),
        pytest.param(
            '{"jsonrpc": "2.0", "method": "rpc.discover", "id": 1}',
            Request("rpc.discover", None, 1, False),
            id="reserved-name-is-the-routers-business",
        ),
        pytest.param(
            b'{"jsonrpc": "2.0", "method": "bytes", "params": ["\xc3\xa9"], "id": 7}',
            Request("bytes", ["é"], 7, False),
            id="bytes-input",
        ),
        pytest.param(
            f'{{"jsonrpc": "2.0", "method": "big", "params": [{BIG}], "id": {BIG}}}',
            Request("big", [float(BIG)], float(BIG), False),
            id="wide-integers-are-doubles",
        ),
    ],
)
def test_decode_valid(text: str | bytes, expected: Request) -> None:
    decoded = decode(text)
    assert decoded == expected
    assert isinstance(decoded, Request)
    assert type(decoded.id) is type(expected.id)


# ---------------------------------------------------------------------------
# decode: invalid requests (§4, §5.1)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message", "reply_id"),
    [
        pytest.param('{"jsonrpc": "2.0", "method": "m", "id": true}', BAD_ID, None,
                     id="bool-id"),
        pytest.param('{"jsonrpc": "2.0", "method": "m", "id": false}', BAD_ID, None,
                     id="false-id"),
        pytest.param('{"jsonrpc": "2.0", "method": "m", "id": [1]}', BAD_ID, None,
                     id="array-id"),
        pytest.param('{"jsonrpc": "2.0", "method": "m", "id": {"a": 1}}', BAD_ID, None,
                     id="object-id"),
        pytest.param('{"method": "m", "id": 1}', BAD_VERSION, 1, id="missing-jsonrpc"),
        pytest.param('{"jsonrpc": "1.0", "method": "m", "id": "a"}', BAD_VERSION, "a",
                     id="jsonrpc-1.0"),
        pytest.param('{"jsonrpc": 2.0, "method": "m", "id": 1}', BAD_VERSION, 1,
                     id="jsonrpc-number"),
        pytest.param('{"jsonrpc": "2.0", "method": "m", "id": true, "x": 0}', BAD_ID, None,
                     id="bool-id-not-echoed"),
        pytest.param('{"jsonrpc": "2.1", "method": "m", "id": true}', BAD_VERSION, None,
                     id="bad-version-and-bool-id"),
        pytest.param('{"jsonrpc": "2.0", "method": 1, "params": "bar"}', BAD_METHOD, None,
                     id="spec-method-number"),
        pytest.param('{"jsonrpc": "2.0", "params": [1], "id": 4}', BAD_METHOD, 4,
                     id="missing-method"),
        pytest.param('{"jsonrpc": "2.0", "method": null, "id": 4}', BAD_METHOD, 4,
                     id="method-null"),
        pytest.param('{"jsonrpc": "2.0", "method": ["m"], "id": 4}', BAD_METHOD, 4,
                     id="method-array"),
        pytest.param('{"jsonrpc": "2.0", "method": "m", "params": "bar", "id": 5}', BAD_PARAMS,
                     5, id="params-string"),
        pytest.param('{"jsonrpc": "2.0", "method": "m", "params": 42, "id": 5}', BAD_PARAMS,
                     5, id="params-number"),
        pytest.param('{"jsonrpc": "2.0", "method": "m", "params": true, "id": 5}', BAD_PARAMS,
                     5, id="params-bool"),
        pytest.param('{"jsonrpc": "2.0", "method": "m", "params": null, "id": 5}', NULL_PARAMS,
                     5, id="params-null"),
        pytest.param('{"jsonrpc": "2.0", "method": "m", "params": "x"}', BAD_PARAMS, None,
                     id="notification-params-string"),
        pytest.param('"a string"', "Invalid Request: not an object", None, id="string"),
        pytest.param("1", "Invalid Request: not an object", None, id="number"),
        pytest.param("null", "Invalid Request: not an object", None, id="null"),
        pytest.param("[]", "Invalid Request: empty batch", None, id="empty-batch"),
    ],
)
def test_decode_invalid_request(text: str, message: str, reply_id: Any) -> None:
    decoded = decode(text)
    assert decoded == InvalidMessage(ErrorCode.INVALID_REQUEST, message, reply_id)
    assert decoded.code == -32600


def test_empty_array_is_one_error_not_a_batch() -> None:
    decoded = decode("[]")
    assert isinstance(decoded, InvalidMessage)
    assert not isinstance(decoded, BatchReceived)
    assert decoded.id is ID_NULL


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]', id="spec"),
        pytest.param(
            '[{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},'
            '{"jsonrpc": "2.0", "method"]',
            id="spec-batch",
        ),
        pytest.param("", id="empty"),
        pytest.param("   ", id="whitespace"),
        pytest.param("{", id="unterminated"),
        pytest.param("{'jsonrpc': '2.0'}", id="single-quotes"),
        pytest.param('{"a": 1,}', id="trailing-comma"),
        pytest.param("NaN", id="nan"),
        pytest.param("[NaN]", id="nan-in-array"),
        pytest.param("Infinity", id="infinity"),
        pytest.param("-Infinity", id="minus-infinity"),
        pytest.param(f'{{"jsonrpc": "2.0", "method": "m", "params": [NaN, {BIG}]}}',
                     id="nan-beside-wide-int"),
        pytest.param(f"[Infinity, {BIG}]", id="infinity-beside-wide-int"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
        pytest.param("[" * 2000 + "]" * 2000, id="too-deep"),
        pytest.param("[" * 5000 + str(BIG) + "]" * 5000, id="too-deep-wide-int"),
    ],
)
def test_decode_parse_error(text: str | bytes) -> None:
    decoded = decode(text)
    assert isinstance(decoded, InvalidMessage)
    assert decoded.code is ErrorCode.PARSE_ERROR
    assert int(decoded.code) == -32700
    assert decoded.id is None
    assert decoded.message.startswith("Parse error: ")
    assert len(decoded.message) > len("Parse error: ")


# ---------------------------------------------------------------------------
# decode: valid JSON that goes no further (lone surrogates, depth, batch size)
# ---------------------------------------------------------------------------

SURROGATE = "Invalid Request: a string holds the lone surrogate U+{}, which is not Unicode"
TOO_DEEP = f"Invalid Request: arrays and objects nested more than {MAX_DEPTH} deep"


def nested(depth: int) -> str:
    """Params that, inside the request object, make the message ``depth`` levels deep."""
    inner = "[" * (depth - 1) + "]" * (depth - 1)
    return f'{{"jsonrpc": "2.0", "method": "m", "params": {inner}, "id": 4}}'


@pytest.mark.parametrize(
    ("text", "message", "reply_id"),
    [
        pytest.param('{"jsonrpc": "2.0", "method": "m", "id": "\\ud800"}',
                     SURROGATE.format("D800"), None, id="in-the-id-which-is-not-echoed"),
        pytest.param('{"jsonrpc": "2.0", "method": "m\\udfff", "id": 1}',
                     SURROGATE.format("DFFF"), 1, id="in-the-method"),
        pytest.param('{"jsonrpc": "2.0", "method": "m", "params": {"text": "a\\ud800"}, "id": 2}',
                     SURROGATE.format("D800"), 2, id="in-params"),
        pytest.param('{"jsonrpc": "2.0", "method": "m", "params": {"\\udc00": 1}, "id": 2}',
                     SURROGATE.format("DC00"), 2, id="in-a-key"),
        pytest.param('{"jsonrpc": "2.0", "method": "m", "params": ["\\ude00\\ud83d"]}',
                     SURROGATE.format("DE00"), None, id="pair-in-the-wrong-order-notification"),
        pytest.param(nested(MAX_DEPTH + 1), TOO_DEEP, 4, id="one-level-too-deep"),
        pytest.param(nested(1000), TOO_DEEP, 4, id="a-thousand-deep"),
    ],
)
def test_decode_refuses_what_cannot_go_further(text: str, message: str,
                                                reply_id: Any) -> None:
    decoded = decode(text)
    assert isinstance(decoded, InvalidMessage)
    assert decoded.code is ErrorCode.INVALID_REQUEST
    assert decoded.message.startswith(message)
    assert decoded.id == reply_id
    dumps(encode_error(decoded.id, decoded.code, decoded.message))  # the answer encodes


def test_decode_takes_the_deepest_allowed_and_it_encodes_again() -> None:
    decoded = decode(nested(MAX_DEPTH))
    assert isinstance(decoded, Request)
    assert loads(dumps(encode_result(decoded.id, decoded.params)))["id"] == 4


def test_decode_screens_each_batch_element_alone() -> None:
    surrogate = '{"jsonrpc": "2.0", "method": "\\ud800"}'
    text = f"[{nested(MAX_DEPTH - 1)}, {nested(MAX_DEPTH)}, {surrogate}]"
    first, second, third = decode(text).items  # type: ignore[union-attr]
    assert isinstance(first, Request)
    assert second == InvalidMessage(ErrorCode.INVALID_REQUEST, TOO_DEEP, 4)  # deeper by the batch
    assert isinstance(third, InvalidMessage)
    assert third.message.startswith(SURROGATE.format("D800"))


@pytest.mark.parametrize("text", ['"\\ud800"', '{"a": ["\\udbff"]}', b'["x\\udfff"]'])
def test_loads_refuses_lone_surrogates(text: str | bytes) -> None:
    with pytest.raises(ValueError, match="lone surrogate"):
        loads(text)


@pytest.mark.parametrize(("size", "limit"), [(3, 2), (1001, 1000)])
def test_decode_refuses_a_batch_over_the_limit_whole(size: int, limit: int) -> None:
    text = "[" + ",".join(['{"jsonrpc": "2.0", "method": "m", "id": 1}'] * size) + "]"
    decoded = decode(text, limit)
    assert isinstance(decoded, InvalidMessage)
    assert (decoded.code, decoded.id) == (ErrorCode.INVALID_REQUEST, None)
    assert f"{size} requests" in decoded.message
    assert f"limit of {limit}" in decoded.message
    at_limit = decode(text, size)
    assert isinstance(at_limit, BatchReceived)
    assert len(at_limit.items) == size


# ---------------------------------------------------------------------------
# decode: batches (§6)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("[1]", (NOT_AN_OBJECT,), id="one-invalid"),
        pytest.param("[1,2,3]", (NOT_AN_OBJECT,) * 3, id="three-invalid"),
        pytest.param("[[]]", (NOT_AN_OBJECT,), id="nested-empty-array"),
        pytest.param('[null, "x"]', (NOT_AN_OBJECT,) * 2, id="null-and-string"),
        pytest.param(
            '[{"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},'
            ' {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}]',
            (
                Request("notify_sum", [1, 2, 4], None, True),
                Request("notify_hello", [7], None, True),
            ),
            id="all-notifications",
        ),
        pytest.param(
            """[
                {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
                {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
                {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
                {"foo": "boo"},
                {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
                {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
            ]""",
            (
                Request("sum", [1, 2, 4], "1", False),
                Request("notify_hello", [7], None, True),
                Request("subtract", [42, 23], "2", False),
                InvalidMessage(ErrorCode.INVALID_REQUEST, BAD_VERSION, None),
                Request("foo.get", {"name": "myself"}, "5", False),
                Request("get_data", None, "9", False),
            ),
            id="spec-mixed",
        ),
        pytest.param(
            '[{"jsonrpc": "2.0", "method": "a", "id": true},'
            ' {"jsonrpc": "2.0", "method": 5, "id": 8}]',
            (
                InvalidMessage(ErrorCode.INVALID_REQUEST, BAD_ID, None),
                InvalidMessage(ErrorCode.INVALID_REQUEST, BAD_METHOD, 8),
            ),
            id="invalid-elements-keep-valid-ids",
        ),
    ],
)
def test_decode_batch(text: str, expected: tuple[Request | InvalidMessage, ...]) -> None:
    assert decode(text) == BatchReceived(expected)


# ---------------------------------------------------------------------------
# loads / dumps
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(str(BIG), float(BIG), id="wide-positive"),
        pytest.param(str(BIG_NEGATIVE), float(BIG_NEGATIVE), id="below-int64"),
        pytest.param(str(2**64), float(2**64), id="two-to-the-64"),
        pytest.param(f"[{BIG}, 1.5, \"x\"]", [float(BIG), 1.5, "x"], id="mixed-array"),
        pytest.param(f'{{"n": {-BIG}}}'.encode(), {"n": float(-BIG)}, id="bytes-wide-negative"),
        pytest.param('"\\ud83d\\ude00"', "\U0001f600", id="escaped-surrogate-pair"),
        pytest.param(str(2**64 - 1), 2**64 - 1, id="uint64-max"),
        pytest.param(str(-(2**63)), -(2**63), id="int64-min"),
        pytest.param('"12345678901234567890123"', "12345678901234567890123",
                     id="long-digits-in-string"),
        pytest.param("0.1234567890123456789", 0.1234567890123456789, id="long-fraction"),
        pytest.param('{"a": [1, {"b": null}]}', {"a": [1, {"b": None}]}, id="nested"),
        pytest.param('"\\u00e9"', "é", id="escape"),
    ],
)
def test_loads(text: str | bytes, expected: Any) -> None:
    value = loads(text)
    assert value == expected
    assert type(value) is type(expected)


def test_loads_wide_integer_is_a_double_as_rfc8259_allows() -> None:
    value = loads(str(BIG))
    assert isinstance(value, float)
    assert value == float(BIG)


@pytest.mark.parametrize(
    "text", ["NaN", "Infinity", "-Infinity", "[NaN]", f"[{BIG}, NaN]", "{", ""]
)
def test_loads_refuses(text: str) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        loads(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param({"a": 1}, b'{"a":1}', id="object"),
        pytest.param([1, "é", None, True], '[1,"é",null,true]'.encode(), id="array"),
        pytest.param(BIG, str(BIG).encode(), id="wide-int"),
        pytest.param({"id": BIG_NEGATIVE}, b'{"id": -9223372036854775809}', id="wide-negative"),
        pytest.param([2**64, "é"], '[18446744073709551616, "é"]'.encode(), id="wide-utf8"),
        pytest.param(2**63 - 1, b"9223372036854775807", id="int64-max"),
    ],
)
def test_dumps(value: Any, expected: bytes) -> None:
    assert dumps(value) == expected


def _circular() -> list[Any]:
    value: list[Any] = []
    value.append(value)
    return value


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(object(), id="object"),
        pytest.param({1j}, id="set"),
        pytest.param([BIG, float("nan")], id="nan-beside-wide-int"),
        pytest.param({"n": BIG, "x": float("inf")}, id="inf-beside-wide-int"),
        pytest.param(_circular(), id="circular"),
    ],
)
def test_dumps_refuses_with_type_error(value: Any) -> None:
    with pytest.raises(TypeError):
        dumps(value)


# ---------------------------------------------------------------------------
# encoders (§4, §4.1, §5, §5.1)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param((1, -32601, "Method not found"),
                     {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"},
                      "id": 1},
                     id="no-data"),
        pytest.param((None, -32700, "Parse error", None),
                     {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"},
                      "id": None},
                     id="explicit-none-data-null-id"),
        pytest.param(("a", 7, "Boom", {"k": 1}),
                     {"jsonrpc": "2.0", "error": {"code": 7, "message": "Boom", "data": {"k": 1}},
                      "id": "a"},
                     id="with-data"),
        pytest.param((2, -32000, "x", 0),
                     {"jsonrpc": "2.0", "error": {"code": -32000, "message": "x", "data": 0},
                      "id": 2},
                     id="falsy-data-kept"),
        pytest.param((3, -32000, "x", ""),
                     {"jsonrpc": "2.0", "error": {"code": -32000, "message": "x", "data": ""},
                      "id": 3},
                     id="empty-string-data-kept"),
    ],
)
def test_encode_error(args: tuple[Any, ...], expected: dict[str, Any]) -> None:
    encoded = encode_error(*args)
    assert encoded == expected
    assert json.loads(dumps(encoded)) == expected


def test_encode_error_accepts_error_code_enum() -> None:
    encoded = encode_error(1, ErrorCode.INVALID_PARAMS, "Invalid params")
    assert dumps(encoded) == (
        b'{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params"},"id":1}'
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param((-32600, "Invalid Request"), {"code": -32600, "message": "Invalid Request"},
                     id="no-data"),
        pytest.param((1, "m", [1]), {"code": 1, "message": "m", "data": [1]}, id="data"),
        pytest.param((1, "m", False), {"code": 1, "message": "m", "data": False}, id="false"),
    ],
)
def test_error_object(args: tuple[Any, ...], expected: dict[str, Any]) -> None:
    assert error_object(*args) == expected


@pytest.mark.parametrize(
    ("request_id", "result", "expected"),
    [
        pytest.param(1, 19, {"jsonrpc": "2.0", "result": 19, "id": 1}, id="int"),
        pytest.param("x", None, {"jsonrpc": "2.0", "result": None, "id": "x"}, id="null-result"),
        pytest.param(None, [1], {"jsonrpc": "2.0", "result": [1], "id": None}, id="null-id"),
    ],
)
def test_encode_result(request_id: Any, result: Any, expected: dict[str, Any]) -> None:
    assert encode_result(request_id, result) == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(("room.joined",), {"jsonrpc": "2.0", "method": "room.joined"},
                     id="no-params"),
        pytest.param(("tick", None), {"jsonrpc": "2.0", "method": "tick"}, id="none-params"),
        pytest.param(("tick", [1, 2]), {"jsonrpc": "2.0", "method": "tick", "params": [1, 2]},
                     id="array"),
        pytest.param(("tick", {"n": 1}), {"jsonrpc": "2.0", "method": "tick", "params": {"n": 1}},
                     id="object"),
        pytest.param(("tick", []), {"jsonrpc": "2.0", "method": "tick", "params": []},
                     id="empty-array-kept"),
    ],
)
def test_encode_notification(args: tuple[Any, ...], expected: dict[str, Any]) -> None:
    encoded = encode_notification(*args)
    assert encoded == expected
    # What the gateway pushes decodes back as a notification.
    decoded = decode(dumps(encoded))
    assert isinstance(decoded, Request)
    assert decoded.is_notification is True
    assert decoded.method == args[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(("subtract", [42, 23], 1),
                     {"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1},
                     id="list"),
        pytest.param(("subtract", (42, 23), "a"),
                     {"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": "a"},
                     id="tuple-becomes-list"),
        pytest.param(("m", {"k": 1}, None),
                     {"jsonrpc": "2.0", "method": "m", "params": {"k": 1}, "id": None},
                     id="object-null-id"),
        pytest.param(("m", None, 5), {"jsonrpc": "2.0", "method": "m", "id": 5}, id="no-params"),
    ],
)
def test_encode_request(args: tuple[Any, ...], expected: dict[str, Any]) -> None:
    encoded = encode_request(*args)
    assert encoded == expected
    decoded = decode(dumps(encoded))
    assert decoded == Request(expected["method"], expected.get("params"), expected["id"], False)
