"""The reconnecting client: a thin asyncio driver over the sans-I/O pieces.

What a game embeds::

    async with Client("ws://127.0.0.1:8765", token=token) as client:
        print(await client.call("sys.echo", [1, 2]))

The driver owns one task that connects, serves the connection and, when it
drops, decides with :mod:`rtctl.client.errors` whether to reconnect after a
delay from :mod:`rtctl.client.backoff`. Everything it decides is visible:
state changes (:mod:`rtctl.client.states`), notifications and classified
errors are delivered to callbacks.

It speaks rtctl.v1: the token in ``Authorization: Bearer`` (RFC 6750 §2.1) at
the upgrade, one JSON-RPC 2.0 request, notification or batch per text message.
It offers ``rtctl.v1.binary`` before ``rtctl.v1`` (RFC 6455 §1.9), unless told
``binary=False``: on it the gateway also sends binary frames (room state).
What each received message becomes is :mod:`rtctl.client.inbound`. The
WebSocket itself is a :class:`~rtctl.client.link.Link`: ``websockets`` by
default, picows with ``transport="picows"``; everything above it is the same
code for both.

Room for what comes next: the state store and prediction subscribe with
:meth:`Client.on_notification` and :meth:`Client.on_binary`; recovery reads
stream positions through the ``sequence_of`` hook (tracked by
:meth:`NetStats.observe_sequence`) and sends them from an ``on_state_change``
callback on reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from rtctl.client.backoff import Backoff, BackoffSchedule
from rtctl.client.calls import PendingCalls
from rtctl.client.endpoint import endpoint_url
from rtctl.client.errors import (
    DEFAULT_RETRYABLE_CODES,
    AuthRefused,
    CallTimeout,
    ClientClosed,
    ClientError,
    ConnectionLost,
    GaveUp,
    MessageDropped,
    ServerError,
    Verdict,
    check_retryable_codes,
    classify_close,
)
from rtctl.client.inbound import Inbound, SequenceOf
from rtctl.client.link import MAX_MESSAGE_BYTES, Link, LinkClosed, OpenFailed
from rtctl.client.netstats import NetSnapshot
from rtctl.client.queue import QueueCounters, Queued, QueueLimits, SendQueue
from rtctl.client.states import ACCEPTS_MESSAGES, ClientState
from rtctl.client.transport import TransportName, opener
from rtctl.protocol import jsonrpc
from rtctl.protocol.upgrade import BINARY_SUBPROTOCOL, SUBPROTOCOL

__all__ = [
    "DEFAULT_CALL_TIMEOUT",
    "DEFAULT_OPEN_TIMEOUT",
    "DEFAULT_PING_INTERVAL",
    "Client",
    "SequenceOf",
    "TokenRefresh",
]

logger = logging.getLogger("rtctl.client")

DEFAULT_CALL_TIMEOUT = 10.0  # as `rtctl call`
DEFAULT_OPEN_TIMEOUT = 10.0  # TCP + HTTP upgrade; a refused port fails at once anyway
DEFAULT_PING_INTERVAL = 5.0  # a sys.ping every 5 s keeps RTT and clock offset fresh

TokenRefresh = Callable[[AuthRefused], Awaitable[str | None] | str | None]
_Params = list[Any] | dict[str, Any] | None


class Client(Inbound):
    """A JSON-RPC 2.0 client for an rtctl gateway that reconnects by itself.

    The options are described in ``docs/client.md``; ``transport`` names the
    WebSocket library (:data:`~rtctl.client.transport.TRANSPORTS`); ``binary``
    False offers ``rtctl.v1`` alone, for state as JSON notifications.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        token_refresh: TokenRefresh | None = None,
        backoff: Backoff | None = None,
        queue: QueueLimits | None = None,
        call_timeout: float = DEFAULT_CALL_TIMEOUT,
        open_timeout: float = DEFAULT_OPEN_TIMEOUT,
        ping_interval: float | None = DEFAULT_PING_INTERVAL,
        retryable_codes: Iterable[int] = DEFAULT_RETRYABLE_CODES,
        sequence_of: SequenceOf | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        transport: TransportName = "websockets",
        binary: bool = True,
    ) -> None:
        super().__init__(calls=PendingCalls(check_retryable_codes(retryable_codes)),
                         sequence_of=sequence_of, clock=clock)
        self.url = endpoint_url(url)
        self._open = opener(transport)
        self._offer = (BINARY_SUBPROTOCOL, SUBPROTOCOL) if binary else (SUBPROTOCOL,)
        self.token = token
        self._token_refresh = token_refresh
        self._schedule = BackoffSchedule(backoff or Backoff(), rng or random.Random())
        self._queue = SendQueue(queue or QueueLimits())
        self.call_timeout = call_timeout
        self._open_timeout = open_timeout
        self._ping_interval = ping_interval
        self.last_error: BaseException | None = None
        self._link: Link | None = None
        self._runner: asyncio.Task[None] | None = None
        self._refreshed = False

    # -- what the application sees --------------------------------------------

    @property
    def queue(self) -> QueueCounters:
        """The send queue's counters: accepted, sent, rejected, dropped, high water."""
        return self._queue.counters

    @property
    def queued(self) -> int:
        """Messages waiting in the send queue now."""
        return len(self._queue)

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the open connection agreed on; None while not connected."""
        return None if self._link is None else self._link.subprotocol

    def netstats(self) -> NetSnapshot:
        """RTT, clock offset, rates and gaps as of now."""
        return self._stats.snapshot(self._clock())

    # -- connect and close --------------------------------------------------------

    async def connect(self) -> None:
        """Connect, retrying per the backoff; raise the error if the client gives up."""
        self._sm.require(frozenset({ClientState.DISCONNECTED}), "connect")
        self._schedule.reset()
        self._refreshed = False
        self.last_error = None
        self._transition(ClientState.CONNECTING)
        self._runner = asyncio.get_running_loop().create_task(self._run())
        state = await self.wait_for(ClientState.CONNECTED, ClientState.DISCONNECTED,
                                    ClientState.CLOSED)
        if state is ClientState.DISCONNECTED and self.last_error is not None:
            raise self.last_error
        self._sm.require(frozenset({ClientState.CONNECTED}), "connect")

    async def close(self) -> None:
        """Stop for good: close with 1000, fail whatever waits with ClientClosed."""
        if self.state is ClientState.CLOSED:
            return
        self._transition(ClientState.CLOSED)
        link, runner = self._link, self._runner
        if runner is not None:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        self._abandon(ClientClosed("the client was closed"))
        if link is not None:
            await link.close()

    async def reconnect(self) -> None:
        """Drop the open connection so the client reconnects now; start it again if given up."""
        if self.state is ClientState.DISCONNECTED:
            await self.connect()
        elif (link := self._link) is not None:
            await link.close(reason="reconnect requested")  # 1000: a drop the client recovers from

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- calls -------------------------------------------------------------------

    async def call(self, method: str, params: _Params = None, *,
                   timeout: float | None = None) -> Any:
        """Call ``method`` and return its result; raise :class:`ServerError` for an error reply.

        Sent at once when connected, else queued until the next connection.
        ``timeout`` (default ``call_timeout``) covers queueing and the round trip.
        """
        self._sm.require(ACCEPTS_MESSAGES, "call")
        request_id, future = self._calls.open()
        message = jsonrpc.encode_request(method, params, request_id)
        (result,) = await self._exchange(jsonrpc.dumps(message), [request_id], [future], timeout)
        if isinstance(result, BaseException):
            raise result
        return result

    async def notify(self, method: str, params: _Params = None) -> None:
        """Send a notification (§4.1): no reply, no error, ever. Queued when not connected."""
        self._sm.require(ACCEPTS_MESSAGES, "notify")
        await self._submit(Queued(jsonrpc.dumps(jsonrpc.encode_notification(method, params))))

    async def batch(self, calls: Iterable[tuple[str, _Params] | tuple[str, _Params, bool]], *,
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
        results = await self._exchange(jsonrpc.dumps(messages), ids, futures, timeout)
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

    async def _exchange(self, data: bytes, ids: list[Any], futures: list[asyncio.Future[Any]],
                        timeout: float | None) -> list[Any]:
        item = Queued(data, tuple(ids))
        timeout = self.call_timeout if timeout is None else timeout
        try:
            await self._submit(item)
            async with asyncio.timeout(timeout):
                return await asyncio.gather(*futures, return_exceptions=True)
        except TimeoutError:
            never_sent = self._queue.discard(item)
            raise CallTimeout(f"no reply within {timeout:g}s"
                              + (" (never sent: still queued)" if never_sent else ""),
                              sent=not never_sent) from None
        finally:
            self._calls.forget(ids)

    async def _submit(self, item: Queued) -> None:
        link = self._link
        if self.state is ClientState.CONNECTED and link is not None and not self._queue:
            with contextlib.suppress(LinkClosed):  # dropped under us: queue it
                await self._write(link, item)
                return
        dropped = self._queue.put(item)
        for old in dropped:
            self._calls.fail(old.ids, MessageDropped("pushed out of the full send queue"))

    async def _write(self, link: Link, item: Queued) -> None:
        await link.send(item.data)
        self._stats.record_out(len(item.data), self._clock())
        self._calls.mark_sent(item.ids)

    # -- the connection task -------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                link = await self._open(self.url, self.token, self._open_timeout,
                                        MAX_MESSAGE_BYTES, self._offer)
            except OpenFailed as exc:
                verdict = exc.verdict
            else:
                verdict = await self._serve(link)
            if not await self._recover(verdict):
                return

    async def _serve(self, link: Link) -> Verdict:
        self._link = link
        self._schedule.connected(self._clock())
        pinger: asyncio.Task[None] | None = None
        try:
            while self._queue:  # flushed before "connected", so nothing overtakes it
                item = self._queue.popleft()
                try:
                    await self._write(link, item)
                except LinkClosed:
                    self._queue.putback(item)
                    raise
            self._refreshed = False
            self._transition(ClientState.CONNECTED)
            if self._ping_interval:
                pinger = asyncio.get_running_loop().create_task(self._ping_loop())
            while True:
                self._received(await link.recv(), link.subprotocol)
        except LinkClosed:
            pass
        finally:
            self._link = None
            if pinger is not None:
                pinger.cancel()
        self._schedule.disconnected(self._clock())
        verdict = classify_close(*link.closed_with)
        self._calls.lost(ConnectionLost(f"the connection dropped: {verdict.error}"))
        return verdict

    async def _recover(self, verdict: Verdict) -> bool:
        """Report ``verdict``; wait and return True to reconnect, or stop and return False."""
        self._report(verdict)
        error = verdict.error
        refresh = self._token_refresh
        if isinstance(error, AuthRefused) and refresh is not None and not self._refreshed:
            self._refreshed = True
            try:
                token = refresh(error)
                token = await token if inspect.isawaitable(token) else token
            except Exception as exc:  # stop on the refusal; the callback's failure is its cause
                logger.exception("the token-refresh callback failed")
                token = None
                error.__cause__ = exc
            if token:
                self.token = token
                self._move(ClientState.RECONNECTING, error)
                return True
        elif verdict.reconnect:
            delay = self._schedule.next_delay()
            if delay is not None:
                self._move(ClientState.RECONNECTING, error)
                await asyncio.sleep(delay)
                return True
            error = GaveUp(f"gave up after {self._schedule.attempts} attempts: {error}")
            error.__cause__ = verdict.error
        self.last_error = error
        self._abandon(error)
        self._transition(ClientState.DISCONNECTED, error)
        return False

    async def _ping_loop(self) -> None:
        assert self._ping_interval
        while True:
            with contextlib.suppress(ClientError):  # a lost ping is no news: the reader sees drops
                await self.ping()
            await asyncio.sleep(self._ping_interval)

    # -- bookkeeping ---------------------------------------------------------------

    def _abandon(self, error: BaseException) -> None:
        for item in self._queue.clear():
            self._calls.fail(item.ids, error)
        self._calls.fail_all(error)
