"""The gateway: a thin asyncio driver that carries JSON-RPC calls over WebSockets.

It knows how to carry calls, not what they mean: ``sys.*`` and ``session.*``
are services registered through the same :class:`~rtctl.router.Router` a game
uses. The driver does, in order:

1. at the HTTP upgrade: serve ``/healthz``, ``/readyz`` and ``/metrics``;
   refuse other paths (404), refuse while draining (503), validate the JWT
   (401 with a JSON reason) and the connection limits (429/503), before any
   WebSocket exists (RFC 6455 §4.2.2 allows any non-101 answer);
2. per connection: register it, read text messages, decode them with the pure
   codec, route them, write replies; binary frames close with 1003, invalid
   UTF-8 with 1007 and messages over the limit with 1009 (RFC 6455 §7.4.1);
3. heartbeat with WebSocket ping/pong, close at token expiry (4001) unless the
   client refreshed, and drain on shutdown, then close with 1001.

Beside the game endpoint, ``/tap`` streams every upgrade refusal, connect,
disconnect and message to admin listeners (:mod:`rtctl.gateway.tap`); while
nobody listens, the read loop pays one ``tap.active`` check per message.
``/profile`` (admins too) answers the sampled per-stage timings of
:mod:`rtctl.profiler.stages`: each read loop counts down and times one message
in ``profiler.every`` on a copy of its path, an integer decrement per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import itertools
import logging
import os
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from rtctl.backends.base import Backends
from rtctl.config import GatewayConfig
from rtctl.exceptions import AuthError, ConnectionRefused
from rtctl.gateway.auth import Authenticator, Identity
from rtctl.gateway.connection import Connection, ConnectionState
from rtctl.gateway.metrics import CONTENT_TYPE, GatewayMetrics
from rtctl.gateway.registry import ConnectionRegistry
from rtctl.gateway.tap import connected_event, stream
from rtctl.gateway.transport import SocketTransport, address, close_info, select_subprotocol
from rtctl.profiler.stages import PROFILE_PATH, QueueDepths, StageProfiler
from rtctl.protocol import jsonrpc
from rtctl.protocol.codes import CloseCode, ErrorCode
from rtctl.protocol.tap import IN, OUT, TAP_PATH, AuthRefused, Disconnected, is_admin
from rtctl.protocol.upgrade import token_from_request
from rtctl.router import CallContext, Reply, Router
from rtctl.tap import Tap

__all__ = ["ConnectHook", "DisconnectHook", "Gateway", "LifecycleHook", "ReadinessCheck"]

logger = logging.getLogger("rtctl.gateway")

ConnectHook = Callable[[Connection], Awaitable[None] | None]
LifecycleHook = Callable[[], Awaitable[None]]
ReadinessCheck = Callable[[], str | None]  # None when ready, else the reason
DisconnectHook = Callable[[Connection, int | None, str], Awaitable[None] | None]

_JSON = "application/json"
_CLOSE_TIMEOUT = 2.0  # longest wait for a peer's closing handshake (RFC 6455 §7.1.1)


def _http(status: int, body: bytes, content_type: str = _JSON, **extra: str) -> Response:
    phrase = http.HTTPStatus(status).phrase
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body))),
                       ("Connection", "close"), *extra.items()])
    return Response(status, phrase, headers, body)


def _json_response(status: int, /, **fields: Any) -> Response:
    return _http(status, jsonrpc.dumps(fields))


class Gateway:
    """One gateway node. ``async with Gateway(config) as gw:`` serves until the block ends."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        router: Router | None = None,
        authenticator: Authenticator | None = None,
        clock: Callable[[], float] = time.time,
        backends: Backends | None = None,
    ) -> None:
        from rtctl.backends import memory_backends
        from rtctl.services import builtin_router  # services build on the gateway

        self.config = config
        self.clock = clock
        self.authenticator = authenticator or Authenticator(config.auth)
        self.backends = backends or memory_backends(clock=clock)
        self._connect_hooks: list[ConnectHook] = []
        self._disconnect_hooks: list[DisconnectHook] = []
        self._startup_hooks: list[LifecycleHook] = []
        self._shutdown_hooks: list[LifecycleHook] = []
        self._readiness: dict[str, ReadinessCheck] = {}
        self.router = Router()
        self.router.include(builtin_router(self))
        if router is not None:
            self.router.include(router)
        self.registry = ConnectionRegistry(config.limits)
        self.metrics = GatewayMetrics(set(self.router.methods), connections=self.registry.__len__)
        self._identities: weakref.WeakKeyDictionary[ServerConnection, Identity] = (
            weakref.WeakKeyDictionary()
        )
        self.tap = Tap()
        self.profiler = StageProfiler(known_methods=set(self.router.methods))
        self._by_socket: dict[ServerConnection, Connection] = {}  # to label frames on the tap
        self._listeners: weakref.WeakSet[ServerConnection] = weakref.WeakSet()  # tap upgrades
        self._ids = itertools.count(1)
        self._id_prefix = os.urandom(3).hex()
        self._expiry: dict[str, asyncio.TimerHandle] = {}
        self._server: Server | None = None
        self._draining = False
        self._stopped = asyncio.Event()
        self._empty = asyncio.Event()  # set whenever the registry drains to zero

    # -- lifecycle hooks --------------------------------------------------

    def on_connect(self, hook: ConnectHook) -> ConnectHook:
        """Call ``hook(connection)`` once a connection is open and registered."""
        self._connect_hooks.append(hook)
        return hook

    def on_disconnect(self, hook: DisconnectHook) -> DisconnectHook:
        """Call ``hook(connection, close_code, reason)`` after a connection is gone."""
        self._disconnect_hooks.append(hook)
        return hook

    def on_startup(self, hook: LifecycleHook) -> LifecycleHook:
        """Await ``hook()`` in :meth:`start`, in order, before the port opens."""
        self._startup_hooks.append(hook)
        return hook

    def on_shutdown(self, hook: LifecycleHook) -> LifecycleHook:
        """Await ``hook()`` after the last connection closed, in reverse order."""
        self._shutdown_hooks.append(hook)
        return hook

    def add_readiness_check(self, name: str, check: ReadinessCheck) -> None:
        """``/readyz`` is 503 while ``check()`` returns a reason (it must be cheap)."""
        self._readiness[name] = check

    def readiness_failures(self) -> dict[str, str]:
        """Failing readiness checks by name: why this node should get no new players."""
        return {name: why for name, check in self._readiness.items()
                if (why := check()) is not None}

    # -- start and stop ---------------------------------------------------

    @property
    def ready(self) -> bool:
        """True while the gateway takes new connections (``/readyz``)."""
        return self._server is not None and not self._draining

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the gateway is not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        """The WebSocket URL clients connect to."""
        return f"ws://{self.config.host}:{self.port}{self.config.path}"

    @property
    def _close_timeout(self) -> float:
        return min(_CLOSE_TIMEOUT, self.config.heartbeat.timeout / 2)

    async def start(self) -> None:
        """Run the startup hooks, then bind and listen; returns once the port is open."""
        for hook in self._startup_hooks:
            await hook()
        self.profiler.start()
        self._server = await serve(
            self._handle,
            self.config.host,
            self.config.port,
            process_request=self._process_request,
            select_subprotocol=select_subprotocol,
            compression=None,
            max_size=self.config.limits.max_message_size,
            ping_interval=self.config.heartbeat.interval,
            # A dead peer never closes its TCP side either: the heartbeat timeout
            # covers the wait for the pong *and* the wait for the close, so it
            # is gone within interval + timeout.
            ping_timeout=self.config.heartbeat.timeout - self._close_timeout,
            close_timeout=self._close_timeout,
            server_header="rtctl",
        )

    async def shutdown(self, drain: float | None = None) -> None:
        """Go not-ready, refuse new upgrades, wait ``drain`` s, then close all with 1001."""
        if self._server is None or self._draining:
            await self._stopped.wait()
            return
        self._draining = True
        drain = self.config.drain if drain is None else drain
        logger.info("draining for %.1fs before closing %d connections", drain, len(self.registry))
        if self.registry and drain > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._empty.wait(), drain)
        self._server.close(code=CloseCode.GOING_AWAY, reason="gateway shutting down")
        await self._server.wait_closed()
        for hook in reversed(self._shutdown_hooks):
            try:
                await hook()
            except Exception:
                logger.exception("shutdown hook %r failed", hook)
        await self.profiler.stop()
        self._stopped.set()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown(drain=0)

    # -- the HTTP upgrade ---------------------------------------------------

    def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        path = url.path
        if path == "/healthz":
            return _json_response(200, status="ok")
        if path == "/readyz":
            failing = self.readiness_failures() if self.ready else {}
            if self.ready and not failing:
                return _json_response(200, status="ready", connections=len(self.registry))
            if failing:
                return _json_response(503, status="unavailable", failing=failing)
            return _json_response(503, status="draining" if self._draining else "starting")
        if path == "/metrics":
            return _http(200, self.metrics.render(), CONTENT_TYPE)
        if path == PROFILE_PATH:
            return self._profile(request, url.query)
        if path != self.config.path and path != TAP_PATH:
            return _json_response(404, error="not_found",
                                  detail=f"the WebSocket endpoint is {self.config.path}")
        if self._draining:
            self.metrics.refused["draining"] += 1
            self._tap_refusal(ws, path, 503, "draining")
            return _json_response(503, error="draining", detail="the gateway is shutting down")
        headers = request.headers
        offered = [p.strip() for value in headers.get_all("Sec-WebSocket-Protocol")
                   for p in value.split(",")]
        try:
            identity = self.authenticator.authenticate(token_from_request(
                authorization=headers.get("Authorization"), query=url.query,
                subprotocols=offered))
            if path != self.config.path:
                return self._admit_listener(ws, path, identity)
            self.registry.check(identity.user)
        except AuthError as exc:
            self.metrics.refused[exc.reason] += 1
            self._tap_refusal(ws, path, 401, exc.reason)
            response = _json_response(401, error="unauthorized", reason=exc.reason,
                                      detail=exc.detail)
            response.headers["WWW-Authenticate"] = f'Bearer error="invalid_token", ' \
                                                   f'error_description="{exc.reason}"'
            return response
        except ConnectionRefused as exc:
            self.metrics.refused[exc.reason] += 1
            self._tap_refusal(ws, path, exc.http_status, exc.reason, identity.user)
            return _json_response(exc.http_status, error=exc.reason, detail=exc.detail)
        self._identities[ws] = identity
        return None

    def _admit_listener(self, ws: ServerConnection, path: str,
                        identity: Identity) -> Response | None:
        """The tap is for admins: a valid token without the claim ``role=admin`` gets 403.

        A listener is not a game connection: no registry entry, no limits.
        """
        if not is_admin(identity.claims):
            self.metrics.refused["forbidden"] += 1
            self._tap_refusal(ws, path, 403, "forbidden", identity.user)
            return _json_response(403, error="forbidden",
                                  detail="the tap needs a token with the claim role=admin")
        self._listeners.add(ws)
        return None

    def _profile(self, request: Request, query: str) -> Response:
        """``GET /profile`` for admins: the stage table; ``?reset=1`` starts a new interval."""
        try:
            identity = self.authenticator.authenticate(token_from_request(
                authorization=request.headers.get("Authorization"), query=query,
                subprotocols=[]))
        except AuthError as exc:
            return _json_response(401, error="unauthorized", reason=exc.reason,
                                  detail=exc.detail)
        if not is_admin(identity.claims):
            return _json_response(403, error="forbidden",
                                  detail="the profile needs a token with the claim role=admin")
        outboxes = [conn.transport.queued() for conn in self.registry
                    if isinstance(conn.transport, SocketTransport)]
        queues = QueueDepths(
            connections=len(self.registry), outboxes=sum(q is not None for q in outboxes),
            queued_messages=sum(q[0] for q in outboxes if q is not None),
            queued_bytes=sum(q[1] for q in outboxes if q is not None),
            max_queued_messages=max((q[0] for q in outboxes if q is not None), default=0))
        params = query.split("&")  # process_request runs on the loop's thread, as it must
        return _json_response(200, **self.profiler.snapshot(
            queues, reset="reset=1" in params, cpu="cpu=1" in params))

    def _tap_refusal(self, ws: ServerConnection, path: str, status: int, reason: str,
                     user: str | None = None) -> None:
        if self.tap.active:
            self.tap.publish(AuthRefused(
                t_us=self.tap.clock_us(), remote=address(ws.remote_address), path=path,
                status=status, reason=reason, user=user))

    # -- one connection -----------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        if ws in self._listeners:
            await self._serve_listener(ws)
            return
        identity = self._identities.pop(ws)
        transport = SocketTransport(self, ws, max_bytes=self.config.limits.max_outbox_bytes)
        conn = Connection(
            id=f"{self._id_prefix}-{next(self._ids)}",
            identity=identity,
            remote_address=address(ws.remote_address),
            connected_at=self.clock(),
            subprotocol=ws.subprotocol,
            transport=transport,
        )
        try:
            self.registry.add(conn)
        except ConnectionRefused as exc:
            await ws.close(CloseCode.TRY_AGAIN_LATER, exc.detail[:120])
            return
        conn.transition(ConnectionState.OPEN)
        self._empty.clear()
        self.metrics.connections_opened += 1
        self._by_socket[ws] = conn
        tap = self.tap
        if tap.active:
            tap.publish(connected_event(conn, local=address(ws.local_address),
                                        path=self.config.path, t_us=tap.clock_us()))
        self._schedule_expiry(conn)
        metrics = self.metrics
        profiler = self.profiler
        countdown = profiler.first_countdown()  # messages until the next timed one
        inflight: asyncio.Semaphore | None = None  # made when the first async call comes
        try:
            for hook in self._connect_hooks:
                await self._run_hook(hook(conn))
            # The read loop is inline: this frame lives as long as the connection,
            # and one frame per idle connection is cheaper than two.
            async for message in ws:
                metrics.messages_in += 1
                if type(message) is not str:
                    conn.close(CloseCode.UNSUPPORTED_DATA, "binary frames are not accepted")
                    await ws.wait_closed()  # returning now would close with 1000 instead
                    return
                # str.isascii() reads a flag; only other text needs encoding to count bytes.
                metrics.bytes_in += (len(message) if message.isascii()
                                     else len(message.encode()))
                if tap.active:
                    tap.frame(conn, IN, message)
                countdown -= 1
                if not countdown:
                    countdown = profiler.every
                    inflight = await self._timed(ws, conn, message, inflight)
                    continue
                incoming = jsonrpc.decode(message)
                if isinstance(incoming, jsonrpc.Request):
                    started = time.perf_counter()
                    reply = self.router.handle(incoming, conn.context)
                    if reply is not None and not isinstance(reply, dict):  # an async handler
                        inflight = await self._spawn(ws, incoming.method, started, reply,
                                                     inflight)
                        continue
                    metrics.observe_call(incoming.method, time.perf_counter() - started)
                    if reply is not None:  # send_raw, inlined: this is the hot path
                        data = self._checked(reply)
                        await ws.send(data, text=True)
                        metrics.messages_out += 1
                        metrics.bytes_out += len(data)
                        if tap.active:
                            tap.frame(conn, OUT, data)
                else:
                    await self._not_a_call(ws, incoming, conn.context)
        except ConnectionClosed:
            pass
        finally:
            await self._closed(ws, conn, transport)

    async def _not_a_call(self, ws: ServerConnection,
                          incoming: jsonrpc.InvalidMessage | jsonrpc.BatchReceived,
                          ctx: CallContext) -> None:
        if isinstance(incoming, jsonrpc.InvalidMessage):
            await self._send(ws, jsonrpc.encode_error(incoming.id, incoming.code,
                                                      incoming.message))
        else:
            await self._batch(ws, incoming, ctx)

    async def _spawn(self, ws: ServerConnection, method: str, started: float,
                     pending: Awaitable[Reply], inflight: asyncio.Semaphore | None,
                     decode_ns: int | None = None) -> asyncio.Semaphore:
        """Run an async handler's call as a task, at most ``max_inflight`` at a time."""
        if inflight is None:
            inflight = asyncio.Semaphore(self.config.limits.max_inflight)
        await inflight.acquire()
        asyncio.get_running_loop().create_task(
            self._finish(ws, method, started, pending, inflight, decode_ns))
        return inflight

    async def _finish(self, ws: ServerConnection, method: str, started: float,
                      pending: Awaitable[Reply], inflight: asyncio.Semaphore,
                      decode_ns: int | None) -> None:
        try:
            reply = await pending
            handler = time.perf_counter() - started
            self.metrics.observe_call(method, handler)
            if decode_ns is not None:
                await self._send_timed(ws, method, (decode_ns, int(handler * 1e9)), reply)
            elif reply is not None:
                await self._send(ws, reply)
        except ConnectionClosed:
            pass
        finally:
            inflight.release()

    async def _timed(self, ws: ServerConnection, conn: Connection, message: str,
                     inflight: asyncio.Semaphore | None) -> asyncio.Semaphore | None:
        """One message down the read loop's path with its stages timed (the profiler's sample)."""
        decoding = time.perf_counter_ns()
        incoming = jsonrpc.decode(message)
        decode_ns = time.perf_counter_ns() - decoding
        if not isinstance(incoming, jsonrpc.Request):
            await self._not_a_call(ws, incoming, conn.context)
            return inflight
        started = time.perf_counter()
        reply = self.router.handle(incoming, conn.context)
        if reply is not None and not isinstance(reply, dict):
            return await self._spawn(ws, incoming.method, started, reply, inflight, decode_ns)
        handler = time.perf_counter() - started
        self.metrics.observe_call(incoming.method, handler)
        await self._send_timed(ws, incoming.method, (decode_ns, int(handler * 1e9)), reply)
        return inflight

    async def _send_timed(self, ws: ServerConnection, method: str, before: tuple[int, int],
                          reply: Reply) -> None:
        """Encode and write ``reply``, then record all four stages of its message."""
        encoding = time.perf_counter_ns()
        data = None if reply is None else self._checked(reply)
        writing = time.perf_counter_ns()
        if data is not None:
            await self.send_raw(ws, data)
        self.profiler.record(method, *before, writing - encoding,
                             time.perf_counter_ns() - writing)

    async def _batch(
        self, ws: ServerConnection, batch: jsonrpc.BatchReceived, ctx: CallContext
    ) -> None:
        """Answer a batch (§6) with an array, or not at all if it held only notifications.

        A batch is handled in order before the next message is read: it is one
        unit to the client, and its order of effects is the order it was sent.
        """
        replies: list[Reply] = []
        for item in batch.items:
            if isinstance(item, jsonrpc.InvalidMessage):
                replies.append(jsonrpc.encode_error(item.id, item.code, item.message))
                continue
            started = time.perf_counter()
            reply = self.router.handle(item, ctx)
            if reply is not None and not isinstance(reply, dict):
                reply = await reply
            self.metrics.observe_call(item.method, time.perf_counter() - started)
            replies.append(reply)
        answers = [self._checked(reply) for reply in replies if reply is not None]
        if answers:
            await self.send_raw(ws, b"[" + b",".join(answers) + b"]")

    def _checked(self, reply: dict[str, Any]) -> bytes:
        """Encode a reply; a result that is not JSON becomes -32603, logged."""
        error = reply.get("error")
        if error is not None:
            self.metrics.rpc_errors[error["code"]] += 1
        try:
            return jsonrpc.dumps(reply)
        except TypeError as exc:
            correlation_id = os.urandom(8).hex()
            logger.error("reply to id %r is not JSON (correlation_id=%s): %s",
                         reply.get("id"), correlation_id, exc)
            self.metrics.rpc_errors[ErrorCode.INTERNAL_ERROR] += 1
            return jsonrpc.dumps(jsonrpc.encode_error(
                reply.get("id"), ErrorCode.INTERNAL_ERROR, "Internal error",
                {"correlation_id": correlation_id}))

    async def _send(self, ws: ServerConnection, reply: dict[str, Any]) -> None:
        await self.send_raw(ws, self._checked(reply))

    async def send_raw(self, ws: ServerConnection, data: bytes) -> None:
        """Write one text message to ``ws`` and count it (also the outboxes' writer)."""
        await ws.send(data, text=True)
        self.metrics.messages_out += 1
        self.metrics.bytes_out += len(data)
        if self.tap.active:
            conn = self._by_socket.get(ws)
            if conn is not None:
                self.tap.frame(conn, OUT, data)

    async def _closed(
        self, ws: ServerConnection, conn: Connection, transport: SocketTransport
    ) -> None:
        timer = self._expiry.pop(conn.id, None)
        if timer is not None:
            timer.cancel()
        await transport.aclose()
        code, reason = close_info(ws)
        self._by_socket.pop(ws, None)
        if self.tap.active:
            self.tap.publish(Disconnected(t_us=self.tap.clock_us(), conn=conn.id, user=conn.user,
                                          code=code, reason=reason))
        conn.transition(ConnectionState.CLOSED)
        self.registry.remove(conn)
        if not self.registry:
            self._empty.set()
        self.metrics.connections_closed[code] += 1
        for hook in self._disconnect_hooks:
            try:
                await self._run_hook(hook(conn, code, reason))
            except Exception:
                logger.exception("disconnect hook %r failed for %s", hook, conn.id)

    async def _serve_listener(self, ws: ServerConnection) -> None:
        """Stream the tap to an admin listener; it first learns of the open connections."""
        existing = [connected_event(conn, local=address(sock.local_address),
                                    path=self.config.path)
                    for sock, conn in self._by_socket.items()]
        with self.tap.subscribe(existing=existing) as subscription:
            await stream(ws, subscription)

    @staticmethod
    async def _run_hook(result: Awaitable[None] | None) -> None:
        if result is not None:
            await result

    # -- token expiry ---------------------------------------------------------

    def _schedule_expiry(self, conn: Connection) -> None:
        old = self._expiry.pop(conn.id, None)
        if old is not None:
            old.cancel()
        if conn.expires_at is None:
            return
        loop = asyncio.get_running_loop()
        delay = conn.expires_at + self.config.auth.leeway - self.clock()
        self._expiry[conn.id] = loop.call_later(
            max(delay, 0), conn.close, CloseCode.TOKEN_EXPIRED, "token expired")

    def reauthenticate(self, conn: Connection, identity: Identity) -> None:
        """Adopt a refreshed identity for the same user and move the expiry timer."""
        conn.reauthenticate(identity)
        self._schedule_expiry(conn)
