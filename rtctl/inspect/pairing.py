"""Pair each JSON-RPC reply with its request and time the round trip.

A reply echoes its request's ``id`` (JSON-RPC 2.0 §5), so a reply pairs with
the latest unanswered request of the same id, sent the other way on the same
connection. Batches (§6) pair element by element. Requests that are never
answered (the connection dropped) are forgotten at the disconnect, and at
most :data:`MAX_PENDING` wait per connection, oldest forgotten first.

The same pass decodes state frames (:mod:`~rtctl.inspect.states`): like
pairing, it needs every event of a connection in order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from rtctl.inspect.states import StateFrame, StateFrames
from rtctl.protocol import jsonrpc
from rtctl.protocol.tap import IN, OUT, Disconnected, FrameSeen, TapEvent, describe_message

__all__ = ["MAX_PENDING", "Pairing", "Row"]

MAX_PENDING = 4096  # unanswered requests remembered per connection

_Key = tuple[str, Any]  # (direction of the request, its id)


@dataclass(frozen=True, slots=True)
class Row:
    """An event as the inspector shows it.

    ``method`` is the frame's own, or for a reply its request's (a batch's
    are comma-separated); ``latency_us`` is a reply's time since its request
    (the slowest element's, for a batch); ``state`` is a state frame's header
    and changes.
    """

    event: TapEvent
    method: str | None = None
    latency_us: int | None = None
    state: StateFrame | None = None


class Pairing:
    """Feed it every event in order; it returns the :class:`Row` to show.

    ``states`` decodes state frames (by default header only: no schema).
    """

    def __init__(self, states: StateFrames | None = None) -> None:
        self._pending: dict[str, dict[_Key, tuple[int, str]]] = {}
        self.states = states if states is not None else StateFrames()

    def see(self, event: TapEvent) -> Row:
        row = self._pair(event)
        state = self.states.see(event)
        return row if state is None else replace(row, state=state)

    def _pair(self, event: TapEvent) -> Row:
        if isinstance(event, Disconnected):
            self._pending.pop(event.conn, None)
            return Row(event)
        if not isinstance(event, FrameSeen):
            return Row(event)
        if event.kind == "batch":
            return self._batch(event)
        if event.kind == "request":
            self._remember(event, event.id, event.method or "")
        elif event.kind in ("result", "error") and event.id is not None:
            match = self._answer(event, event.id)
            if match is not None:
                return Row(event, match[0], event.t_us - match[1])
        return Row(event, event.method)

    def _remember(self, frame: FrameSeen, request_id: Any, method: str) -> None:
        pending = self._pending.setdefault(frame.conn, {})
        key = (frame.direction, request_id)
        pending.pop(key, None)  # a reused id pairs with its latest request
        pending[key] = (frame.t_us, method)
        if len(pending) > MAX_PENDING:
            del pending[next(iter(pending))]

    def _answer(self, frame: FrameSeen, request_id: Any) -> tuple[str, int] | None:
        """The method and time of the request ``frame`` answers, if one is waiting."""
        request_direction = OUT if frame.direction == IN else IN
        found = self._pending.get(frame.conn, {}).pop((request_direction, request_id), None)
        return None if found is None else (found[1], found[0])

    def _batch(self, frame: FrameSeen) -> Row:
        try:
            items = jsonrpc.loads(frame.payload)
        except ValueError:
            return Row(frame, frame.method)
        methods: list[str] = []
        latency: int | None = None
        for item in items:
            kind, method, request_id, _ = describe_message(item)
            if kind == "request":
                self._remember(frame, request_id, method or "")
            elif kind in ("result", "error") and request_id is not None:
                match = self._answer(frame, request_id)
                if match is not None:
                    methods.append(match[0])
                    latency = max(latency or 0, frame.t_us - match[1])
        if latency is None:
            return Row(frame, frame.method)
        return Row(frame, ",".join(dict.fromkeys(methods)), latency)
