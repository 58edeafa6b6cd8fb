"""How the inspector shows events: a readable line for people, a JSON line for pipes.

:class:`Viewer` is the sink ``rtctl inspect`` prints through: every event is
paired (:mod:`~rtctl.inspect.pairing`), and the rows the filter keeps are
printed at once, one line each. The readable line (rich, coloured on a
terminal) reads::

    12:04:05.123456 → alice    3f2a1c-1  request      sys.echo         #1     52 B           [1,"a"]
    12:04:05.123689 ← alice    3f2a1c-1  result       sys.echo         #1     40 B   0.23 ms [1,"a"]

A state frame (binary on ``rtctl.v1.binary``, or a ``state.patch``
notification) shows its room, version and size and the fields it changed
(:mod:`~rtctl.inspect.states`), at the end of its line::

    state drift:1 v42←41 delta 87 B  entities.e7.x 512.25 → 515.75, +entities.e103

Other binary messages show their size and first bytes (:func:`binary_preview`).
The plain line is the event's JSON object (a binary payload in base64) with
the reply's paired ``method`` and its ``latency_us`` added, and a state
frame's ``state`` (:meth:`~rtctl.inspect.states.StateFrame.to_json`), for
``jq`` and friends.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import IO, Any

from rich.console import Console
from rich.text import Text

from rtctl.inspect.filters import Filter, parse_filter
from rtctl.inspect.pairing import Pairing, Row
from rtctl.inspect.states import StateFrames
from rtctl.protocol import jsonrpc
from rtctl.protocol.codes import CloseCode
from rtctl.protocol.tap import (
    BINARY_KIND,
    IN,
    AuthRefused,
    Connected,
    Disconnected,
    Dropped,
    FrameSeen,
    Subscribed,
    TapEvent,
)

__all__ = ["Viewer", "binary_preview", "frame_preview", "plain_line", "rich_line"]

_PREVIEW = 80  # characters of payload shown at the end of a readable line
_HEX_PREVIEW = 16  # bytes of a binary payload shown in hex
_KIND_STYLE = {"request": "cyan", "notification": "magenta", "result": "green",
               "error": "bold red", "batch": "blue", "invalid": "bold red",
               BINARY_KIND: "yellow"}


def _clock(t_us: int) -> str:
    return datetime.fromtimestamp(t_us / 1_000_000).strftime("%H:%M:%S.%f")


def _close_name(code: int) -> str:
    try:
        return CloseCode(code).name.lower().replace("_", " ")
    except ValueError:
        return "unnamed code"


def plain_line(row: Row) -> str:
    """The event as one JSON object, with a reply's request ``method`` and ``latency_us``
    (and a state frame's ``state``)."""
    obj: dict[str, Any] = row.event.to_json()
    if isinstance(row.event, FrameSeen):
        obj["method"] = row.method
        obj["latency_us"] = row.latency_us
    if row.state is not None:
        obj["state"] = row.state.to_json()
    return jsonrpc.dumps(obj).decode()


def binary_preview(data: bytes) -> str:
    """A binary message that is no state frame (or a corrupt one): its size and first bytes."""
    more = "…" if len(data) > _HEX_PREVIEW else ""
    return f"<binary {len(data)} bytes> {data[:_HEX_PREVIEW].hex(' ')}{more}"


def frame_preview(row: Row, *, whole: bool = False) -> str:
    """What a readable line shows of a frame's message; ``whole`` for a detail pane.

    A state frame: its header and changes (every change, one a line, when
    ``whole``), a corrupt binary one followed by its first bytes. Another
    binary message: :func:`binary_preview`. Text: its start.
    """
    frame = row.event
    assert isinstance(frame, FrameSeen)
    state = row.state
    if state is not None:
        text = state.text(None, lines=True) if whole else state.text()
        return f"{text} {binary_preview(frame.data)}" if state.corrupt and frame.binary else text
    if frame.binary:
        return binary_preview(frame.data)
    return frame.payload[:_PREVIEW]


def _frame_line(row: Row, frame: FrameSeen) -> Text:
    kind = frame.kind if frame.error is None or frame.kind == "batch" else f"error {frame.error}"
    latency = f"{row.latency_us / 1000:.2f} ms" if row.latency_us is not None else ""
    ident = "" if frame.id is None else f"#{frame.id}"
    return Text.assemble(
        ("→ " if frame.direction == IN else "← ", "bold"),
        (f"{frame.user:<10.10} {frame.conn:<10.10} ", "dim"),
        (f"{kind:<12.12} ", _KIND_STYLE.get(frame.kind, "")),
        (f"{row.method or '':<24.24} ", "bold"),
        f"{ident:<7.7} {frame.size:>7} B {latency:>10} ",
        (f"[{frame.impairment}] " if frame.impairment else "",
         "bold red" if (frame.impairment or "").startswith("dropped") else "bold yellow"),
        (frame_preview(row), "dim"),
    )


def rich_line(row: Row) -> Text:
    """The readable line: time, direction, user, connection, what happened."""
    event = row.event
    line = Text(_clock(event.t_us) + " ", style="dim")
    if isinstance(event, FrameSeen):
        return line.append_text(_frame_line(row, event))
    if isinstance(event, Connected):
        where = f"from {event.remote}" + (f" ({event.subprotocol})" if event.subprotocol else "")
        line.append(f"● {event.user:<10.10} {event.conn:<10.10} ", "bold green")
        return line.append(f"connected {where}")
    if isinstance(event, Disconnected):
        style = "bold" if event.code in (1000, 1001) else "bold red"
        line.append(f"○ {event.user:<10.10} {event.conn:<10.10} ", style)
        reason = f" {event.reason!r}" if event.reason else ""
        return line.append(f"disconnected {event.code} {_close_name(event.code)}{reason}")
    if isinstance(event, AuthRefused):
        line.append(f"✗ {event.user or '-':<10.10} {'':<10} ", "bold red")
        return line.append(f"refused {event.status} {event.reason} from {event.remote} "
                           f"on {event.path}")
    if isinstance(event, Dropped):
        return line.append(f"! dropped {event.count} events: this listener fell behind "
                           f"({event.total} in all)", "bold yellow")
    if isinstance(event, Subscribed):
        return line.append(f"· listening (queue of {event.queue} events)", "dim")
    return line.append(repr(event))


class Viewer:
    """Pairs, decodes, filters and prints events as they come (a sink for ``rtctl inspect``).

    ``states`` decodes state frames (:mod:`~rtctl.inspect.states`); by default
    they show their header only.
    """

    def __init__(self, *, filter: Filter | None = None, plain: bool = False,
                 file: IO[str] | None = None, states: StateFrames | None = None) -> None:
        self.filter = filter or parse_filter("")
        self.plain = plain
        self.shown = 0
        self.dropped = 0  # events the gateway dropped for this listener
        self._pairing = Pairing(states)
        self._file = file or sys.stdout
        self._console = Console(file=self._file, highlight=False)
        self._crop = self._console.is_terminal  # a file or a pipe gets whole lines

    def write(self, event: TapEvent) -> None:
        if isinstance(event, Dropped):
            self.dropped += event.count
        row = self._pairing.see(event)
        if not self.filter.matches(row):
            return
        self.shown += 1
        if self.plain:
            self._file.write(plain_line(row) + "\n")
        else:
            self._console.print(rich_line(row), no_wrap=True, soft_wrap=not self._crop,
                                overflow="ellipsis" if self._crop else "ignore")
        self._file.flush()  # live: a pipe sees each line as it happens

    def close(self) -> None:
        self._file.flush()
