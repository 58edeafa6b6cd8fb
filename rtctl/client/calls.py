"""Calls in flight: request ids, their futures, and what comes back (JSON-RPC 2.0 §4–§6).

:class:`PendingCalls` hands out request ids (JSON-RPC 2.0 §4: the client
chooses them; here integers counting from 1, never reused in one client),
matches replies to them by id (§5: replies may arrive in any order, a batch
reply in any order too, §6) and fails them when their connection drops.

A call is *queued* until its message is written, then *sent*. When a
connection drops, sent calls fail with
:class:`~rtctl.client.errors.ConnectionLost`: the client cannot know whether
the gateway ran them, so it does not guess (at-most-once; the caller decides
whether to call again). Queued calls keep waiting and go out on the next
connection. A call *kept* (:meth:`PendingCalls.keep`: it carries an
``idempotency_key``, so the gateway answers a repeat with the first reply
instead of running it twice) does not fail: it is sent again on the next
connection (:meth:`PendingCalls.resends`).

:func:`parse_incoming` sorts what the gateway sent into replies,
notifications and things that are neither.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any

from rtctl.client.errors import ProtocolError, server_error
from rtctl.client.netstats import SequenceGap
from rtctl.client.queue import Queued
from rtctl.protocol.jsonrpc import RequestId

__all__ = ["Malformed", "NotificationReceived", "PendingCalls", "Reply", "parse_incoming"]


@dataclass(frozen=True, slots=True)
class Reply:
    """A Response object (§5): ``error`` is the Error object, or None on success."""

    id: RequestId
    result: Any = None
    error: Any = None


@dataclass(frozen=True, slots=True)
class NotificationReceived:
    """The gateway pushed ``method(params)``; ``gap`` when its sequence skipped numbers."""

    method: str
    params: Any
    stream: Hashable | None = None
    seq: int | None = None
    gap: SequenceGap | None = None


@dataclass(frozen=True, slots=True)
class Malformed:
    """Something that is neither a reply nor a notification."""

    error: ProtocolError


def _parse_one(obj: Any) -> Reply | NotificationReceived | Malformed:
    if isinstance(obj, dict) and obj.get("jsonrpc") == "2.0":
        if "id" in obj and ("result" in obj) != ("error" in obj):
            return Reply(obj["id"], obj.get("result"), obj.get("error"))
        if "id" not in obj and isinstance(obj.get("method"), str):
            return NotificationReceived(obj["method"], obj.get("params"))
    return Malformed(ProtocolError(f"not a JSON-RPC 2.0 response or notification: {obj!r:.200}"))


def parse_incoming(value: Any) -> list[Reply | NotificationReceived | Malformed]:
    """One decoded WebSocket message → its parts (a batch reply is an array, §6)."""
    if isinstance(value, list):
        if not value:
            return [Malformed(ProtocolError("an empty array is not a batch reply"))]
        return [_parse_one(item) for item in value]
    return [_parse_one(value)]


class PendingCalls:
    """The futures of calls awaiting replies, by request id."""

    def __init__(self, retryable_codes: frozenset[int]) -> None:
        self._retryable_codes = retryable_codes
        self._ids = itertools.count(1)
        self._futures: dict[RequestId, asyncio.Future[Any]] = {}
        self._sent: set[RequestId] = set()
        self._kept: dict[RequestId, Queued] = {}  # in the order they were called
        self._resend: set[RequestId] = set()  # kept, and their connection dropped

    def __len__(self) -> int:
        return len(self._futures)

    def open(self) -> tuple[int, asyncio.Future[Any]]:
        """A fresh request id and the future its reply will complete."""
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._futures[request_id] = future
        return request_id, future

    def keep(self, item: Queued) -> None:
        """Send ``item`` (one keyed call) again if its connection drops before the reply."""
        for request_id in item.ids:
            self._kept[request_id] = item

    def resends(self) -> list[Queued]:
        """The kept calls whose connection dropped, in the order they were made."""
        return [item for request_id, item in self._kept.items() if request_id in self._resend]

    def forget(self, ids: Iterable[RequestId]) -> None:
        """Stop waiting for ``ids`` (done, timed out or cancelled); late replies are ignored."""
        for request_id in ids:
            self._futures.pop(request_id, None)
            self._unmark(request_id)

    def mark_sent(self, ids: Iterable[RequestId]) -> None:
        for request_id in ids:
            if request_id in self._futures:
                self._sent.add(request_id)
                self._resend.discard(request_id)

    def _unmark(self, request_id: RequestId) -> None:
        self._sent.discard(request_id)
        self._kept.pop(request_id, None)
        self._resend.discard(request_id)

    def resolve(self, reply: Reply) -> bool:
        """Complete the call ``reply`` answers; False when no call waits for that id."""
        future = self._futures.pop(reply.id, None)
        self._unmark(reply.id)
        if future is None or future.done():
            return future is not None
        if reply.error is not None:
            future.set_exception(server_error(reply.error, self._retryable_codes))
        else:
            future.set_result(reply.result)
        return True

    def fail(self, ids: Iterable[RequestId], error: BaseException) -> None:
        """Fail the calls ``ids`` with ``error`` (their message was dropped)."""
        for request_id in ids:
            self._unmark(request_id)
            future = self._futures.pop(request_id, None)
            if future is not None and not future.done():
                future.set_exception(error)

    def lost(self, error: BaseException) -> None:
        """The connection dropped: fail every call that was sent on it, but the kept
        ones, which wait to be sent again."""
        kept = self._sent & self._kept.keys()
        self._resend |= kept
        self.fail(list(self._sent - kept), error)
        self._sent -= kept

    def fail_all(self, error: BaseException) -> None:
        """The client stopped: fail every call still waiting."""
        self.fail(list(self._futures), error)
