"""The Router: how game code and built-in services offer JSON-RPC methods.

::

    from rtctl import CallContext, Router, RpcError

    router = Router()

    @router.method("subtract")
    def subtract(minuend: int, subtrahend: int) -> int:
        return minuend - subtrahend

    @router.method("room.kick")
    async def kick(ctx: CallContext, user: str) -> None:
        if ctx.claims.get("role") != "admin":
            raise RpcError(-32003, "Forbidden")

Params bind by Python's own rules (JSON-RPC 2.0 §4.2): an array binds to
positional parameters (``*args`` welcome), an object to keyword parameters.
Annotated parameters are checked against the JSON value; a mismatch, a missing
or an unexpected parameter is -32602 with a message that names it. A parameter
annotated :class:`CallContext` receives the caller's context instead of a
param. A handler's own exception is -32603 with a correlation id that finds
the traceback in the log; the traceback never reaches the client.
"""

from __future__ import annotations

import inspect
import logging
import typing
import uuid
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias

from rtctl.exceptions import DeclaredError, InvalidParams, MethodNotFound, RpcError, declared_errors
from rtctl.params import Checker, checker
from rtctl.protocol import jsonrpc
from rtctl.protocol.codes import ErrorCode
from rtctl.protocol.lanes import Lane, Policy

__all__ = ["CallContext", "Handler", "Method", "Notification", "Peer", "Reply", "Router"]

logger = logging.getLogger("rtctl.router")

Handler: TypeAlias = Callable[..., Any]
Reply: TypeAlias = dict[str, Any] | None


