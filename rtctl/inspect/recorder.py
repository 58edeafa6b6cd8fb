"""Recordings: tap events as JSON Lines, one event object a line.

A line is exactly what the tap sends (:meth:`rtctl.gateway.tap.TapEvent.to_json`),
so a recording can be read with ``jq`` as well as replayed with
``rtctl inspect --replay``. Extra keys in a line are ignored on reading, so
the ``--plain`` output of ``rtctl inspect`` replays as well.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from rtctl.exceptions import ConfigError
from rtctl.protocol import jsonrpc
from rtctl.protocol.tap import TapEvent, event_from_json

__all__ = ["Recorder", "read_recording"]


class Recorder:
    """Appends events to a JSONL file (a sink for ``rtctl inspect``); close it to flush."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.events = 0
        try:
            self._file = open(self.path, "wb")  # noqa: SIM115 -- a sink: close() closes it
        except OSError as exc:
            raise ConfigError(f"cannot write the recording {self.path}: {exc.strerror}") from None

    def write(self, event: TapEvent) -> None:
        self._file.write(jsonrpc.dumps(event.to_json()) + b"\n")
        self.events += 1

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read_recording(path: str | os.PathLike[str]) -> Iterator[TapEvent]:
    """The events of a recording in order; a bad line is a :class:`ConfigError` naming it."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as file:
            for number, line in enumerate(file, 1):
                if not line.strip():
                    continue
                try:
                    yield event_from_json(jsonrpc.loads(line))
                except (ValueError, TypeError) as exc:
                    raise ConfigError(f"{name}:{number}: not a tap event ({exc})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the recording {name}: {exc.strerror}") from None
