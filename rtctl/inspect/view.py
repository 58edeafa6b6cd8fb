"""How the inspector shows events: a readable line for people, a JSON line for pipes.

:class:`Viewer` is the sink ``rtctl inspect`` prints through: every event is
paired (:mod:`~rtctl.inspect.pairing`), and the rows the filter keeps are
printed at once, one line each. The readable line (rich, coloured on a
terminal) reads::

    12:04:05.123456 → alice    3f2a1c-1  request      sys.echo         #1     52 B           [1,"a"]
    12:04:05.123689 ← alice    3f2a1c-1  result       sys.echo         #1     40 B   0.23 ms [1,"a"]

A binary message (``rtctl.v1.binary``) shows what :func:`binary_preview`
makes of its bytes. The plain line is the event's JSON object (a binary
payload in base64) with the reply's paired ``method`` and its ``latency_us``
added, for ``jq`` and friends.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import IO, Any

from rich.console import Console
from rich.text import Text

from rtctl.inspect.filters import Filter, parse_filter
from rtctl.inspect.pairing import Pairing, Row
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

__all__ = ["Viewer", "binary_preview", "plain_line", "rich_line"]

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
    """The event as one JSON object, with a reply's request ``method`` and ``latency_us``."""
    obj: dict[str, Any] = row.event.to_json()
    if isinstance(row.event, FrameSeen):
        obj["method"] = row.method
        obj["latency_us"] = row.latency_us
    return jsonrpc.dumps(obj).decode()


def binary_preview(data: bytes) -> str:
    """How a readable line shows a binary message: its size and first bytes in hex.

    The one place binary payloads are rendered: a decoder of the frame types
    of :mod:`rtctl.protocol.frames` plugs in here.
    """
    more = "…" if len(data) > _HEX_PREVIEW else ""
    return f"<binary {len(data)} bytes> {data[:_HEX_PREVIEW].hex(' ')}{more}"


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
        (binary_preview(frame.data) if frame.binary else frame.payload[:_PREVIEW], "dim"),
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
    """Pairs, filters and prints events as they come (a sink for ``rtctl inspect``)."""

    def __init__(self, *, filter: Filter | None = None, plain: bool = False,
                 file: IO[str] | None = None) -> None:
        self.filter = filter or parse_filter("")
        self.plain = plain
        self.shown = 0
        self.dropped = 0  # events the gateway dropped for this listener
        self._pairing = Pairing()
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
