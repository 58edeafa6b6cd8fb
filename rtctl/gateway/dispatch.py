"""The gateway's dispatch policy, sans-I/O: one received text message in, the bytes to send out.

Every transport driver calls :meth:`Dispatcher.receive` with the text of one
WebSocket message (RFC 6455 §5.6) and writes what it returns; it calls
:meth:`Dispatcher.sent` for every message it wrote. Nothing here touches a
socket or awaits I/O, so the whole path -- count, tap, decode (JSON-RPC 2.0
§4), route, call, batch (§6), encode (§5), profile -- is tested synchronously.

:meth:`~Dispatcher.receive` returns one of:

``None``
    nothing to send (a notification, §4.1);
``bytes``
    the reply, ready to write (the fast path: a plain handler);
:class:`Timed`
    the reply of the one message in ``profiler.every`` whose stages are being
    timed; the driver times its write and calls :meth:`Dispatcher.record`;
:class:`Deferred`
    an awaitable that resolves to one of the above: an ``async`` handler
    (``ordered=False``: the driver runs it beside the next messages, at most
    ``max_inflight`` at a time) or a batch (``ordered=True``: finished before
    the next message is read, so its effects happen in the order sent).

A request that carries an ``idempotency_key`` (:mod:`rtctl.protocol.jsonrpc`)
is answered through the ``replies`` cache: a repeat of one that succeeded
within the window gets the kept result under its own id, without running the
handler again (one that comes while the first still runs waits for it); the
handler sees the key in ``ctx.idempotency_key`` (a ``room.publish`` re-sent
after its node died finds its first append by it).

With an inbound rate (``routing.inbound_rate`` calls/s, ``burst_calls``), each
connection gets a token :class:`~rtctl.protocol.shaping.Bucket` at its first
message; every request and notification takes one, each of a batch's too. One
over the rate is not run: a request is answered -32029 with
``data.retry_after_ms`` (the connection stays open), a notification is dropped
(§4.1: nothing could answer it); both are counted in
``metrics.inbound_limited`` and, with code -32029, in ``rtctl_rpc_calls_total``.
Neither reaches the ``replies`` cache. The bucket is the connection's own
(``Connection.inbound``): it goes with it.

A batch is at most ``max_batch`` requests (the codec refuses a longer one
whole), and it lets the loop run other connections every :data:`LOOP_SLICE`
seconds; the drivers do the same between messages that arrived together. One
connection never holds everyone else's replies back for longer than that.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from rtctl.backends.base import BackendUnavailable, ReplyCache
from rtctl.config import Routing
from rtctl.gateway.connection import Connection
from rtctl.gateway.metrics import GatewayMetrics
from rtctl.profiler.stages import StageProfiler
from rtctl.protocol import jsonrpc
from rtctl.protocol.codes import ErrorCode
from rtctl.protocol.shaping import Bucket
from rtctl.protocol.tap import IN, OUT
from rtctl.router import CallContext, Reply, Router
from rtctl.tap import Tap

__all__ = ["LOOP_SLICE", "Deferred", "Dispatcher", "Outcome", "Sample", "Timed"]

logger = logging.getLogger("rtctl.gateway")

LOOP_SLICE = 0.001  # seconds of loop one connection holds before it yields to the others


class Sample:
    """The stage timings of one profiled message, in nanoseconds (see :mod:`rtctl.profiler`)."""

    __slots__ = ("decode_ns", "encode_ns", "handler_ns", "method")

    def __init__(self, decode_ns: int) -> None:
        self.decode_ns = decode_ns
        self.method = ""
        self.handler_ns = 0
        self.encode_ns = 0


class Timed(NamedTuple):
    """A profiled message's reply (None for a notification) and its timings so far."""

    data: bytes | None
    sample: Sample


class Deferred(NamedTuple):
    """Work the driver must await: an async handler, or a batch (``ordered``)."""

    pending: Awaitable[bytes | Timed | None]
    ordered: bool


Outcome = bytes | Timed | Deferred | None


