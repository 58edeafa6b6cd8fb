"""The reconnecting client: a thin asyncio driver over the sans-I/O pieces.

What a game embeds::

    async with Client("ws://127.0.0.1:8765", token=token) as client:
        print(await client.call("sys.echo", [1, 2]))

The driver owns one task that connects, serves the connection and, when it
drops, decides with :mod:`rtctl.client.errors` whether to reconnect after a
delay from :mod:`rtctl.client.backoff`. Everything it decides is visible:
state changes (:mod:`rtctl.client.states`), notifications, classified
errors and recoveries are delivered to callbacks.

Each new link is read from the start, while the connection task prepares it
(:mod:`rtctl.client.recovery`: ``session.info``, then the reconnect steps,
calling straight on it), sends again the keyed calls the last drop
interrupted, flushes the send queue lane by lane (:mod:`rtctl.client.outbound`), and only
then reports ``connected``: nothing sent later overtakes any of it.

It speaks rtctl.v1: the token in ``Authorization: Bearer`` (RFC 6750 §2.1) at
the upgrade, one JSON-RPC 2.0 request, notification or batch per text message.
It offers ``rtctl.v1.binary`` before ``rtctl.v1`` (RFC 6455 §1.9), unless told
``binary=False``: on it the gateway also sends binary frames (room state).
What each received message becomes is :mod:`rtctl.client.inbound`. The
WebSocket itself is a :class:`~rtctl.client.link.Link`: ``websockets`` by
default, picows with ``transport="picows"``; everything above it is the same
code for both.

The state store and prediction subscribe with :meth:`Client.on_notification`
and :meth:`Client.on_binary`; rooms recover their message streams with a
reconnect step (:mod:`rtctl.client.rooms`).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable

from rtctl.client.backoff import Backoff, BackoffSchedule
from rtctl.client.endpoint import endpoint_url
from rtctl.client.errors import (
    DEFAULT_RETRYABLE_CODES,
    AuthRefused,
    ClientClosed,
    ClientError,
    ConnectionLost,
    GaveUp,
    Verdict,
    classify_close,
)
from rtctl.client.inbound import SequenceOf
from rtctl.client.link import MAX_MESSAGE_BYTES, Link, LinkClosed, OpenFailed
from rtctl.client.netstats import NetSnapshot
from rtctl.client.queue import QueueLimits
from rtctl.client.recovery import Recovery
from rtctl.client.states import ClientState
from rtctl.client.transport import TransportName, opener
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


class Client(Recovery):
    """A JSON-RPC 2.0 client for an rtctl gateway that reconnects by itself.

    The options are described in ``docs/client.md``; ``transport`` names the
    WebSocket library (:data:`~rtctl.client.transport.TRANSPORTS`); ``binary``
    False offers ``rtctl.v1`` alone, for state as JSON notifications;
    ``recover`` False neither asks for a recovery token nor sends one;
    ``batch_window`` (seconds) holds notifications that long to send them as
    one JSON-RPC batch frame (:mod:`rtctl.client.outbound`);
    ``compression`` offers permessage-deflate (websockets transport only).
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        token_refresh: TokenRefresh | None = None,
        backoff: Backoff | None = None,
        queue: QueueLimits | None = None,
        batch_window: float | None = None,
        call_timeout: float = DEFAULT_CALL_TIMEOUT,
        open_timeout: float = DEFAULT_OPEN_TIMEOUT,
        ping_interval: float | None = DEFAULT_PING_INTERVAL,
        retryable_codes: Iterable[int] = DEFAULT_RETRYABLE_CODES,
        sequence_of: SequenceOf | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        transport: TransportName = "websockets",
        binary: bool = True,
        recover: bool = True,
        compression: bool = False,
    ) -> None:
        super().__init__(recover=recover, retryable_codes=retryable_codes,
                         queue=queue or QueueLimits(), call_timeout=call_timeout,
                         batch_window=batch_window, sequence_of=sequence_of, clock=clock)
        self.url = endpoint_url(url)
        self._open = opener(transport, compression=compression)
        self._offer = (BINARY_SUBPROTOCOL, SUBPROTOCOL) if binary else (SUBPROTOCOL,)
        self.token = token
        self._token_refresh = token_refresh
        self._schedule = BackoffSchedule(backoff or Backoff(), rng or random.Random())
        self._open_timeout = open_timeout
        self._ping_interval = ping_interval
        self.last_error: BaseException | None = None
        self._runner: asyncio.Task[None] | None = None
        self._refreshed = False

    # -- what the application sees --------------------------------------------

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
        """Drop the open connection so the client reconnects now; start it again if given up.

        The close is a normal one (1000): the gateway ends the session at once (others see
        the player leave); the reconnect resumes its id with the recovery token and its
        rooms replay what was missed.
        """
        if self.state is ClientState.DISCONNECTED:
            await self.connect()
        elif (link := self._link) is not None:
            await link.close(reason="reconnect requested")

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- the connection task -------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                link = await self._open(self._ticket.url(self.url), self.token,
                                        self._open_timeout, MAX_MESSAGE_BYTES, self._offer)
            except OpenFailed as exc:
                verdict = exc.verdict
            else:
                verdict = await self._serve(link)
            if not await self._recover(verdict):
                return

    async def _serve(self, link: Link) -> Verdict:
        self._link = link
        self._schedule.connected(self._clock())
        loop = asyncio.get_running_loop()
        reader = loop.create_task(self._read(link), name="rtctl client reader")
        pinger: asyncio.Task[None] | None = None
        try:
            failed = await self._prepare(link, reader)
            if failed is not None:
                await self._flush(link)
                self._refreshed = False
                self._recovered(failed)
                self._transition(ClientState.CONNECTED)
                if self._ping_interval:
                    pinger = loop.create_task(self._ping_loop())
            await reader
        except LinkClosed:
            pass
        finally:
            self._link = None
            reader.cancel()
            if pinger is not None:
                pinger.cancel()
        self._schedule.disconnected(self._clock())
        self._connection_dropped()
        verdict = classify_close(*link.closed_with)
        self._calls.lost(ConnectionLost(f"the connection dropped: {verdict.error}"))
        return verdict

    async def _read(self, link: Link) -> None:
        with contextlib.suppress(LinkClosed):
            while True:
                self._received(await link.recv(), link.subprotocol)

    async def _prepare(self, link: Link, reader: asyncio.Task[None]) -> int | None:
        """Run the reconnect steps while ``reader`` reads; how many failed, or None if
        the link closed first or the steps found it closed or gave it up (a send that
        fails can come before the reader sees the end)."""
        steps = asyncio.get_running_loop().create_task(self._reconnect_steps(link))
        try:
            await asyncio.wait((steps, reader), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not steps.done():  # the link closed under them, or the client is closing
                steps.cancel()
                await asyncio.wait((steps,))
        return None if reader.done() or steps.cancelled() else steps.result()

    async def _flush(self, link: Link) -> None:
        """Send the keyed calls the last drop interrupted, then the queue in lane order."""
        for item in self._calls.resends():
            await self._write(link, item)
        await self._send_queued(link)

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
                await self._refresh_ticket()
            await asyncio.sleep(self._ping_interval)
