"""Session recovery on the client: the recovery token, and the steps each new link runs.

On every new connection, before it is reported ``connected`` and before the
send queue is flushed, the connection task (:mod:`rtctl.client.connection`)
runs, with the link's reader already going:

1. ``session.info``, unless the client was made with ``recover=False``. Its
   ``recovery_token`` is kept (:class:`SessionTicket`) and the next upgrade
   carries it as ``?recover=TOKEN``: the gateway then gives the new connection
   the session of the old one (same id; its rooms and presence status kept
   through its grace period; presence subscriptions belong to a connection and
   are made again), or a new session and a ``resume_error`` saying why
   (``docs/api.md``). The token is fetched again by the ping loop once less
   than half of its life is left.
2. The reconnect steps registered with :meth:`Recovery.add_reconnect_step`,
   in order, each given a :class:`Reconnection` that calls straight on the new
   link: :class:`~rtctl.client.rooms.Rooms` joins its rooms again with
   ``since``, :class:`~rtctl.client.SyncedRoom` its stateful rooms. So a call
   queued while the client was away (a ``room.publish``) goes out after its
   room was joined again.

A step that raises is reported (``on_error``, or logged when it is not a
:class:`~rtctl.client.errors.ClientError`) and the connection proceeds. A step
whose work cannot be finished on this link (a call that timed out may still
run, so it cannot simply be sent again here) gives the link up with
:meth:`Reconnection.reconnect`: it is closed and the client connects again
after its backoff. A link given up, or found closed by a step's call (the
step may take that in its stride, as ``Rooms`` does), is never reported
``connected``: the next one runs every step again.
Then the calls kept for their ``idempotency_key`` that the drop interrupted
are sent again (:mod:`rtctl.client.outbound`), then the queue; then, on a
connection that replaced a dropped one, :class:`~rtctl.client.events.Recovered`
is announced, and the client reports ``connected``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeGuard

from rtctl.client.endpoint import with_query
from rtctl.client.errors import (
    ClientError,
    ConnectionLost,
    ErrorKind,
    ProtocolError,
    ServerError,
    TransportError,
    Verdict,
)
from rtctl.client.events import Recovered
from rtctl.client.link import Link
from rtctl.client.outbound import Outbound, Params
from rtctl.protocol.codes import CloseCode

__all__ = ["RECOVER_PARAM", "ReconnectStep", "Reconnection", "Recovery", "SessionTicket"]

logger = logging.getLogger("rtctl.client")

RECOVER_PARAM = "recover"  # the upgrade's query parameter that carries the recovery token
_REFRESH_AT = 0.5  # of the token's life: fetched again when less than half is left


class SessionTicket:
    """The session as ``session.info`` last described it, and its recovery token (no I/O)."""

    def __init__(self) -> None:
        self.session: str | None = None
        self.resumed = False
        self.resume_error: str | None = None
        self.token: str | None = None
        self.refresh_at = math.inf  # client clock: when to fetch the token again

    def url(self, base: str) -> str:
        """``base`` with the token as ``?recover=``, or as it is without a token."""
        return base if self.token is None else with_query(base, **{RECOVER_PARAM: self.token})

    def due(self, now: float) -> bool:
        return now >= self.refresh_at

    def connecting(self) -> None:
        """A new link, opened with the token: nothing is known of its session yet."""
        self.session, self.resumed, self.resume_error = None, False, None

    def update(self, info: Any, now: float, clock_offset: float | None) -> None:
        """Read a ``session.info`` result received at ``now``; ProtocolError if malformed.

        ``recovery_expires_at`` is on the gateway's clock (epoch ms): with the
        measured ``clock_offset`` (gateway − client, s) it is placed on ours.
        A gateway without recovery sends no token: then none is kept.
        """
        if not isinstance(info, dict):
            raise ProtocolError(f"session.info answered {info!r:.100}, not an object")
        token, expires = info.get("recovery_token"), info.get("recovery_expires_at")
        session, error = info.get("connection_id"), info.get("resume_error")
        if not isinstance(session, str) or not (error is None or isinstance(error, str)):
            raise ProtocolError("session.info: connection_id must be a string and "
                                "resume_error a string or null")
        if token is None:
            refresh_at = math.inf
        elif isinstance(token, str) and _is_number(expires):
            expires_local = expires / 1000 - (clock_offset or 0.0)
            refresh_at = now + max(0.0, expires_local - now) * _REFRESH_AT
        else:
            raise ProtocolError("session.info: recovery_token must be a string and "
                                "recovery_expires_at a number")
        self.session, self.token, self.refresh_at = session, token, refresh_at
        self.resumed, self.resume_error = info.get("resumed") is True, error


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _kind(error: ClientError) -> ErrorKind:
    """The kind a reconnect step's failure is reported as (:mod:`rtctl.client.errors`)."""
    return (ErrorKind.SERVER if isinstance(error, ServerError)
            else ErrorKind.TRANSPORT if isinstance(error, TransportError)
            else ErrorKind.PROTOCOL)