class Dispatcher:
    """From received text to reply bytes, counting, tapping and sampling on the way."""

    def __init__(
        self,
        router: Router,
        metrics: GatewayMetrics,
        tap: Tap,
        profiler: StageProfiler,
        *,
        max_batch: int | None = None,
        replies: ReplyCache | None = None,
        reply_ttl: float = 0.0,
        routing: Routing = Routing(),
        perf_counter: Callable[[], float] = time.perf_counter,
        perf_counter_ns: Callable[[], int] = time.perf_counter_ns,
    ) -> None:
        self.router = router
        self._replies = replies
        self._reply_ttl = reply_ttl
        self._running: dict[str, asyncio.Future[Reply]] = {}  # keyed calls under way
        self.metrics = metrics
        self.tap = tap
        self.profiler = profiler
        self.max_batch = max_batch
        self._perf = perf_counter
        self._perf_ns = perf_counter_ns
        self._countdown = profiler.first_countdown()  # messages until the next timed one
        self._inbound_rate = routing.inbound_rate
        self._inbound_burst = routing.burst_calls

    def receive(self, conn: Connection, message: str) -> Outcome:
        """Handle one text message of ``conn``: what to write back, now or later."""
        metrics = self.metrics
        metrics.messages_in += 1
        # str.isascii() reads a flag; only other text needs encoding to count bytes.
        metrics.bytes_in += len(message) if message.isascii() else len(message.encode())
        if self.tap.active:
            self.tap.frame(conn, IN, message)
        self._countdown -= 1
        if self._countdown:
            return self._route(jsonrpc.decode(message, self.max_batch), conn, None)
        self._countdown = self.profiler.every
        decoding = self._perf_ns()
        incoming = jsonrpc.decode(message, self.max_batch)
        return self._route(incoming, conn, Sample(self._perf_ns() - decoding))

    def sent(self, conn: Connection, data: bytes, binary: bool = False) -> None:
        """Count a text (or ``binary``) message the driver wrote to ``conn``; tap it."""
        metrics = self.metrics
        metrics.messages_out += 1
        metrics.bytes_out += len(data)
        if self.tap.active:
            self.tap.frame(conn, OUT, data, binary)

    def record(self, sample: Sample, write_ns: int) -> None:
        """File a profiled message's four stages once the driver has written it."""
        self.profiler.record(sample.method, sample.decode_ns, sample.handler_ns,
                             sample.encode_ns, write_ns)

    def encode(self, reply: dict[str, Any], method: str | None = None) -> bytes:
        """Encode a reply; a result that is not JSON becomes -32603, logged (§5.1) and
        counted against ``method``'s calls."""
        try:
            data = jsonrpc.dumps(reply)
        except TypeError as exc:
            correlation_id = os.urandom(8).hex()
            logger.error("reply to id %r is not JSON (correlation_id=%s): %s",
                         reply.get("id"), correlation_id, exc)
            self.metrics.rpc_errors[ErrorCode.INTERNAL_ERROR] += 1
            if method is not None:
                self.metrics.count_unencodable(method, reply.get("error"))
            return jsonrpc.dumps(jsonrpc.encode_error(
                reply.get("id"), ErrorCode.INTERNAL_ERROR, "Internal error",
                {"correlation_id": correlation_id}))
        error = reply.get("error")
        if error is not None:
            self.metrics.rpc_errors[error["code"]] += 1
        return data

    # -- the path -------------------------------------------------------------

    def _route(self, incoming: jsonrpc.Incoming, conn: Connection,
               sample: Sample | None) -> Outcome:
        if isinstance(incoming, jsonrpc.Request):
            if self._inbound_rate is not None and (wait := self._wait(conn, self._inbound_rate)):
                return self._limited(incoming, self._inbound_rate, wait)
            started = self._perf()
            reply = self._handle(incoming, conn.context)
            if reply is not None and not isinstance(reply, dict):  # an async handler
                return Deferred(self._finish(incoming, started, reply, sample), False)
            return self._replied(incoming, self._perf() - started, reply, sample)
        if isinstance(incoming, jsonrpc.InvalidMessage):
            return self.encode(jsonrpc.encode_error(incoming.id, incoming.code,
                                                    incoming.message))
        return Deferred(self._batch(incoming, conn), True)

    def _wait(self, conn: Connection, rate: float) -> float:
        """Take one of ``conn``'s inbound tokens (0.0), or the seconds until one is there."""
        now = self._perf()
        bucket = conn.inbound
        if bucket is None:
            assert self._inbound_burst is not None  # Routing gives a rate its burst
            bucket = conn.inbound = Bucket(rate=rate, burst=self._inbound_burst, now=now)
        return bucket.take(1, now)

    def _limited(self, request: jsonrpc.Request, rate: float, wait: float) -> bytes | None:
        """The answer to a call over the rate: -32029 for a request, none for a notification."""
        self.metrics.count_limited(request.method)
        if request.is_notification:
            self.metrics.inbound_limited["notification"] += 1
            return None
        self.metrics.inbound_limited["call"] += 1
        retry_ms = max(1, math.ceil(wait * 1000))  # never "retry in 0 ms": one would be early
        return self.encode(jsonrpc.encode_error(
            request.id, ErrorCode.RATE_LIMITED,
            f"Rate limited: over {rate:g} calls/s; retry in {retry_ms} ms",
            {"retry_after_ms": retry_ms}))

    def _handle(self, request: jsonrpc.Request, ctx: CallContext) -> Reply | Awaitable[Reply]:
        if request.idempotency_key is None:
            return self.router.handle(request, ctx)
        ctx = dataclasses.replace(ctx, idempotency_key=request.idempotency_key)
        if (request.is_notification or self._replies is None
                or self.router.handles_key(request.method)):
            return self.router.handle(request, ctx)
        return self._once(request, ctx, self._replies)

    async def _once(self, request: jsonrpc.Request, ctx: CallContext,
                    replies: ReplyCache) -> Reply:
        """Answer a keyed request from the cache, or run it and keep a successful reply.

        The key counts for one user, method and params: the same key with other params is
        another call. A repeat that comes while the first still runs here waits for it
        (the first may outlive its connection). Errors are not kept: a repeat runs again
        (a -32050 may have passed).
        """
        digest = hashlib.blake2b(jsonrpc.dumps(request.params), digest_size=8).hexdigest()
        scope = f"{ctx.user}:{request.method}:{request.idempotency_key}:{digest}"
        while (first := self._running.get(scope)) is not None:  # one runs at a time
            earlier = await asyncio.shield(first)
            if earlier is not None and "result" in earlier:
                return jsonrpc.encode_result(request.id, earlier["result"])
        running = self._running[scope] = asyncio.get_running_loop().create_future()
        reply: Reply = None
        try:
            kept = await replies.recall(scope)
            if kept is not None:
                reply = jsonrpc.encode_result(request.id, jsonrpc.loads(kept))
                return reply
            handled = self.router.handle(request, ctx)
            reply = handled if handled is None or isinstance(handled, dict) else await handled
        except BackendUnavailable as exc:
            return jsonrpc.encode_error(request.id, exc.code, exc.message, exc.data)
        finally:
            del self._running[scope]
            running.set_result(reply)
        if reply is not None and "result" in reply:
            try:
                await replies.remember(scope, jsonrpc.dumps(reply["result"]).decode(),
                                       ttl=self._reply_ttl)
            except (BackendUnavailable, TypeError) as exc:  # done all the same: answer it
                logger.info("reply to %s not kept for repeats: %s", request.method, exc)
        return reply

    def _replied(self, request: jsonrpc.Request, seconds: float, reply: Reply,
                 sample: Sample | None) -> bytes | Timed | None:
        method = request.method
        self.metrics.observe_call(method, seconds, reply)
        if request.is_notification:
            reply = None  # its error is counted, never sent (§4.1)
        if sample is None:
            return None if reply is None else self.encode(reply, method)
        sample.method = method
        sample.handler_ns = round(seconds * 1e9)  # int() would cut 2999.9999 to 2999
        encoding = self._perf_ns()
        data = None if reply is None else self.encode(reply, method)
        sample.encode_ns = self._perf_ns() - encoding
        return Timed(data, sample)

    async def _finish(self, request: jsonrpc.Request, started: float,
                      pending: Awaitable[Reply], sample: Sample | None) -> bytes | Timed | None:
        reply = await pending
        return self._replied(request, self._perf() - started, reply, sample)

    async def _batch(self, batch: jsonrpc.BatchReceived, conn: Connection) -> bytes | None:
        """Answer a batch (§6) with an array, or not at all if it held only notifications."""
        ctx = conn.context
        rate = self._inbound_rate
        answers: list[bytes] = []
        yield_at = self._perf() + LOOP_SLICE
        for item in batch.items:
            started = self._perf()
            if started > yield_at:
                await asyncio.sleep(0)  # let the loop serve everyone else once
                started = self._perf()
                yield_at = started + LOOP_SLICE
            if isinstance(item, jsonrpc.InvalidMessage):
                answers.append(self.encode(jsonrpc.encode_error(item.id, item.code,
                                                                item.message)))
                continue
            if rate is not None and (wait := self._wait(conn, rate)):
                if (limited := self._limited(item, rate, wait)) is not None:
                    answers.append(limited)
                continue
            reply = self._handle(item, ctx)
            if reply is not None and not isinstance(reply, dict):
                reply = await reply
            self.metrics.observe_call(item.method, self._perf() - started, reply)
            if reply is not None and not item.is_notification:
                answers.append(self.encode(reply, item.method))
        return b"[" + b",".join(answers) + b"]" if answers else None
