"""How the client tells the application what happened: callbacks and state waits.

Four kinds of event, each a frozen dataclass named for what happened:

* :class:`~rtctl.client.states.StateChanged` on every transition;
* :class:`~rtctl.client.calls.NotificationReceived` for each server notification
  (JSON-RPC 2.0 §4.1), for all methods or one;
* :class:`~rtctl.client.errors.Verdict` for each failure the client classified
  and handled (reconnected, reported, or stopped on);
* :class:`Recovered` each time a connection that replaced a dropped one is
  ready (:mod:`rtctl.client.recovery`): whether the session was resumed, and
  how long the client was away.

And the bytes of each binary message (on ``rtctl.v1.binary``: the frames of
:mod:`rtctl.protocol.frames`), passed as they came for the state store to read.

Callbacks run on the event loop, in registration order. A plain callback
runs inline and must not block; an ``async`` one is scheduled as a task. A
callback that raises is logged and never breaks the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from rtctl.client.calls import NotificationReceived
from rtctl.client.errors import Verdict
from rtctl.client.states import ClientState, StateChanged, StateMachine

__all__ = ["ClientEvents", "Recovered"]

logger = logging.getLogger("rtctl.client")

_R = TypeVar("_R")
_NotificationCallback = Callable[[NotificationReceived], object]


@dataclass(frozen=True, slots=True)
class Recovered:
    """A connection that replaced a dropped one ran its reconnect steps; it is about
    to report ``connected`` (queued calls already went out on it).

    ``session`` is the session id ``session.info`` gave (None when the client
    does not recover sessions, or the call failed); ``resumed`` whether it is the
    session of the connection that dropped; ``resume_error`` why not, when a
    recovery token was sent (``expired``, ``invalid``, ``wrong_user``).
    ``seconds`` runs from the drop to now: the backoff, the upgrade and the steps.
    ``failed`` counts the steps (``session.info`` included) that raised; each was
    reported to ``on_error`` or logged.
    """

    session: str | None
    resumed: bool
    resume_error: str | None
    seconds: float
    failed: int


class ClientEvents:
    """The state, its waiters and the callbacks; the base of :class:`~rtctl.client.Client`."""

    def __init__(self) -> None:
        self._sm = StateMachine()
        self._waiters: list[tuple[frozenset[ClientState], asyncio.Future[ClientState]]] = []
        self._on_state: list[Callable[[StateChanged], object]] = []
        self._on_notification: list[tuple[str | None, _NotificationCallback]] = []
        self._on_error: list[Callable[[Verdict], object]] = []
        self._on_binary: list[Callable[[bytes], object]] = []
        self._on_recovered: list[Callable[[Recovered], object]] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def state(self) -> ClientState:
        return self._sm.state

    def on_state_change(
        self, callback: Callable[[StateChanged], _R]
    ) -> Callable[[StateChanged], _R]:
        """Call ``callback(StateChanged)`` on every transition."""
        self._on_state.append(callback)
        return callback

    def on_notification(
        self, callback: Callable[[NotificationReceived], _R], method: str | None = None
    ) -> Callable[[NotificationReceived], _R]:
        """Call ``callback(NotificationReceived)`` for ``method``'s notifications, or all."""
        self._on_notification.append((method, callback))
        return callback

    def on_binary(self, callback: Callable[[bytes], _R]) -> Callable[[bytes], _R]:
        """Call ``callback(data)`` with each binary message, in order with the notifications."""
        self._on_binary.append(callback)
        return callback

    def on_error(self, callback: Callable[[Verdict], _R]) -> Callable[[Verdict], _R]:
        """Call ``callback(Verdict)`` for every classified failure the client handles."""
        self._on_error.append(callback)
        return callback

    def on_recovered(self, callback: Callable[[Recovered], _R]) -> Callable[[Recovered], _R]:
        """Call ``callback(Recovered)`` each time a connection replacing a dropped one is ready."""
        self._on_recovered.append(callback)
        return callback

    async def wait_for(self, *states: ClientState, timeout: float | None = None) -> ClientState:
        """Return once the client is in one of ``states`` (at once if it is already)."""
        if self.state in states:
            return self.state
        future: asyncio.Future[ClientState] = asyncio.get_running_loop().create_future()
        waiter = (frozenset(states), future)
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                return await future
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    def _transition(self, new: ClientState, error: BaseException | None = None) -> None:
        event = self._sm.transition(new, error)
        logger.debug("client %s -> %s%s", event.old.value, new.value,
                     f" ({error})" if error else "")
        for states, future in list(self._waiters):
            if new in states and not future.done():
                future.set_result(new)
        for callback in self._on_state:
            self._emit(callback, event)

    def _move(self, new: ClientState, error: BaseException | None) -> None:
        """Transition unless already there (RECONNECTING stays RECONNECTING)."""
        if self.state is not new:
            self._transition(new, error)

    def _report(self, verdict: Verdict) -> None:
        logger.info("client %s error: %s", verdict.kind.value, verdict.error)
        for callback in self._on_error:
            self._emit(callback, verdict)

    def _deliver(self, event: NotificationReceived) -> None:
        for method, callback in self._on_notification:
            if method is None or method == event.method:
                self._emit(callback, event)

    def _deliver_binary(self, data: bytes) -> None:
        for callback in self._on_binary:
            self._emit(callback, data)

    def _announce(self, event: Recovered) -> None:
        logger.info("client recovered in %.3fs (session %s%s)", event.seconds, event.session,
                    ", resumed" if event.resumed else "")
        for callback in self._on_recovered:
            self._emit(callback, event)

    def _emit(self, callback: Callable[[Any], object], event: object) -> None:
        """Run one callback; an async one becomes a task; a failing one is logged."""
        try:
            result = callback(event)
        except Exception:
            logger.exception("client callback %r failed on %r", callback, event)
            return
        if inspect.isawaitable(result):  # held until done, so it is not garbage-collected
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(self._callback_done)

    def _callback_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("async client callback failed", exc_info=task.exception())
