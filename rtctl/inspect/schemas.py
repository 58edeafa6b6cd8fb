"""Room schemas from the gateway, so ``rtctl inspect`` decodes state without the game's code.

A gateway answers ``state.schema {room}`` with the room's schema as data
(:func:`rtctl.state.reflect.describe`); :func:`rtctl.state.reflect.build`
makes working classes of it. :class:`SchemaFetcher` is a sink placed after the
:class:`~rtctl.inspect.view.Viewer`: when the viewer's
:class:`~rtctl.inspect.states.StateFrames` meets a room it has no schema for,
the fetcher asks, one short JSON-RPC connection per room (a room may pick its
schema from its options), with the inspector's own token (the call shows on
the tap like any other). Until the answer comes, that room's frames show
their header and are held, so the snapshot they started from still counts. A
failed fetch is logged once and the room stays header-only.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit, urlunsplit

from rtctl.client.endpoint import DEFAULT_ENDPOINT_PATH
from rtctl.client.oneshot import call_once
from rtctl.exceptions import RtctlError
from rtctl.inspect.states import StateFrames
from rtctl.protocol.tap import TAP_PATH, TapEvent
from rtctl.state.reflect import build

__all__ = ["DEFAULT_FETCH_TIMEOUT", "SchemaFetcher", "schema_endpoint"]

DEFAULT_FETCH_TIMEOUT = 10.0  # seconds for one state.schema call
logger = logging.getLogger(__name__)


def schema_endpoint(url: str) -> str | None:
    """The JSON-RPC endpoint beside a gateway's tap, or None when there is none to name.

    ``ws://host:port`` and ``ws://host:port/tap`` → ``ws://host:port/ws``; a
    simulator's control API (``http://``) or a tap at another path has none.
    """
    parts = urlsplit(url if "://" in url else f"ws://{url}")
    if parts.scheme not in ("ws", "wss") or parts.path not in ("", "/", TAP_PATH):
        return None
    return urlunsplit(parts._replace(path=DEFAULT_ENDPOINT_PATH, query="", fragment=""))


class SchemaFetcher:
    """A sink that fetches the schemas ``states`` waits for; it runs inside the event loop."""

    def __init__(self, url: str, *, token: str | None, states: StateFrames,
                 timeout: float = DEFAULT_FETCH_TIMEOUT) -> None:
        self.url = url
        self.token = token
        self.states = states
        self.timeout = timeout
        self._tasks: set[asyncio.Task[None]] = set()

    def write(self, event: TapEvent) -> None:
        for room in self.states.wanted():
            task = asyncio.get_running_loop().create_task(self._fetch(room))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _fetch(self, room: str) -> None:
        try:
            description = await call_once(self.url, "state.schema", {"room": room},
                                          token=self.token, timeout=self.timeout)
            schema = build(description)
            schema.fields()  # a description without fields fails here, not in the viewer
        except (RtctlError, TypeError) as exc:
            logger.warning("rtctl inspect: no schema for room %s, its state frames show "
                           "their header only (%s)", room, exc)
            self.states.learn(room, None)
            return
        self.states.learn(room, schema)

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
