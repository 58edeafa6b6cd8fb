"""Tests for rtctl.router: registration, binding, type checks, context injection and errors."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
from collections.abc import Awaitable, Coroutine
from typing import Annotated, Any, Literal, Optional, Union

import pytest

from rtctl.exceptions import ErrorDecl, RpcError
from rtctl.params import Schema
from rtctl.protocol.codes import ErrorCode
from rtctl.protocol.jsonrpc import Request
from rtctl.router import CallContext, Reply, Router

CTX = CallContext(connection_id="conn-1", user="alice", claims={"role": "admin"},
                  remote_address="127.0.0.1")


def _request(method: str, params: Any = None, request_id: Any = 1) -> Request:
    return Request(method, params, request_id, False)


def _notification(method: str, params: Any = None) -> Request:
    return Request(method, params, None, True)


def _sync(reply: Reply | Awaitable[Reply]) -> Reply:
    assert not inspect.isawaitable(reply), "expected the synchronous fast path"
    return reply


def _result(value: Any, request_id: Any = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "result": value, "id": request_id}


def _error(code: int, message: str, request_id: Any = 1, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "error": error, "id": request_id}


def _invalid(message: str, request_id: Any = 1) -> dict[str, Any]:
    return _error(-32602, f"Invalid params: {message}", request_id)


@dataclasses.dataclass
class Point:
    x: int
    y: int


# ---------------------------------------------------------------------------
# Registration
# ---------------------------------------------------------------------------


def test_decorator_registers_under_given_name_and_returns_function() -> None:
    router = Router()

    def subtract(minuend: int, subtrahend: int) -> int:
        return minuend - subtrahend

    decorated = router.method("math.subtract")(subtract)
    assert decorated is subtract
    assert router.methods == ["math.subtract"]
    assert "math.subtract" in router
    assert "subtract" not in router


def test_decorator_name_defaults_to_function_name() -> None:
    router = Router()

    @router.method()
    def ping() -> str:
        return "pong"

    assert router.methods == ["ping"]
    assert _sync(router.handle(_request("ping"), CTX)) == _result("pong")


def test_add_method_name_defaults_and_methods_sorted() -> None:
    router = Router()

    def zeta() -> int:
        return 1

    def alpha() -> int:
        return 2

    router.add_method(zeta)
    router.add_method(alpha)
    router.add_method(alpha, name="b.alpha")
    assert router.methods == ["alpha", "b.alpha", "zeta"]
    assert 42 not in router
    assert _sync(router.handle(_request("b.alpha"), CTX)) == _result(2)


@pytest.mark.parametrize("name", ["rpc.discover", "rpc.", "rpc.x.y"])
def test_reserved_names_raise(name: str) -> None:
    router = Router()
    with pytest.raises(ValueError, match=r"reserved by JSON-RPC 2\.0"):
        router.add_method(lambda: None, name=name)
    with pytest.raises(ValueError, match=r"reserved"):
        router.method(name)(lambda: None)
    assert router.methods == []


@pytest.mark.parametrize("name", ["rpcfoo", "rpc", "x.rpc.y"])
def test_names_merely_containing_rpc_are_allowed(name: str) -> None:
    router = Router()
    router.add_method(lambda: 1, name=name)
    assert router.methods == [name]


def test_duplicate_name_raises() -> None:
    router = Router()
    router.add_method(lambda: 1, name="dup")
    with pytest.raises(ValueError, match=r"method 'dup' is registered twice"):
        router.add_method(lambda: 2, name="dup")
    assert _sync(router.handle(_request("dup"), CTX)) == _result(1)


def test_include_merges() -> None:
    game, system, top = Router(), Router(), Router()
    game.add_method(lambda: "g", name="game.move")
    system.add_method(lambda: "s", name="sys.ping")
    top.include(game)
    top.include(system)
    assert top.methods == ["game.move", "sys.ping"]
    assert _sync(top.handle(_request("game.move"), CTX)) == _result("g")
    assert _sync(top.handle(_request("sys.ping"), CTX)) == _result("s")
    # The included router is left as it was.
    assert game.methods == ["game.move"]


def test_include_detects_clash() -> None:
    first, second = Router(), Router()
    first.add_method(lambda: 1, name="same")
    second.add_method(lambda: 2, name="same")
    with pytest.raises(ValueError, match=r"method 'same' is registered twice"):
        first.include(second)
    assert _sync(first.handle(_request("same"), CTX)) == _result(1)


# ---------------------------------------------------------------------------
# Binding: the spec's subtract examples (§4.2) and Python's own rules
# ---------------------------------------------------------------------------


def _subtract_router() -> Router:
    router = Router()

    @router.method()
    def subtract(minuend: int, subtrahend: int) -> int:
        return minuend - subtrahend

    return router


@pytest.mark.parametrize(
    ("params", "request_id", "expected"),
    [
        pytest.param([42, 23], 1, 19, id="positional"),
        pytest.param([23, 42], 2, -19, id="positional-reversed"),
        pytest.param({"subtrahend": 23, "minuend": 42}, 3, 19, id="named"),
        pytest.param({"minuend": 42, "subtrahend": 23}, 4, 19, id="named-other-order"),
        pytest.param({"minuend": 42, "subtrahend": 23}, "four", 19, id="string-id"),
        pytest.param([42, 23], None, 19, id="null-id-still-answered"),
    ],
)
def test_subtract(params: Any, request_id: Any, expected: int) -> None:
    reply = _sync(_subtract_router().handle(_request("subtract", params, request_id), CTX))
    assert reply == _result(expected, request_id)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        pytest.param([42], "missing a required argument: 'subtrahend'", id="missing-positional"),
        pytest.param({"minuend": 42}, "missing a required argument: 'subtrahend'",
                     id="missing-named"),
        pytest.param(None, "missing a required argument: 'minuend'", id="no-params"),
        pytest.param([], "missing a required argument: 'minuend'", id="empty-array"),
        pytest.param([1, 2, 3], "too many positional arguments", id="extra-positional"),
        pytest.param({"minuend": 1, "subtrahend": 2, "extra": 3},
                     "got an unexpected keyword argument 'extra'", id="unexpected-keyword"),
        pytest.param({"minuend": "42", "subtrahend": 23},
                     "'minuend' must be integer, got string", id="wrong-type-named"),
        pytest.param([42, 2.5], "'subtrahend' must be integer, got number", id="wrong-type-pos"),
    ],
)
def test_subtract_invalid_params(params: Any, message: str) -> None:
    reply = _sync(_subtract_router().handle(_request("subtract", params, 7), CTX))
    assert reply == _invalid(message, 7)


def _varargs_router() -> Router:
    router = Router()

    @router.method()
    def total(first: int, *rest: int) -> int:
        return first + sum(rest)

    @router.method()
    def collect(**options: Any) -> dict[str, Any]:
        return options

    @router.method()
    def scored(**scores: int) -> int:
        return sum(scores.values())

    @router.method()
    def mixed(a: int, *args: Any, b: int = 10, **kwargs: Any) -> list[Any]:
        return [a, list(args), b, kwargs]

    @router.method()
    def defaults(a: int, b: str = "x") -> list[Any]:
        return [a, b]

    @router.method()
    def positional_only(a: int, /) -> int:
        return a

    @router.method()
    def keyword_only(*, a: int) -> int:
        return a

    @router.method()
    def nothing() -> str:
        return "ok"

    return router


@pytest.mark.parametrize(
    ("method", "params", "expected"),
    [
        pytest.param("total", [1], 1, id="args-none"),
        pytest.param("total", [1, 2, 3, 4], 10, id="args-many"),
        pytest.param("total", {"first": 5}, 5, id="args-named-first"),
        pytest.param("collect", {"a": 1, "b": [2]}, {"a": 1, "b": [2]}, id="kwargs"),
        pytest.param("collect", None, {}, id="kwargs-empty"),
        pytest.param("collect", {}, {}, id="kwargs-empty-object"),
        pytest.param("scored", {"x": 1, "y": 2}, 3, id="typed-kwargs"),
        pytest.param("mixed", [1, 2, 3], [1, [2, 3], 10, {}], id="mixed-positional"),
        pytest.param("mixed", {"a": 1, "b": 2, "c": 3}, [1, [], 2, {"c": 3}], id="mixed-named"),
        pytest.param("defaults", [1], [1, "x"], id="default-used"),
        pytest.param("defaults", {"a": 1, "b": "y"}, [1, "y"], id="default-overridden"),
        pytest.param("positional_only", [7], 7, id="positional-only"),
        pytest.param("keyword_only", {"a": 8}, 8, id="keyword-only"),
        pytest.param("nothing", None, "ok", id="no-params"),
        pytest.param("nothing", [], "ok", id="empty-array"),
        pytest.param("nothing", {}, "ok", id="empty-object"),
    ],
)
def test_varargs_binding(method: str, params: Any, expected: Any) -> None:
    assert _sync(_varargs_router().handle(_request(method, params), CTX)) == _result(expected)


@pytest.mark.parametrize(
    ("method", "params", "message"),
    [
        pytest.param("total", [1, 2, "3"], "'rest[1]' must be integer, got string",
                     id="args-element"),
        pytest.param("total", [], "missing a required argument: 'first'", id="args-missing"),
        pytest.param("scored", {"x": 1, "y": "2"}, "'y' must be integer, got string",
                     id="kwargs-value"),
        pytest.param("scored", [1], "too many positional arguments", id="kwargs-only-array"),
        pytest.param("defaults", {"b": "y"}, "missing a required argument: 'a'",
                     id="missing-with-default"),
        pytest.param("defaults", [1, 2], "'b' must be string, got integer", id="default-type"),
        pytest.param("positional_only", {"a": 7},
                     "'a' parameter is positional only, but was passed as a keyword",
                     id="positional-only-by-name"),
        pytest.param("keyword_only", [8], "too many positional arguments",
                     id="keyword-only-by-position"),
        pytest.param("keyword_only", {}, "missing a required argument: 'a'",
                     id="keyword-only-missing"),
        pytest.param("nothing", [1], "too many positional arguments", id="nothing-extra"),
        pytest.param("nothing", {"x": 1}, "got an unexpected keyword argument 'x'",
                     id="nothing-unexpected"),
    ],
)
def test_varargs_invalid(method: str, params: Any, message: str) -> None:
    assert _sync(_varargs_router().handle(_request(method, params), CTX)) == _invalid(message)


# ---------------------------------------------------------------------------
# Annotated types
# ---------------------------------------------------------------------------


def _typed_router() -> Router:
    router = Router()

    def echo(value: Any) -> Any:
        return value

    annotations: dict[str, Any] = {
        "int": int,
        "float": float,
        "str": str,
        "bool": bool,
        "none": None,
        "nonetype": type(None),
        "list": list,
        "dict": dict,
        "list_int": list[int],
        "list_list_int": list[list[int]],
        "dict_str_int": dict[str, int],
        "optional": Optional[int],  # noqa: UP045 - the typing spelling is checked too
        "union": Union[int, str],  # noqa: UP007
        "pipe": int | None,
        "pipe_str_list": str | list[str],
        "literal": Literal[1, "one"],
        "literal_bool": Literal[True],
        "any": Any,
        "object": object,
        "unannotated": inspect.Parameter.empty,
    }
    for name, annotation in annotations.items():
        def handler(value: Any) -> Any:
            return value

        if annotation is inspect.Parameter.empty:
            del handler.__annotations__["value"]
        else:
            handler.__annotations__["value"] = annotation
        router.add_method(handler, name=name)
    router.add_method(echo, name="echo")
    return router


TYPED = _typed_router()

ACCEPTED = [
    ("int", 3), ("int", -5), ("int", 0), ("int", 2**70),
    ("float", 1.5), ("float", 2), ("float", 0), ("float", -0.25),
    ("str", "s"), ("str", ""),
    ("bool", True), ("bool", False),
    ("none", None), ("nonetype", None),
    ("list", []), ("list", [1, "a", None]),
    ("dict", {}), ("dict", {"a": [1]}),
    ("list_int", []), ("list_int", [1, 2, 3]),
    ("list_list_int", [[1], [], [2, 3]]),
    ("dict_str_int", {}), ("dict_str_int", {"a": 1, "b": 2}),
    ("optional", None), ("optional", 4),
    ("union", 1), ("union", "x"),
    ("pipe", None), ("pipe", 9),
    ("pipe_str_list", "a"), ("pipe_str_list", ["a", "b"]),
    ("literal", 1), ("literal", "one"),
    ("literal_bool", True),
    ("any", None), ("any", {"x": [True]}), ("any", 1.5),
    ("object", "anything"), ("object", [1]),
    ("unannotated", [1, {"a": None}]),
]


@pytest.mark.parametrize(("method", "value"), ACCEPTED)
@pytest.mark.parametrize("style", ["positional", "named"])
def test_annotation_accepts(method: str, value: Any, style: str) -> None:
    params = [value] if style == "positional" else {"value": value}
    reply = _sync(TYPED.handle(_request(method, params), CTX))
    assert reply == _result(value)
    assert reply is not None
    assert type(reply["result"]) is type(value)


REJECTED = [
    ("int", True, "'value' must be integer, got boolean"),
    ("int", False, "'value' must be integer, got boolean"),
    ("int", "1", "'value' must be integer, got string"),
    ("int", 1.0, "'value' must be integer, got number"),
    ("int", 1.5, "'value' must be integer, got number"),
    ("int", None, "'value' must be integer, got null"),
    ("int", [1], "'value' must be integer, got array"),
    ("int", {"a": 1}, "'value' must be integer, got object"),
    ("float", True, "'value' must be number, got boolean"),
    ("float", "1.5", "'value' must be number, got string"),
    ("float", None, "'value' must be number, got null"),
    ("str", 1, "'value' must be string, got integer"),
    ("str", None, "'value' must be string, got null"),
    ("str", ["a"], "'value' must be string, got array"),
    ("bool", 1, "'value' must be boolean, got integer"),
    ("bool", 0, "'value' must be boolean, got integer"),
    ("bool", "true", "'value' must be boolean, got string"),
    ("none", 0, "'value' must be null, got integer"),
    ("none", False, "'value' must be null, got boolean"),
    ("nonetype", "", "'value' must be null, got string"),
    ("list", {}, "'value' must be array, got object"),
    ("list", "abc", "'value' must be array, got string"),
    ("dict", [], "'value' must be object, got array"),
    ("list_int", {"a": 1}, "'value' must be array, got object"),
    ("list_int", [1, 2, "3"], "'value[2]' must be integer, got string"),
    ("list_int", [True], "'value[0]' must be integer, got boolean"),
    ("list_int", [1, None], "'value[1]' must be integer, got null"),
    ("list_list_int", [[1], [2, "x"]], "'value[1][1]' must be integer, got string"),
    ("list_list_int", [1], "'value[0]' must be array, got integer"),
    ("dict_str_int", [], "'value' must be object, got array"),
    ("dict_str_int", {"a": 1, "b": "2"}, "\"value['b']\" must be integer, got string"),
    ("dict_str_int", {"a": True}, "\"value['a']\" must be integer, got boolean"),
    ("optional", "4", "'value' must be integer or null, got string"),
    ("optional", 4.5, "'value' must be integer or null, got number"),
    ("union", None, "'value' must be integer or string, got null"),
    ("union", True, "'value' must be integer or string, got boolean"),
    ("pipe", "x", "'value' must be integer or null, got string"),
    ("pipe_str_list", ["a", 1], "'value' must be string or list, got array"),
    ("literal", True, "'value' must be one of 1, 'one'"),
    ("literal", 1.0, "'value' must be one of 1, 'one'"),
    ("literal", 2, "'value' must be one of 1, 'one'"),
    ("literal", "One", "'value' must be one of 1, 'one'"),
    ("literal_bool", 1, "'value' must be one of True"),
]


@pytest.mark.parametrize(("method", "value", "message"), REJECTED)
@pytest.mark.parametrize("style", ["positional", "named"])
def test_annotation_rejects(method: str, value: Any, message: str, style: str) -> None:
    params = [value] if style == "positional" else {"value": value}
    reply = _sync(TYPED.handle(_request(method, params, "r"), CTX))
    assert reply == _invalid(message, "r")


def test_list_error_names_parameter_and_index() -> None:
    router = Router()

    @router.method()
    def place(room: str, items: list[int]) -> int:
        return len(items)

    reply = _sync(router.handle(_request("place", ["lobby", [1, 2, "x"]]), CTX))
    assert reply == _invalid("'items[2]' must be integer, got string")
    reply = _sync(router.handle(_request("place", {"room": 5, "items": []}), CTX))
    assert reply == _invalid("'room' must be string, got integer")


def test_string_annotations_are_resolved() -> None:
    # This module uses ``from __future__ import annotations``: every hint is a string.
    router = Router()

    @router.method()
    def f(a: int, b: list[str]) -> None:
        return None

    assert _sync(router.handle(_request("f", [1, ["x"]]), CTX)) == _result(None)
    assert _sync(router.handle(_request("f", [1, [2]]), CTX)) == _invalid(
        "'b[0]' must be string, got integer")


@pytest.mark.parametrize(
    "annotation",
    [
        pytest.param(Point, id="dataclass"),
        pytest.param(tuple[int, int], id="tuple"),
        pytest.param(set[int], id="set"),
        pytest.param(bytes, id="bytes"),
        pytest.param(list[Point], id="list-of-dataclass"),
        pytest.param(Optional[Point], id="optional-dataclass"),  # noqa: UP045
    ],
)
def test_unsupported_annotation_raises_at_registration(annotation: Any) -> None:
    router = Router()

    def handler(value: Any) -> None:
        return None

    handler.__annotations__["value"] = annotation
    with pytest.raises(TypeError, match=r"rtctl cannot check parameters annotated"):
        router.add_method(handler, name="h")
    assert router.methods == []


def test_unsupported_annotation_via_decorator() -> None:
    router = Router()
    with pytest.raises(TypeError, match=r"cannot check parameters annotated .*Point"):
        @router.method()
        def move(to: Point) -> None:
            return None
    assert "move" not in router


# ---------------------------------------------------------------------------
# CallContext injection
# ---------------------------------------------------------------------------


def test_context_first_positional() -> None:
    router = Router()
    seen: list[Any] = []

    @router.method()
    def whoami(ctx: CallContext, greeting: str) -> str:
        seen.append(ctx)
        return f"{greeting} {ctx.user}"

    assert _sync(router.handle(_request("whoami", ["hi"]), CTX)) == _result("hi alice")
    assert _sync(router.handle(_request("whoami", {"greeting": "yo"}), CTX)) == _result(
        "yo alice")
    assert seen == [CTX, CTX]
    assert seen[0] is CTX
    # The context is not a param the client can send or must send.
    assert _sync(router.handle(_request("whoami", ["hi", "extra"]), CTX)) == _invalid(
        "too many positional arguments")
    assert _sync(router.handle(_request("whoami", {"ctx": 1, "greeting": "x"}), CTX)) == (
        _invalid("got an unexpected keyword argument 'ctx'"))


def test_context_keyword_only() -> None:
    router = Router()

    @router.method()
    def role(a: int, *, ctx: CallContext) -> list[Any]:
        return [a, ctx.claims["role"], ctx.connection_id]

    assert _sync(router.handle(_request("role", [1]), CTX)) == _result([1, "admin", "conn-1"])
    assert _sync(router.handle(_request("role", {"a": 2}), CTX)) == _result(
        [2, "admin", "conn-1"])


def test_context_only_parameter() -> None:
    router = Router()

    @router.method()
    def me(ctx: CallContext) -> str:
        return ctx.user

    assert _sync(router.handle(_request("me"), CTX)) == _result("alice")
    assert _sync(router.handle(_request("me", [1]), CTX)) == _invalid(
        "too many positional arguments")


def test_context_with_varargs() -> None:
    router = Router()

    @router.method()
    def count(ctx: CallContext, *values: int) -> list[Any]:
        return [ctx.user, sum(values)]

    assert _sync(router.handle(_request("count", [1, 2, 3]), CTX)) == _result(["alice", 6])


def test_context_in_the_middle_raises() -> None:
    router = Router()

    def bad(a: int, ctx: CallContext) -> None:
        return None

    with pytest.raises(TypeError, match=r"bad: the CallContext parameter must come first "
                                        r"or be keyword-only"):
        router.add_method(bad)
    assert router.methods == []


def test_context_as_var_positional_raises() -> None:
    router = Router()

    def bad(a: int, *ctx: CallContext) -> None:
        return None

    with pytest.raises(TypeError, match=r"must come first"):
        router.add_method(bad)


def test_context_session_is_shared_mutable_state() -> None:
    router = Router()

    @router.method()
    def bump(ctx: CallContext) -> int:
        ctx.session["n"] = ctx.session.get("n", 0) + 1
        return int(ctx.session["n"])

    ctx = CallContext(connection_id="c", user="u", claims={}, remote_address=None)
    assert _sync(router.handle(_request("bump"), ctx)) == _result(1)
    assert _sync(router.handle(_request("bump"), ctx)) == _result(2)
    assert ctx.session == {"n": 2}


# ---------------------------------------------------------------------------
# raw_params
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        pytest.param([1, "two", None], id="list"),
        pytest.param({"a": 1, "b": [2]}, id="dict"),
        pytest.param(None, id="none"),
        pytest.param([], id="empty-list"),
        pytest.param({}, id="empty-dict"),
    ],
)
def test_raw_params(params: Any) -> None:
    router = Router()
    received: list[Any] = []

    @router.method("raw", raw_params=True)
    def raw(p: Any) -> str:
        received.append(p)
        return type(p).__name__

    @router.method("raw.ctx", raw_params=True)
    def raw_ctx(ctx: CallContext, p: Any) -> list[Any]:
        return [ctx.user, p]

    assert _sync(router.handle(_request("raw", params), CTX)) == _result(type(params).__name__)
    assert received == [params]
    assert received[0] is params
    assert _sync(router.handle(_request("raw.ctx", params), CTX)) == _result(["alice", params])


def test_raw_params_via_add_method_skips_checks() -> None:
    router = Router()

    def handler(params: Any) -> Any:
        return params

    router.add_method(handler, name="r", raw_params=True)
    assert _sync(router.handle(_request("r", ["x", 1, 2]), CTX)) == _result(["x", 1, 2])


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "expected_error"),
    [
        pytest.param(RpcError(-32003, "Forbidden"), {"code": -32003, "message": "Forbidden"},
                     id="no-data"),
        pytest.param(RpcError(-32029, "Too many calls", {"retry_after_ms": 250}),
                     {"code": -32029, "message": "Too many calls",
                      "data": {"retry_after_ms": 250}},
                     id="with-data"),
        pytest.param(RpcError(42, "Game over", [1, 2]),
                     {"code": 42, "message": "Game over", "data": [1, 2]}, id="game-code"),
    ],
)
def test_handler_rpc_error(exc: RpcError, expected_error: dict[str, Any]) -> None:
    router = Router()

    @router.method()
    def fail() -> None:
        raise exc

    reply = _sync(router.handle(_request("fail", None, "q"), CTX))
    assert reply == {"jsonrpc": "2.0", "error": expected_error, "id": "q"}
    assert reply is not None
    assert type(reply["error"]["code"]) is int


def _assert_internal_error(reply: Reply, request_id: Any, caplog: pytest.LogCaptureFixture,
                           secret: str) -> None:
    assert reply is not None
    assert set(reply) == {"jsonrpc", "error", "id"}
    assert reply["jsonrpc"] == "2.0"
    assert reply["id"] == request_id
    error = reply["error"]
    assert error["code"] == -32603
    assert error["message"] == "Internal error"
    assert set(error["data"]) == {"correlation_id"}
    correlation_id = error["data"]["correlation_id"]
    assert isinstance(correlation_id, str)
    assert len(correlation_id) == 16
    assert secret not in repr(reply)
    records = [r for r in caplog.records if r.name == "rtctl.router"]
    assert len(records) == 1
    record = records[0]
    assert record.levelno == logging.ERROR
    assert correlation_id in record.getMessage()
    assert record.exc_info is not None
    assert record.exc_info[0] is ValueError
    assert secret in caplog.text  # the traceback is in the log
    assert "Traceback" in caplog.text


def test_handler_exception_is_internal_error(caplog: pytest.LogCaptureFixture) -> None:
    router = Router()
    secret = "db password is hunter2"

    @router.method()
    def explode() -> None:
        raise ValueError(secret)

    with caplog.at_level(logging.ERROR, logger="rtctl.router"):
        reply = _sync(router.handle(_request("explode", None, 11), CTX))
    _assert_internal_error(reply, 11, caplog, secret)
    assert "'explode'" in caplog.records[0].getMessage()


def test_correlation_ids_differ(caplog: pytest.LogCaptureFixture) -> None:
    router = Router()

    @router.method()
    def explode() -> None:
        raise ValueError("x")

    with caplog.at_level(logging.ERROR, logger="rtctl.router"):
        first = _sync(router.handle(_request("explode"), CTX))
        second = _sync(router.handle(_request("explode"), CTX))
    assert first is not None
    assert second is not None
    assert first["error"]["data"] != second["error"]["data"]


def test_async_handler_exception_is_internal_error(caplog: pytest.LogCaptureFixture) -> None:
    router = Router()
    secret = "async secret detail"

    @router.method()
    async def explode() -> None:
        raise ValueError(secret)

    with caplog.at_level(logging.ERROR, logger="rtctl.router"):
        pending = router.handle(_request("explode", None, "z"), CTX)
        assert inspect.isawaitable(pending)
        reply = asyncio.run(_await(pending))
    _assert_internal_error(reply, "z", caplog, secret)


async def _await(pending: Reply | Awaitable[Reply]) -> Reply:
    assert inspect.isawaitable(pending)
    return await pending


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        pytest.param("nope", _error(-32601, "Method not found: nope"), id="unknown"),
        pytest.param("rpc.foo", _error(-32601, "Method not found: rpc.foo (reserved name)"),
                     id="reserved"),
        pytest.param("Subtract", _error(-32601, "Method not found: Subtract"),
                     id="case-sensitive"),
        pytest.param("", _error(-32601, "Method not found: "), id="empty"),
    ],
)
def test_method_not_found(method: str, expected: dict[str, Any]) -> None:
    assert _sync(_subtract_router().handle(_request(method), CTX)) == expected


def test_reserved_reply_mentions_reserved() -> None:
    reply = _sync(Router().handle(_request("rpc.foo"), CTX))
    assert reply is not None
    assert reply["error"]["code"] == -32601
    assert "reserved" in reply["error"]["message"]


# ---------------------------------------------------------------------------
# Notifications (§4.1): never answered
# ---------------------------------------------------------------------------


def _notification_router(calls: list[str]) -> Router:
    router = Router()

    @router.method()
    def ok(x: int) -> int:
        calls.append(f"ok {x}")
        return x

    @router.method()
    def boom() -> None:
        calls.append("boom")
        raise ValueError("boom")

    @router.method()
    def refuse() -> None:
        calls.append("refuse")
        raise RpcError(-32003, "Forbidden")

    return router


@pytest.mark.parametrize(
    ("method", "params", "calls", "code"),
    [
        pytest.param("ok", [1], ["ok 1"], None, id="success"),
        pytest.param("boom", None, ["boom"], -32603, id="handler-fails"),
        pytest.param("refuse", None, ["refuse"], -32003, id="rpc-error"),
        pytest.param("missing", None, [], -32601, id="method-missing"),
        pytest.param("rpc.missing", None, [], -32601, id="reserved"),
        pytest.param("ok", ["x"], [], -32602, id="invalid-params"),
        pytest.param("ok", [1, 2], [], -32602, id="too-many-params"),
    ],
)
def test_a_notification_returns_only_its_error(method: str, params: Any, calls: list[str],
                                               code: int | None,
                                               caplog: pytest.LogCaptureFixture) -> None:
    """A success is None; a failure is its error, for the gateway to count (never to send)."""
    made: list[str] = []
    router = _notification_router(made)
    with caplog.at_level(logging.ERROR, logger="rtctl.router"):
        reply = router.handle(_notification(method, params), CTX)
    assert made == calls
    assert (None if reply is None else reply["error"]["code"]) == code
    # A failing notification is still logged so it can be found.
    logged = [r for r in caplog.records if r.name == "rtctl.router"]
    assert len(logged) == (1 if method == "boom" else 0)


@pytest.mark.parametrize(
    ("fails", "expected_calls"),
    [(False, ["ran"]), (True, ["ran"])],
)
def test_async_notification_resolves_to_none_or_its_error(
    fails: bool, expected_calls: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    router = Router()
    calls: list[str] = []

    @router.method()
    async def event() -> int:
        calls.append("ran")
        if fails:
            raise ValueError("nope")
        return 1

    with caplog.at_level(logging.ERROR, logger="rtctl.router"):
        reply = asyncio.run(_await(router.handle(_notification("event"), CTX)))
    assert (None if reply is None else reply["error"]["code"]) == (-32603 if fails else None)
    assert calls == expected_calls
    assert len([r for r in caplog.records if r.name == "rtctl.router"]) == int(fails)


# ---------------------------------------------------------------------------
# Async handlers
# ---------------------------------------------------------------------------


def test_async_handler_returns_awaitable_reply() -> None:
    router = Router()
    calls: list[Any] = []

    @router.method()
    async def add(ctx: CallContext, a: int, b: int) -> int:
        calls.append(ctx.user)
        await asyncio.sleep(0)
        return a + b

    pending = router.handle(_request("add", [2, 3], "s"), CTX)
    assert inspect.isawaitable(pending)
    assert calls == []  # nothing ran until awaited
    assert asyncio.run(_await(pending)) == _result(5, "s")
    assert calls == ["alice"]


def test_async_handler_rpc_error() -> None:
    router = Router()

    @router.method()
    async def deny() -> None:
        raise RpcError(-32001, "Unauthorized", {"reason": "expired"})

    reply = asyncio.run(_await(router.handle(_request("deny"), CTX)))
    assert reply == _error(-32001, "Unauthorized", data={"reason": "expired"})


def test_async_handler_invalid_params_answered_at_once() -> None:
    router = Router()

    @router.method()
    async def add(a: int, b: int) -> int:
        return a + b

    reply = router.handle(_request("add", [1, "2"]), CTX)
    assert not inspect.isawaitable(reply)
    assert reply == _invalid("'b' must be integer, got string")


def test_sync_handler_returning_coroutine_is_awaited() -> None:
    router = Router()

    async def later(value: int) -> int:
        await asyncio.sleep(0)
        return value * 2

    @router.method()
    def deferred(value: int) -> Coroutine[Any, Any, int]:
        return later(value)

    pending = router.handle(_request("deferred", [21]), CTX)
    assert inspect.isawaitable(pending)
    assert asyncio.run(_await(pending)) == _result(42)


def test_sync_handler_returning_failing_coroutine(caplog: pytest.LogCaptureFixture) -> None:
    router = Router()

    async def later() -> None:
        raise ValueError("deferred secret")

    @router.method()
    def deferred() -> Coroutine[Any, Any, None]:
        return later()

    with caplog.at_level(logging.ERROR, logger="rtctl.router"):
        reply = asyncio.run(_await(router.handle(_request("deferred", None, 3), CTX)))
    _assert_internal_error(reply, 3, caplog, "deferred secret")


def test_sync_handler_result_is_not_awaitable() -> None:
    router = Router()

    @router.method()
    def plain() -> dict[str, int]:
        return {"a": 1}

    reply = router.handle(_request("plain"), CTX)
    assert not inspect.isawaitable(reply)
    assert reply == _result({"a": 1})


def test_bare_decorator_registers_under_the_function_name() -> None:
    router = Router()

    @router.method
    def greet(name: str) -> str:
        return f"hi {name}"

    assert router.methods == ["greet"]
    assert greet("x") == "hi x"


def test_declared_errors_are_rtctl_codes_or_the_game_own_sorted_once() -> None:
    router = Router()
    own = ErrorDecl(4100, "Not enough gold")
    codes: list[Any] = [ErrorCode.CONFLICT, own, -32009, own]  # a bare int, as JSON has it
    router.add_method(lambda: None, name="a", errors=codes)
    method = router.get("a")
    assert method is not None
    assert method.errors == (own, ErrorCode.CONFLICT)  # a known code's int is that member


@pytest.mark.parametrize(("error", "message"), [
    (-32042, "reserved -32768..-32000 but no rtctl ErrorCode"),
    (4100, r"ErrorDecl\(4100, 'its message'\)"),
    (ErrorDecl(-32009, "Conflict"), "outside -32768..-32000"),
    (ErrorDecl(True, "yes"), "outside -32768..-32000"),
    ("CONFLICT", "give an ErrorCode member"),
])
def test_an_undeclarable_error_is_refused_at_registration(error: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        Router().add_method(lambda: None, name="a", errors=[error])


def test_annotated_params_bind_as_their_type() -> None:
    router = Router()

    @router.method("a")
    def a(x: Annotated[int, Schema({"type": "integer", "minimum": 0})]) -> int:
        return x

    # The schema is for the description only; the type is checked as without it.
    assert _sync(router.handle(_request("a", [-1]), CTX)) == _result(-1)
    assert _sync(router.handle(_request("a", ["1"]), CTX)) == _invalid(
        "'x' must be integer, got string")
