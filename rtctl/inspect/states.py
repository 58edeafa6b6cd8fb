"""State frames as the inspector shows them: which room, which version, what changed.

A passive listener sees every frame of a connection in order, so it can keep
its own copy of each room a connection is in: a :class:`~rtctl.state.Decoder`
per (connection, room), fed from the full snapshot a join sends on
(docs/state-sync.md). Each later patch then reads as the fields it changed::

    state drift:1 v42←41 delta 87 B  entities.e7.x 512.25 → 515.75, +entities.e103, -entities.e9

Both encodings count: binary state frames (``0x01 | room_len | room | message``,
:mod:`rtctl.protocol.frames`) and ``state.patch {room, message}``
notifications, gateway to client only (clients never send state). Decoding
needs the room's schema: one for every room (``--schema``), or each room's
own, learnt from the gateway's ``state.schema`` (:mod:`rtctl.inspect.schemas`;
per room, as a room may pick its schema from its options). Without it, or before the
connection's snapshot was seen (the inspector attached mid-stream), a frame
shows its header only: room, kind, version, base and size. A frame that does
not parse shows as corrupt; the copy it failed on is left as it was.

Sans-I/O: :meth:`StateFrames.see` takes tap events in order and returns a
:class:`StateFrame` holding what the frame changed when it came, so a row
shown later (the TUI's detail pane) does not show what the copy holds now.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rtctl.inspect.changes import ShownChange, kept
from rtctl.protocol import jsonrpc
from rtctl.protocol.frames import STATE_FRAME, parse_state_frame
from rtctl.protocol.tap import OUT, Disconnected, FrameSeen, TapEvent
from rtctl.state import Decoder, Schema, StateError, VersionGap, versions

__all__ = ["MAX_ROOMS", "MAX_WAITING", "SHOWN_CHANGES", "StateFrame", "StateFrames"]

SHOWN_CHANGES = 8  # changes listed on a readable line; the rest are counted
MAX_WAITING = 1024  # messages held per copy while its schema is fetched; beyond, wait for a full
# Rooms whose fetched schema (or its absence) is remembered: a gateway makes rooms without
# end (drift:<id>), so the one learnt first is forgotten first; copies keep their decoders,
# and a new copy of a forgotten room asks again.
MAX_ROOMS = 4096
_KINDS = {0x01: "full", 0x02: "delta", 0x03: "absolute delta"}  # docs/state-sync.md


@dataclass(frozen=True, slots=True)
class StateFrame:
    """One state message as seen: its header, and what it changed when it could be decoded.

    ``changes`` read ``entities.e7.x 512.25 → 515.75``, ``+entities.e9``
    (:mod:`~rtctl.inspect.changes`); ``note`` says why there are none
    (``no schema``, ``no snapshot yet``, ``corrupt: …``). ``size`` is the state
    message's bytes, without the frame's header.
    """

    room: str | None  # None when the frame is too broken to name one
    kind: str  # full, delta, absolute delta, empty; "?" when unreadable
    version: int | None
    base: int | None
    size: int
    changes: tuple[ShownChange, ...] = ()
    note: str | None = None
    corrupt: bool = False

    def text(self, limit: int | None = SHOWN_CHANGES, *, lines: bool = False) -> str:
        """The readable form: the header, then up to ``limit`` changes (None: all),
        on the same line or (``lines``) one a line."""
        head = ["state", self.room or "?"]
        if self.version is not None:
            head.append(f"v{self.version}" + ("" if self.base is None else f"←{self.base}"))
        head += [self.kind, f"{self.size} B"]
        if self.note is not None:
            return f"{' '.join(head)}  ({self.note})"
        shown = [c.text() for c in (self.changes if limit is None else self.changes[:limit])]
        if len(shown) < len(self.changes):
            shown.append(f"… {len(self.changes) - len(shown)} more")
        if not shown:
            return " ".join(head)
        return " ".join(head) + ("\n  " + "\n  ".join(shown) if lines else "  " + ", ".join(shown))

    def to_json(self) -> dict[str, Any]:
        return {"room": self.room, "kind": self.kind, "version": self.version,
                "base": self.base, "size": self.size, "changes": [c.text() for c in self.changes],
                "note": self.note}


@dataclass(slots=True)
class _Copy:
    """One connection's copy of one room."""

    decoder: Decoder | None = None
    waiting: list[Any] | None = None  # messages since the last full, while the schema is fetched


