"""What each message from the gateway becomes: the base of :class:`~rtctl.client.Client`.

A text message is JSON-RPC 2.0: a Response object (§5) resolves its pending
call; a notification (§4.1) goes to the ``on_notification`` callbacks, with
its stream position when the ``sequence_of`` hook finds one. A binary message
is agreed only on ``rtctl.v1.binary`` (:mod:`rtctl.protocol.upgrade`) and goes
to the ``on_binary`` callbacks as it came. Whatever breaks the agreed protocol
(invalid JSON, a binary frame on ``rtctl.v1``, an error reply nobody can
match) is reported as a PROTOCOL verdict and the connection carries on. Every
message counts in the netstats.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from typing import Any

from rtctl.client.calls import Malformed, NotificationReceived, PendingCalls, parse_incoming
from rtctl.client.errors import ErrorKind, ProtocolError, Verdict
from rtctl.client.events import ClientEvents
from rtctl.client.netstats import NetStats
from rtctl.protocol import jsonrpc
from rtctl.protocol.upgrade import takes_binary

__all__ = ["Inbound", "SequenceOf"]

logger = logging.getLogger("rtctl.client")

SequenceOf = Callable[[str, Any], tuple[Hashable, int] | None]


class Inbound(ClientEvents):
    """The pending calls, the netstats and the routing of received messages."""

    def __init__(self, *, calls: PendingCalls, sequence_of: SequenceOf | None,
                 clock: Callable[[], float]) -> None:
        super().__init__()
        self._calls = calls
        self._sequence_of = sequence_of
        self._clock = clock
        self._stats = NetStats()

    def _received(self, message: str | bytes, subprotocol: str | None) -> None:
        """Route one message of a connection that agreed on ``subprotocol``."""
        size = len(message.encode()) if isinstance(message, str) else len(message)
        self._stats.record_in(size, self._clock())
        if isinstance(message, bytes):
            if takes_binary(subprotocol):
                self._deliver_binary(message)
            else:
                self._protocol_error(f"the gateway sent a binary frame on "
                                     f"{subprotocol or 'no subprotocol'}")
            return
        try:
            parts = parse_incoming(jsonrpc.loads(message))
        except ValueError as exc:
            parts = [Malformed(ProtocolError(f"the gateway sent invalid JSON: {exc}"))]
        for part in parts:
            if isinstance(part, Malformed):
                self._report(Verdict(ErrorKind.PROTOCOL, False, part.error))
            elif isinstance(part, NotificationReceived):
                self._notification(part)
            elif not self._calls.resolve(part) and part.error is not None and part.id is None:
                # An error nobody can match: the gateway could not read what we sent.
                self._protocol_error(f"the gateway answered {part.error!r}")

    def _notification(self, event: NotificationReceived) -> None:
        position = None
        if self._sequence_of is not None:
            try:
                position = self._sequence_of(event.method, event.params)
            except Exception:  # the game's hook must not stop the reader
                logger.exception("sequence_of failed on %s", event.method)
        if position is not None:
            stream, seq = position
            gap = self._stats.observe_sequence(stream, seq)
            event = NotificationReceived(event.method, event.params, stream, seq, gap)
        self._deliver(event)

    def _protocol_error(self, message: str) -> None:
        self._report(Verdict(ErrorKind.PROTOCOL, False, ProtocolError(message)))
