"""Error classification: every close code, every refusal, every error code."""

from __future__ import annotations

from typing import Any

import pytest
from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus
from websockets.http11 import Response

import rtctl.client
from rtctl.client.errors import (
    DEFAULT_RETRYABLE_CODES,
    AuthRefused,
    CallTimeout,
    ClientError,
    ErrorKind,
    Kicked,
    ProtocolError,
    ServerError,
    TransportError,
    check_retryable_codes,
    classify_close,
    classify_status,
    refusal,
    refusal_body,
    server_error,
)
from rtctl.client.oneshot import CallFailed
from rtctl.exceptions import AuthError, ConfigError, RpcError
from rtctl.protocol.codes import CloseCode, ErrorCode

T, A, P, S = ErrorKind.TRANSPORT, ErrorKind.AUTH, ErrorKind.PROTOCOL, ErrorKind.SERVER

CLOSES: dict[int, tuple[ErrorKind, bool, type[BaseException]]] = {
    CloseCode.NORMAL: (T, True, TransportError),
    CloseCode.GOING_AWAY: (T, True, TransportError),
    CloseCode.PROTOCOL_ERROR: (P, True, ProtocolError),
    CloseCode.UNSUPPORTED_DATA: (P, True, ProtocolError),
    CloseCode.NO_STATUS: (T, True, TransportError),
    CloseCode.ABNORMAL_CLOSURE: (T, True, TransportError),
    CloseCode.INVALID_PAYLOAD: (P, True, ProtocolError),
    CloseCode.MESSAGE_TOO_BIG: (P, True, ProtocolError),
    CloseCode.INTERNAL_ERROR: (T, True, TransportError),
    CloseCode.TRY_AGAIN_LATER: (T, True, TransportError),
    CloseCode.TOKEN_EXPIRED: (A, False, AuthRefused),
    CloseCode.KICKED: (S, False, Kicked),
    CloseCode.SLOW_CONSUMER: (T, True, TransportError),
    CloseCode.SESSION_RESUMED: (S, False, ClientError),  # another connection has the session
    1012: (T, True, TransportError),  # service restart, not one of ours
    4321: (S, False, ClientError),  # a game's private code
}


def test_every_close_code_is_classified() -> None:
    assert set(CloseCode) <= set(CLOSES)


@pytest.mark.parametrize(("code", "expected"), list(CLOSES.items()))
def test_close_codes(code: int, expected: tuple[ErrorKind, bool, type]) -> None:
    verdict = classify_close(code, "why")
    assert (verdict.kind, verdict.reconnect) == expected[:2]
    assert type(verdict.error) is expected[2]
    assert f"closed with {code} (why)" in str(verdict.error)


def test_token_expiry_close_is_an_expired_auth_error() -> None:
    error = classify_close(CloseCode.TOKEN_EXPIRED, "token expired").error
    assert isinstance(error, AuthRefused)
    assert error.reason == "expired"


@pytest.mark.parametrize(("status", "kind", "reconnect", "error"), [
    (401, A, False, AuthRefused),
    (404, P, False, ProtocolError),
    (400, P, False, ProtocolError),
    (429, T, True, TransportError),
    (503, T, True, TransportError),
    (502, T, True, TransportError),
])
def test_refused_upgrades(status: int, kind: ErrorKind, reconnect: bool, error: type) -> None:
    verdict = classify_status(status, {"error": "x", "reason": "expired", "detail": "d"})
    assert (verdict.kind, verdict.reconnect, type(verdict.error)) == (kind, reconnect, error)


def test_401_carries_the_reason_word() -> None:
    error = classify_status(401, {"error": "unauthorized", "reason": "bad_signature",
                                  "detail": "no match"}).error
    assert isinstance(error, AuthRefused)
    assert (error.reason, error.detail) == ("bad_signature", "no match")
    bare = classify_status(401, {}).error
    assert isinstance(bare, AuthRefused)
    assert bare.reason == "unauthorized"


@pytest.mark.parametrize(("body", "expected"), [
    (b'{"error": "draining", "detail": "bye"}', {"error": "draining", "detail": "bye"}),
    (b"<html>oops</html>", {}),
    (b"[1]", {}),
    (b"", {}),
])
def test_refusal_reads_the_json_body(body: bytes, expected: dict[str, Any]) -> None:
    assert refusal_body(body) == expected
    exc = InvalidStatus(Response(503, "Service Unavailable", Headers(), body))
    assert refusal(exc) == (503, expected)


