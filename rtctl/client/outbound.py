"""What the client sends: calls, notifications, batches, through the send queue.

The base of :class:`~rtctl.client.Client` below the connection task: a message
goes straight onto the open link when the client is connected and nothing
waits in its lane or a higher one, else into the
:class:`~rtctl.client.queue.SendQueue`, which the connection task flushes on
the next link. A call's timeout covers both.

With a ``batch_window``, notifications are held in the queue, even while
connected: the first one starts the window, and when it ends whatever waits
is written in lane order, runs of notifications as one JSON-RPC batch array
per frame (JSON-RPC 2.0 §6; a batch of notifications gets no answer, and the
gateway runs a batch in order). A notification that would not fit in the frame
held (:meth:`SendQueue.fits <rtctl.client.queue.SendQueue.fits>`) first sends
that frame, window or not: held notifications count against the queue's
bound, and a full frame gains nothing by waiting. Fewer frames for a game that
sends many small notifications per tick, for up to ``batch_window`` of delay.
Calls are never held: they carry ids and someone awaits the reply.

A call made with an ``idempotency_key`` (a top-level member of the request,
``docs/api.md``) is *kept* (:class:`~rtctl.client.calls.PendingCalls`): if its
connection drops before the reply, it is sent again on the next one, and the
gateway answers that repeat with the first one's reply instead of running it
twice. Exactly once, where a plain call is at most once.

The connection task also calls straight on a link that is not yet reported
connected (:meth:`Outbound._call_on`): the reconnect steps of
:mod:`rtctl.client.recovery` go before anything queued.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any

from rtctl.client.calls import PendingCalls
from rtctl.client.errors import (
    CallTimeout,
    ConnectionLost,
    MessageDropped,
    ServerError,
    check_retryable_codes,
)
from rtctl.client.inbound import Inbound, SequenceOf
from rtctl.client.link import Link, LinkClosed
from rtctl.client.queue import QueueCounters, Queued, QueueLimits, SendQueue, frame
from rtctl.client.states import ACCEPTS_MESSAGES, ClientState
from rtctl.exceptions import ConfigError
from rtctl.protocol import jsonrpc
from rtctl.protocol.lanes import Lane, LaneStats

__all__ = ["Outbound", "Params"]

Params = list[Any] | dict[str, Any] | None
_Send = Callable[[Queued], Awaitable[None]]


class Outbound(Inbound):
    """The send queue, the open link, and the calls made over them."""

    def __init__(self, *, retryable_codes: Iterable[int], queue: QueueLimits,
                 call_timeout: float, batch_window: float | None, sequence_of: SequenceOf | None,
                 clock: Callable[[], float]) -> None:
        super().__init__(calls=PendingCalls(check_retryable_codes(retryable_codes)),
                         sequence_of=sequence_of, clock=clock)
        if batch_window is not None and not batch_window > 0:
            raise ConfigError(f"batch_window must be a positive number of seconds or None; "
                              f"got {batch_window!r}")
        self._queue = SendQueue(queue, clock)
        self.call_timeout = call_timeout
        self.batch_window = batch_window
        self._link: Link | None = None  # the open connection; None while there is none
        self._drain: asyncio.Task[None] | None = None  # writes what waits while connected
        self._sending = asyncio.Lock()  # held while the queue is written (_send_queued)

    @property
    def queue(self) -> QueueCounters:
        """The send queue's counters: accepted, sent, rejected, dropped, high water,
        coalesced."""
        return self._queue.counters

    @property
    def lanes(self) -> LaneStats:
        """The send queue per lane: depth, wait (``.wait.quantile(0.99)``), dropped,
        coalesced; messages written at once never wait, so count in none."""
        return self._queue.lanes

    @property
    def queued(self) -> int:
        """Messages waiting in the send queue now."""
        return len(self._queue)

    async def call(self, method: str, params: Params = None, *, timeout: float | None = None,
                   idempotency_key: str | None = None) -> Any:
        """Call ``method`` and return its result; raise :class:`ServerError` for an error reply.

        Sent at once when connected, else queued until the next connection.
        ``timeout`` (default ``call_timeout``) covers queueing and the round trip.
        With ``idempotency_key`` (1 to 64 characters ``A-Z a-z 0-9 _ . : -``, unique
        per call) a drop does not fail the call: it is sent again once reconnected.
        """
        self._sm.require(ACCEPTS_MESSAGES, "call")
        if idempotency_key is not None and not jsonrpc.IDEMPOTENCY_KEY.fullmatch(idempotency_key):
            raise ValueError(f"idempotency_key {idempotency_key!r}: 1 to 64 characters "
                             "A-Z a-z 0-9 _ . : - expected")
        return await self._call(method, params, timeout, self._submit, idempotency_key)

    async def notify(self, method: str, params: Params = None, *, lane: Lane = Lane.EVENTS,
                     key: Hashable | None = None) -> None:
        """Send a notification (§4.1): the gateway never answers it, not even with an error.
        Queued when not connected; :class:`QueueFull` if the send queue has no room for it.

        ``lane`` orders it in the send queue (inputs: ``Lane.STATE``); ``key``, needed
        exactly when the lane's overflow is ``COALESCE``, lets a newer one replace it.
        """
        self._sm.require(ACCEPTS_MESSAGES, "notify")
        self._queue.policy(lane, key)  # a wrong key is refused whether or not it would wait
        await self._submit(Queued(jsonrpc.dumps(jsonrpc.encode_notification(method, params)),
                                  lane=lane, key=key, notification=True))

    async def batch(self, calls: Iterable[tuple[str, Params] | tuple[str, Params, bool]], *,
                    timeout: float | None = None) -> list[Any]:
        """Send a batch (§6) in one message: ``(method, params)`` is a call,
        ``(method, params, False)`` a notification.

        Returns one entry per call, in order: its result, or the
        :class:`ServerError` it was answered with (as ``asyncio.gather``
        with ``return_exceptions``). Transport failures and timeouts raise.
        """
        self._sm.require(ACCEPTS_MESSAGES, "send a batch")
        messages, ids, futures = [], [], []
        for method, params, *rest in calls:
            if rest and not rest[0]:
                messages.append(jsonrpc.encode_notification(method, params))
                continue
            request_id, future = self._calls.open()
            messages.append(jsonrpc.encode_request(method, params, request_id))
            ids.append(request_id)
            futures.append(future)
        if not messages:
            raise ValueError("an empty batch is not valid JSON-RPC 2.0 (§6)")
        item = Queued(jsonrpc.dumps(messages), tuple(ids), Lane.CONTROL if ids else Lane.EVENTS)
        results = await self._exchange(item, futures, timeout, self._submit)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, ServerError):
                raise result
        return results

    async def ping(self, *, timeout: float | None = None) -> float:
        """``sys.ping`` once; feed RTT and clock offset to the netstats; return the RTT."""
        self._sm.require(frozenset({ClientState.CONNECTED}), "ping")
        sent_at = self._clock()
        result = await self.call("sys.ping", timeout=timeout)
        received_at = self._clock()
        rtt = self._stats.observe_ping(sent_at, received_at, float(result["time"]) / 1000)
        return received_at - sent_at if rtt is None else rtt

    async def _call_on(self, link: Link, method: str, params: Params = None, *,
                       timeout: float | None = None) -> Any:
        """Call on ``link`` now, queue or no queue (the connection task's own calls)."""

        async def send(item: Queued) -> None:
            try:
                await self._write(link, item)
            except LinkClosed:
                raise ConnectionLost("the connection dropped before the call was sent") from None

        return await self._call(method, params, timeout, send)

    async def _call(self, method: str, params: Params, timeout: float | None, send: _Send,
                    idempotency_key: str | None = None) -> Any:
        request_id, future = self._calls.open()
        message = jsonrpc.encode_request(method, params, request_id,
                                         idempotency_key=idempotency_key)
        item = Queued(jsonrpc.dumps(message), (request_id,))
        if idempotency_key is not None:
            self._calls.keep(item)
        (result,) = await self._exchange(item, [future], timeout, send)
        if isinstance(result, BaseException):
            raise result
        return result

    async def _exchange(self, item: Queued, futures: list[asyncio.Future[Any]],
                        timeout: float | None, send: _Send) -> list[Any]:
        timeout = self.call_timeout if timeout is None else timeout
        try:
            await send(item)
            async with asyncio.timeout(timeout):
                return await asyncio.gather(*futures, return_exceptions=True)
        except TimeoutError:
            never_sent = self._queue.discard(item)
            raise CallTimeout(f"no reply within {timeout:g}s"
                              + (" (never sent: still queued)" if never_sent else ""),
                              sent=not never_sent) from None
        finally:
            self._calls.forget(item.ids)

    async def _submit(self, item: Queued) -> None:
        link = self._link if self.state is ClientState.CONNECTED else None
        held = item.notification and self.batch_window is not None
        if (link is not None and not held and not self._queue.blocks(item.lane)
                and not self._sending.locked()):  # nothing waits, nor is being written
            with contextlib.suppress(LinkClosed):  # dropped under us: queue it
                await self._write(link, item)
                return
        if link is not None and held and not self._queue.fits(len(item.data)):
            with contextlib.suppress(LinkClosed):  # the frame waits for the next link
                await self._send_queued(link)
        dropped = self._queue.put(item)
        for old in dropped:
            self._calls.fail(old.ids, MessageDropped("pushed out of the full send queue"))
        if link is not None and self._drain is None:
            self._drain = asyncio.get_running_loop().create_task(self._drain_later())

    async def _drain_later(self) -> None:
        """After the batch window (if any), write what waits on the link open then; a link
        that is gone leaves it for the next one's flush."""
        try:
            await asyncio.sleep(self.batch_window or 0)
            link = self._link
            if self.state is ClientState.CONNECTED and link is not None:
                await self._send_queued(link)
        except LinkClosed:
            pass
        finally:
            if self._drain is asyncio.current_task():  # not one _abandon let go meanwhile
                self._drain = None

    async def _send_queued(self, link: Link) -> None:
        """Write what waits, in lane order, notifications batched when batching is on;
        what the link did not take goes back to the front. One writer at a time: two
        whose writes both failed would put back their frames in the wrong order."""
        async with self._sending:
            while taken := self._queue.take(batch=self.batch_window is not None):
                try:
                    await self._write(link, frame(taken))
                except LinkClosed:
                    self._queue.putback(taken)
                    raise

    async def _write(self, link: Link, item: Queued) -> None:
        await link.send(item.data)
        self._stats.record_out(len(item.data), self._clock())
        self._calls.mark_sent(item.ids)

    def _abandon(self, error: BaseException) -> None:
        if self._drain is not None:  # cancelled before it ran, its finally would not clear it
            self._drain.cancel()
            self._drain = None
        for item in self._queue.clear():
            self._calls.fail(item.ids, error)
        self._calls.fail_all(error)