class Peer(Protocol):
    """What a handler or a service may know of, and do to, one live connection."""

    @property
    def id(self) -> str: ...

    @property
    def user(self) -> str: ...

    @property
    def connected_at(self) -> float: ...

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol negotiated at the upgrade (``rtctl.protocol.upgrade``)."""

    @property
    def resumed(self) -> bool:
        """True when this connection carries on an earlier one's session (same id)."""

    @property
    def close_code(self) -> int | None:
        """The code this gateway closed the connection with; None while it has not."""

    def notify(self, method: str, params: Any = None, *, lane: Lane = Lane.EVENTS,
               policy: Policy | None = None, key: Hashable | None = None) -> None:
        """Queue a notification to this connection in ``lane`` (never blocks).

        ``policy`` defaults to the lane's (:data:`~rtctl.protocol.lanes.DEFAULT_POLICIES`);
        a coalescible one needs a ``key``: a newer message with the same lane and key
        replaces it while it still waits.
        """

    def push(self, data: bytes, *, lane: Lane = Lane.EVENTS, policy: Policy | None = None,
             key: Hashable | None = None) -> None:
        """Queue an already encoded notification (encode once, push to many); as :meth:`notify`."""

    def push_binary(self, data: bytes, *, lane: Lane = Lane.STATE, policy: Policy | None = None,
                    key: Hashable | None = None) -> None:
        """Queue one binary message (``rtctl.protocol.frames``); never blocks.

        Only for a connection that ``takes_binary(subprotocol)``: any other
        could not read it (ValueError). Overflow closes 4008, as :meth:`push`.
        """

    def backlog(self, lane: Lane | None = None) -> int:
        """Bytes queued for this connection (in ``lane``, or in all) not yet written.

        A sender that coalesces (a slow peer gets one catch-up message later
        rather than one per tick) skips a peer while this is not 0.
        """

    def close(self, code: int, reason: str) -> None:
        """Close the connection with a WebSocket close code (RFC 6455 §7.4)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallContext:
    """Who is calling: ask for it by annotating a parameter ``ctx: CallContext``.

    The caller's identity comes from the token checked at the upgrade:
    ``user`` (its ``sub``), all its ``claims`` and ``expires_at`` (Unix
    seconds, None for a token without ``exp``); then where it came from
    (``remote_address``, the negotiated ``subprotocol``, ``connected_at``).
    ``session`` is the connection's own mutable mapping, shared by all its
    calls: a place for per-connection game state. ``peer`` lets a handler
    notify or close the connection. ``idempotency_key`` is the request's own
    (the ``idempotency_key`` member a client sets on a call it may re-send
    after a reconnect), None for most calls. ``resumed`` is True on a
    connection that took its session over from an earlier one (a recovery
    token at the upgrade); ``resume_error`` says why an offered token was not
    honoured.
    """

    connection_id: str
    user: str
    claims: Mapping[str, Any]
    remote_address: str | None
    expires_at: float | None = None
    subprotocol: str | None = None
    connected_at: float = 0.0
    session: dict[str, Any] = field(default_factory=dict)
    peer: Peer | None = None
    idempotency_key: str | None = None
    resumed: bool = False
    resume_error: str | None = None


# ---------------------------------------------------------------------------
# Methods
# ---------------------------------------------------------------------------


class Method:
    """One registered method: the handler and how to bind params to it."""

    __slots__ = ("_checks", "_context", "_prepend_context", "_signature", "direct", "errors",
                 "func", "handles_key", "hints", "name", "raw_params")

    def __init__(self, name: str, func: Handler, *, raw_params: bool = False,
                 handles_key: bool = False, errors: Iterable[DeclaredError] = ()) -> None:
        self.name = name
        self.func = func
        self.raw_params = raw_params
        self.handles_key = handles_key
        self.errors = declared_errors(errors)
        # The annotations, return type included (``rtctl.spec`` describes it from here).
        self.hints: dict[str, Any] = typing.get_type_hints(func, include_extras=True)
        hints = self.hints
        signature = inspect.signature(func)
        params = list(signature.parameters.values())
        self._context: str | None = None
        self._prepend_context = False
        for index, param in enumerate(params):
            if hints.get(param.name) is CallContext:
                if param.kind is param.KEYWORD_ONLY:
                    self._context = param.name
                elif index == 0 and param.kind in (param.POSITIONAL_ONLY,
                                                   param.POSITIONAL_OR_KEYWORD):
                    self._context = param.name
                    self._prepend_context = True
                else:
                    raise TypeError(f"{name}: the CallContext parameter must come first "
                                    "or be keyword-only")
        visible = [p for p in params if p.name != self._context]
        self._signature = signature.replace(parameters=visible)
        self._checks: list[tuple[str, inspect._ParameterKind, Checker]] = []
        for param in visible:
            check = checker(hints.get(param.name, param.annotation))
            if check is not None:
                self._checks.append((param.name, param.kind, check))
        # Nothing to bind: the params go in as they came (the fast path of sys.echo).
        self.direct = raw_params and self._context is None

    @property
    def signature(self) -> inspect.Signature:
        """The params a client sends: the handler's signature without its CallContext."""
        return self._signature

    def bind(
        self, params: list[Any] | dict[str, Any] | None, ctx: CallContext
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Bind JSON params by Python's rules and check annotated types (-32602)."""
        args, kwargs = ((params,), {}) if self.raw_params else self._bind(params)
        if self._context is not None:
            if self._prepend_context:
                args = (ctx, *args)
            else:
                kwargs[self._context] = ctx
        return args, kwargs

    def invoke(self, params: list[Any] | dict[str, Any] | None, ctx: CallContext) -> Any:
        """Bind and call; an async handler's coroutine is returned, not awaited."""
        args, kwargs = self.bind(params, ctx)
        return self.func(*args, **kwargs)

    def _bind(self, params: list[Any] | dict[str, Any] | None
              ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        try:
            if params is None:
                bound = self._signature.bind()
            elif isinstance(params, list):
                bound = self._signature.bind(*params)
            else:
                bound = self._signature.bind(**params)
        except TypeError as exc:
            raise InvalidParams(f"Invalid params: {exc}") from None
        arguments = bound.arguments
        for name, kind, check in self._checks:
            if name not in arguments:
                continue
            value = arguments[name]
            if kind is inspect.Parameter.VAR_POSITIONAL:
                for index, item in enumerate(value):
                    check(item, f"{name}[{index}]")
            elif kind is inspect.Parameter.VAR_KEYWORD:
                for key, item in value.items():
                    check(item, key)
            else:
                check(value, name)
        return bound.args, bound.kwargs


def _internal_error(request: jsonrpc.Request, exc: BaseException) -> Reply:
    correlation_id = uuid.uuid4().hex[:16]
    logger.error("handler for %r failed (correlation_id=%s)", request.method, correlation_id,
                 exc_info=exc)
    return jsonrpc.encode_error(request.id, ErrorCode.INTERNAL_ERROR, "Internal error",
                                {"correlation_id": correlation_id})


def _rpc_error(request: jsonrpc.Request, exc: RpcError) -> Reply:
    return jsonrpc.encode_error(request.id, exc.code, exc.message, exc.data)


@dataclass(frozen=True, slots=True)
class Notification:
    """A server-to-client notification a router's service sends: its ``params`` type
    (a TypedDict) and what it means; for the published description (``rtctl spec``)."""

    name: str
    params: type
    doc: str | None = None


_PLAIN = frozenset({dict, list, str, int, float, bool, type(None)})  # never awaitable


class Router:
    """A table of JSON-RPC methods. Game code, services and the gateway share it.

    A method's ``errors=`` lists the codes it raises on purpose, for ``rtctl spec``:
    rtctl's :class:`ErrorCode` members (their ``data`` keeps the shape §6.1 gives), and
    the game's own codes as :class:`~rtctl.exceptions.ErrorDecl`, e.g.
    ``ErrorDecl(4100, "Not enough gold", data=Shortfall)`` for a handler that raises
    ``RpcError(4100, "Not enough gold", {...})``.
    """

    def __init__(self) -> None:
        self._methods: dict[str, Method] = {}
        self._notifications: dict[str, Notification] = {}

    @typing.overload
    def method(self, name: Handler, /) -> Handler: ...

    @typing.overload
    def method(
        self, name: str | None = None, /, *, raw_params: bool = False,
        errors: Iterable[DeclaredError] = ()) -> Callable[[Handler], Handler]: ...

    def method(
        self, name: str | Handler | None = None, /, *, raw_params: bool = False,
        errors: Iterable[DeclaredError] = ()) -> Handler | Callable[[Handler], Handler]:
        """Register the decorated plain or async function as ``name``.

        ``@router.method`` alone registers the function under its own name.
        With ``raw_params=True`` the handler takes the params exactly as sent
        (an array, an object or None) as its one argument, unchecked; ``errors``
        as for :meth:`add_method`.
        """
        if callable(name):
            self.add_method(name)
            return name
        method_name = name

        def register(func: Handler) -> Handler:
            self.add_method(func, name=method_name, raw_params=raw_params, errors=errors)
            return func

        return register

    def add_method(
        self, func: Handler, *, name: str | None = None, raw_params: bool = False,
        handles_key: bool = False, errors: Iterable[DeclaredError] = ()) -> None:
        """Register ``func``; the name defaults to the function's own.

        ``handles_key``: the method honours ``ctx.idempotency_key`` itself, where its
        effect is stored (``room.publish`` in the room's history), so the gateway keeps
        no reply for repeats of it. ``errors``: the codes it raises on purpose (``rtctl spec``).
        """
        name = name or func.__name__
        if not name or name.startswith("rpc."):
            raise ValueError(f"method name {name!r} is reserved by JSON-RPC 2.0 §4 "
                             "(names beginning with 'rpc.') or empty")
        if name in self._methods:
            raise ValueError(f"method {name!r} is registered twice")
        self._methods[name] = Method(name, func, raw_params=raw_params,
                                     handles_key=handles_key, errors=errors)

    def notification(self, name: str, params: type, *, doc: str | None = None) -> None:
        """Declare a notification this router's code sends to clients, with its params
        (a TypedDict): the router then describes the whole protocol, both ways."""
        if not typing.is_typeddict(params):
            raise TypeError(f"notification {name!r}: params must be a TypedDict, not {params!r}")
        self._declare(Notification(name, params, doc))

    def _declare(self, notification: Notification) -> None:
        if notification.name in self._notifications:
            raise ValueError(f"notification {notification.name!r} is declared twice")
        self._notifications[notification.name] = notification

    def include(self, other: Router) -> None:
        """Offer every method of ``other`` here too (a name clash is an error), and
        take over its declared notifications (likewise)."""
        for name, method in other._methods.items():
            if name in self._methods:
                raise ValueError(f"method {name!r} is registered twice")
            self._methods[name] = method
        for notification in other._notifications.values():
            self._declare(notification)

    @property
    def methods(self) -> list[str]:
        """Registered method names, sorted."""
        return sorted(self._methods)

    @property
    def notifications(self) -> dict[str, Notification]:
        """Declared notifications by name, sorted (a copy)."""
        return dict(sorted(self._notifications.items()))

    def get(self, name: str) -> Method | None:
        """The registered method ``name``, if any (to describe it)."""
        return self._methods.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._methods

    def handles_key(self, name: str) -> bool:
        """Does the method ``name`` honour an idempotency key itself (see :meth:`add_method`)?"""
        method = self._methods.get(name)
        return method is not None and method.handles_key

    def handle(self, request: jsonrpc.Request, ctx: CallContext) -> Reply | Awaitable[Reply]:
        """Call the method a request names and build its Response (§5).

        Returns the reply at once for plain functions (the fast path) or an
        awaitable for async ones. A notification's success is None; its failure
        is the error it would have had, for the caller to count and never send
        (§4.1: the server MUST NOT reply to a notification).
        """
        method = self._methods.get(request.method)
        try:
            if method is None:
                why = "reserved name" if request.method.startswith("rpc.") else ""
                raise MethodNotFound(request.method, why)
            if method.direct:
                result = method.func(request.params)
            else:
                result = method.invoke(request.params, ctx)
        except RpcError as exc:
            return _rpc_error(request, exc)
        except Exception as exc:
            return _internal_error(request, exc)
        if type(result) not in _PLAIN and inspect.isawaitable(result):
            return self._finish(request, result)
        if request.is_notification:
            return None
        return {"jsonrpc": "2.0", "result": result, "id": request.id}  # encode_result, inlined

    @staticmethod
    async def _finish(request: jsonrpc.Request, pending: Awaitable[Any]) -> Reply:
        try:
            result = await pending
        except RpcError as exc:
            return _rpc_error(request, exc)
        except Exception as exc:
            return _internal_error(request, exc)
        return None if request.is_notification else jsonrpc.encode_result(request.id, result)