@dataclass(slots=True)
class StateFrames:
    """Feed it every tap event in order; it decodes the state frames among them.

    ``schema`` decodes every room. Without it, ``fetching`` says each room's
    schema may still come (:meth:`learn`): its messages are held meanwhile, so
    the snapshot seen before the answer still counts. :meth:`wanted` names the
    rooms to ask about.
    """

    schema: type[Schema] | None = None
    fetching: bool = False
    _learnt: dict[str, type[Schema] | None] = field(default_factory=dict)  # room → schema
    _wanted: dict[str, None] = field(default_factory=dict)  # rooms to ask about, in order
    _asked: set[str] = field(default_factory=set)  # rooms handed out by wanted(), not learnt
    _copies: dict[str, dict[str, _Copy]] = field(default_factory=dict)  # conn → room → copy

    def see(self, event: TapEvent) -> StateFrame | None:
        """The state frame ``event`` is, or None when it is none (forgets closed connections)."""
        if isinstance(event, Disconnected):
            self._copies.pop(event.conn, None)
            return None
        if not isinstance(event, FrameSeen) or event.direction != OUT:
            return None
        if event.binary:
            return self._binary(event)
        if event.method == "state.patch" and event.kind == "notification":
            return self._json(event)
        return None

    def wanted(self) -> list[str]:
        """Rooms whose schema is awaited and not asked for yet; each once."""
        rooms = list(self._wanted)
        self._asked.update(rooms)
        self._wanted.clear()
        return rooms

    def learn(self, room: str, schema: type[Schema] | None) -> None:
        """``schema`` decodes ``room`` (None: nothing will); catch up the copies held."""
        if room not in self._learnt and len(self._learnt) >= MAX_ROOMS:
            del self._learnt[next(iter(self._learnt))]
        self._learnt[room] = schema
        self._wanted.pop(room, None)
        self._asked.discard(room)
        for rooms in self._copies.values():
            copy = rooms.get(room)
            if copy is not None and copy.waiting is not None:
                held, copy.waiting = copy.waiting, None
                if schema is not None:
                    copy.decoder = Decoder(schema)
                    for message in held:
                        with contextlib.suppress(StateError):  # as live: a bad one changes nothing
                            copy.decoder.apply(message)

    def _binary(self, event: FrameSeen) -> StateFrame | None:
        data = event.data
        if not data or data[0] != STATE_FRAME:
            return None  # another frame type: reserved, not state
        try:
            room, message = parse_state_frame(data)
        except ValueError as exc:
            return StateFrame(None, "?", None, None, len(data), note=f"corrupt: {exc}",
                              corrupt=True)
        if not message:
            return StateFrame(room, "empty", None, None, 0)
        try:
            version, base = versions(message)
        except StateError as exc:
            return StateFrame(room, "?", None, None, len(message), note=f"corrupt: {exc}",
                              corrupt=True)
        header = StateFrame(room, _KINDS[message[0]], version, base, len(message))
        return self._decode(event.conn, header, message)

    def _json(self, event: FrameSeen) -> StateFrame:
        try:
            params = jsonrpc.loads(event.payload)["params"]
            room, message = params["room"], params["message"]
            if not isinstance(room, str) or not isinstance(message, Mapping | None):
                raise TypeError
        except (ValueError, TypeError, KeyError):
            return StateFrame(None, "?", None, None, event.size, corrupt=True,
                              note="corrupt: a state.patch without params {room, message}")
        size = len(jsonrpc.dumps(message))
        if not message:
            return StateFrame(room, "empty", None, None, size)
        version, base = message.get("version"), message.get("base")
        if not isinstance(version, int) or not isinstance(base, int | None):
            return StateFrame(room, "?", None, None, size, corrupt=True,
                              note="corrupt: a state message with no integer version")
        header = StateFrame(room, "full" if "state" in message else "delta", version, base, size)
        return self._decode(event.conn, header, message)

    def _decode(self, conn: str, header: StateFrame, message: Any) -> StateFrame:
        room = header.room
        assert room is not None
        copy = self._copies.get(conn, {}).get(room)
        if copy is None or copy.decoder is None:  # a copy keeps its schema, even if forgotten
            schema = self.schema or self._learnt.get(room)
            if schema is None and not (self.fetching and room not in self._learnt):
                return _with(header, note="no schema")
            copy = self._copies.setdefault(conn, {}).setdefault(room, _Copy())
            if schema is None:
                if room not in self._asked:
                    self._wanted[room] = None
                self._hold(copy, header, message)
                return _with(header, note="schema not fetched yet")
            copy.decoder = Decoder(schema)
        try:
            changes = copy.decoder.apply(message)
        except VersionGap as gap:
            held = "no snapshot yet" if gap.expected is None else f"gap: copy at v{gap.expected}"
            return _with(header, note=held)
        except StateError as exc:
            return _with(header, note=f"corrupt: {exc}", corrupt=True)
        return _with(header, changes=kept(copy.decoder.schema, copy.decoder.state, changes))

    @staticmethod
    def _hold(copy: _Copy, header: StateFrame, message: Any) -> None:
        if header.base is None:
            copy.waiting = [message]
        elif copy.waiting is not None:
            copy.waiting.append(message)
            if len(copy.waiting) > MAX_WAITING:
                copy.waiting = None  # too far behind: the next full starts again


def _with(header: StateFrame, **what: Any) -> StateFrame:
    return StateFrame(header.room, header.kind, header.version, header.base, header.size,
                      **what)
