"""Hypothesis over the JSON-RPC codec: whatever arrives, an event or a proper error, no raise."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtctl.protocol import jsonrpc
from rtctl.protocol.jsonrpc import BatchReceived, InvalidMessage, Request
from tests.fuzz.strategies import (
    DOCUMENTED_ERRORS,
    FUZZ,
    json_text,
    json_values,
    requests,
    unicode_values,
)


def _answerable(item: Request | InvalidMessage) -> None:
    """Whatever the decoder lets through can be answered: it encodes as UTF-8 JSON."""
    if isinstance(item, Request):
        jsonrpc.dumps(jsonrpc.encode_request(item.method, item.params, item.id))
        jsonrpc.dumps(jsonrpc.encode_result(item.id, item.params))  # as sys.echo would
    else:
        assert int(item.code) in DOCUMENTED_ERRORS
        jsonrpc.dumps(jsonrpc.encode_error(item.id, item.code, item.message))


@FUZZ
@given(st.one_of(json_text, st.text(), st.binary()), st.none() | st.integers(1, 4))
def test_decode_yields_an_event_or_a_proper_error(text: str | bytes,
                                                  max_batch: int | None) -> None:
    decoded = jsonrpc.decode(text, max_batch)
    items = decoded.items if isinstance(decoded, BatchReceived) else (decoded,)
    assert items
    for item in items:
        _answerable(item)


@FUZZ
@given(requests, st.booleans())
def test_encode_then_decode_is_the_request_again(
    request: tuple[str, Any, jsonrpc.RequestId], notification: bool,
) -> None:
    method, params, request_id = request
    message = jsonrpc.encode_request(method, params, request_id)
    if notification:
        del message["id"]
    decoded = jsonrpc.decode(jsonrpc.dumps(message))
    assert decoded == Request(method, params, None if notification else request_id, notification)


@FUZZ
@given(unicode_values)
def test_loads_of_dumps_is_the_value_again(value: Any) -> None:
    assert jsonrpc.loads(jsonrpc.dumps(value)) == value


@FUZZ
@given(json_values)
def test_loads_gives_the_value_or_refuses_a_lone_surrogate(value: Any) -> None:
    text = json.dumps(value, ensure_ascii=True)
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:  # a lone surrogate somewhere: refused, and said why
        with pytest.raises(ValueError, match="lone surrogate"):
            jsonrpc.loads(text)
        return
    assert jsonrpc.loads(text) == value