class Reconnection:
    """A new connection, not yet reported connected: calls go straight onto it.

    Its reader runs, so replies and notifications arrive as usual; the send
    queue waits until every step is done.
    """

    def __init__(self, call: Callable[..., Awaitable[Any]],
                 give_up: Callable[[ClientError], Awaitable[None]]) -> None:
        self._call = call
        self._give_up = give_up
        self._lost = False  # a call found it closed, or a step gave it up: not to be reported

    async def call(self, method: str, params: Params = None, *,
                   timeout: float | None = None) -> Any:
        """As :meth:`Client.call <rtctl.client.Client.call>`, on this connection only:
        :class:`~rtctl.client.errors.ConnectionLost` if it drops first."""
        try:
            return await self._call(method, params, timeout=timeout)
        except ConnectionLost:
            self._lost = True
            raise

    async def reconnect(self, error: ClientError) -> None:
        """Give this connection up because of ``error`` (reported to ``on_error``): it is
        closed, and the client connects again after its backoff, where every step runs
        again. For a step that cannot finish here: a call that timed out may still run
        on the gateway, so sending it again on the same connection could be refused."""
        if not self._lost:
            self._lost = True
            await self._give_up(error)


ReconnectStep = Callable[[Reconnection], Awaitable[object]]


class Recovery(Outbound):
    """The session ticket and the reconnect steps; the base of :class:`~rtctl.client.Client`."""

    def __init__(self, *, recover: bool, **outbound: Any) -> None:
        super().__init__(**outbound)
        self._resume = recover  # ask for a recovery token and send it
        self._ticket = SessionTicket()
        self._steps: list[ReconnectStep] = []
        self._dropped_at: float | None = None  # when the last connection dropped, until recovered

    @property
    def session(self) -> str | None:
        """The session id (the connection id ``session.info`` gave); None before it answers."""
        return self._ticket.session

    @property
    def resumed(self) -> bool:
        """Whether the current connection resumed the session of the one before."""
        return self._ticket.resumed

    def add_reconnect_step(self, step: ReconnectStep) -> ReconnectStep:
        """Run ``await step(Reconnection)`` on each new connection before anything queued
        is sent and before ``connected``; steps run in the order they were added."""
        self._steps.append(step)
        return step

    async def _reconnect_steps(self, link: Link) -> int | None:
        """``session.info`` and the steps, calling straight on ``link``: how many failed,
        or None if the link was lost or given up meanwhile."""
        reconnection = Reconnection(partial(self._call_on, link), partial(self._give_up, link))
        attempts: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            (repr(step), partial(step, reconnection)) for step in self._steps]
        if self._resume:
            self._ticket.connecting()
            attempts.insert(0, ("session.info", partial(self._read_ticket, reconnection.call)))
        failed = 0
        try:
            for name, attempt in attempts:
                failed += not await self._attempt(name, attempt)
                if reconnection._lost:  # even if the step took it in its stride
                    break
        except ConnectionLost:
            pass  # the link is gone: its drop is reported, the next link runs the steps
        return None if reconnection._lost else failed

    async def _give_up(self, link: Link, error: ClientError) -> None:
        """Close ``link`` for a step that cannot finish on it. With 1011 (RFC 6455 §7.4.1:
        a condition kept this end from fulfilling the request), not 1000, which the
        gateway takes as leaving: it holds the session through its grace period instead
        of ending it (no room.left, no presence change), so the next link resumes it."""
        logger.warning("a reconnect step gives the connection up: %s", error)
        self._report(Verdict(_kind(error), True, error))
        await link.close(CloseCode.INTERNAL_ERROR, "a reconnect step could not finish")

    async def _read_ticket(self, call: Callable[..., Awaitable[Any]]) -> None:
        info = await call("session.info")
        self._ticket.update(info, self._clock(), self._stats.clock_offset)

    async def _refresh_ticket(self) -> None:
        """Fetch the recovery token again once it is past half its life (the ping loop)."""
        if self._resume and self._ticket.due(self._clock()):
            await self._attempt("session.info", partial(self._read_ticket, self.call))

    async def _attempt(self, name: str, step: Callable[[], Awaitable[object]]) -> bool:
        """Run ``step``; report its failure and return False, or True."""
        try:
            await step()
        except ConnectionLost:
            raise
        except ClientError as exc:
            logger.warning("reconnect step %s failed: %s", name, exc)
            self._report(Verdict(_kind(exc), False, exc))
            return False
        except Exception:  # the game's step must not stop the connection
            logger.exception("reconnect step %s failed", name)
            return False
        return True

    def _connection_dropped(self) -> None:
        if self._dropped_at is None:  # a link that drops while recovering: still one absence
            self._dropped_at = self._clock()

    def _recovered(self, failed: int) -> None:
        """A link replacing a dropped one is ready: announce it."""
        dropped_at, self._dropped_at = self._dropped_at, None
        if dropped_at is not None:
            ticket = self._ticket
            self._announce(Recovered(ticket.session, ticket.resumed, ticket.resume_error,
                                     self._clock() - dropped_at, failed))