@pytest.mark.parametrize(("error", "retryable_codes", "code", "retryable"), [
    ({"code": -32601, "message": "Method not found"}, frozenset(), -32601, False),
    ({"code": 4999, "message": "busy"}, frozenset({4999}), 4999, True),
    ({"code": -32050, "message": "Redis is down"}, DEFAULT_RETRYABLE_CODES, -32050, True),
    ({"code": -32029, "message": "Rate limited"}, DEFAULT_RETRYABLE_CODES, -32029, True),
    ({"code": 4998, "message": "no"}, frozenset({4999}), 4998, False),
    ({"code": True, "message": "odd"}, frozenset(), 0, False),
    ("not an object", frozenset(), 0, False),
])
def test_server_errors(error: Any, retryable_codes: frozenset[int], code: int,
                       retryable: bool) -> None:
    exc = server_error(error, retryable_codes)
    assert isinstance(exc, RpcError)
    assert (exc.code, exc.retryable) == (code, retryable)


def test_rate_limited_is_retryable_after_the_wait_the_gateway_names() -> None:
    error = {"code": -32029, "message": "Rate limited: over 50 calls/s; retry in 20 ms",
             "data": {"retry_after_ms": 20}}
    exc = server_error(error, DEFAULT_RETRYABLE_CODES)
    assert (exc.code, exc.retryable, exc.retry_after) == (ErrorCode.RATE_LIMITED, True, 0.02)
    assert exc.data == {"retry_after_ms": 20}


@pytest.mark.parametrize(("data", "retry_after"), [
    ({"retry_after_ms": 1500}, 1.5),
    ({"retry_after_ms": 2.5}, 0.0025),
    ({"retry_after_ms": 10**12}, 60.0),  # a hostile gateway does not park a retry for ages
    ({"retry_after_ms": float("inf")}, 60.0),
    ({"retry_after_ms": float("nan")}, 0.0),
    ({"retry_after_ms": -5}, 0.0),
    ({"retry_after_ms": 0}, 0.0),
    ({"retry_after_ms": "20"}, 0.0),
    ({"retry_after_ms": True}, 0.0),
    ({}, 0.0),
    ([20], 0.0),
    (None, 0.0),
])
def test_retry_after_is_read_only_from_a_sane_retry_after_ms(data: Any,
                                                             retry_after: float) -> None:
    error = {"code": -32029, "message": "Rate limited", "data": data}
    assert server_error(error, DEFAULT_RETRYABLE_CODES).retry_after == retry_after


def test_request_errors_can_never_be_made_retryable() -> None:
    assert check_retryable_codes([4999]) == frozenset({4999})
    for code in (ErrorCode.PARSE_ERROR, ErrorCode.INVALID_REQUEST,
                 ErrorCode.METHOD_NOT_FOUND, ErrorCode.INVALID_PARAMS):
        with pytest.raises(ConfigError, match="never retry"):
            check_retryable_codes([4999, code])


def test_the_tree_says_what_is_retryable() -> None:
    assert TransportError.retryable
    assert not ProtocolError.retryable
    timeout = CallTimeout("late", sent=False)
    assert isinstance(timeout, TimeoutError)
    assert timeout.retryable
    assert not timeout.sent
    assert ServerError(1, "m", retryable=True).retryable
    assert not ServerError(1, "m").retryable


def test_every_client_exception_has_one_root() -> None:
    """``except ClientError`` catches whatever the client raises (the tree in errors.py)."""
    raised = [value for name in rtctl.client.__all__
              if isinstance(value := getattr(rtctl.client, name), type)
              and issubclass(value, BaseException)]
    assert AuthRefused in raised
    for error in [*raised, CallFailed]:
        assert issubclass(error, ClientError), error
    assert issubclass(AuthRefused, AuthError)  # ``except AuthError`` keeps working
    refused = AuthRefused("expired", "the token expired")
    assert (refused.reason, refused.detail, refused.retryable) == ("expired", "the token expired",
                                                                    False)
