"""Room schemas from the gateway, so ``rtctl inspect`` decodes state without the game's code.

A gateway answers ``state.schema {room}`` with the room's schema as data
(:func:`rtctl.state.reflect.describe`); :func:`rtctl.state.reflect.build`
makes working classes of it. :class:`SchemaFetcher` is a sink placed after the
:class:`~rtctl.inspect.view.Viewer`: when the viewer's
:class:`~rtctl.inspect.states.StateFrames` meets rooms it has no schema for,
the fetcher asks about each (a room may pick its schema from its options),
through one connection with the inspector's own token, open while there is
something to ask (the calls show on the tap like any other). A gateway limits
a user's connections (8 by default, the tap's included), so one connection per
room would be refused as soon as a tap batch names more rooms. Rooms of one
type share one set of classes, built once per description.

Until the answer comes, a room's frames show their header and are held, so
the snapshot they started from still counts. A fetch refused for a reason that
may pass (the gateway busy: HTTP 429 or 503, a lost connection, a timeout) is
tried again after a backoff, :data:`FETCH_ATTEMPTS` times in all; a failed
fetch is then logged once and the room stays header-only.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit, urlunsplit

from rtctl.client import Backoff, Client, ClientError, GaveUp
from rtctl.client.endpoint import DEFAULT_ENDPOINT_PATH
from rtctl.exceptions import RtctlError
from rtctl.inspect.states import StateFrames
from rtctl.protocol import jsonrpc
from rtctl.protocol.tap import TAP_PATH, TapEvent
from rtctl.state import Schema
from rtctl.state.reflect import build

__all__ = ["DEFAULT_FETCH_TIMEOUT", "DEFAULT_RETRY", "FETCHES_AT_ONCE", "FETCH_ATTEMPTS",
           "MAX_SCHEMAS", "SchemaFetcher", "schema_endpoint"]

DEFAULT_FETCH_TIMEOUT = 10.0  # seconds for one state.schema call, or to connect
DEFAULT_RETRY = Backoff(base=0.5, cap=10.0)  # between rounds with a fetch that may pass
FETCH_ATTEMPTS = 5  # per room: with DEFAULT_RETRY, 7.5 s of a busy gateway
FETCHES_AT_ONCE = 16  # calls in flight on the connection (a gateway runs 64 by default)
MAX_SCHEMAS = 64  # descriptions whose classes are kept; the oldest go first
_NO_RETRIES = Backoff(max_attempts=0)  # the fetcher's rounds are its retries
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
                 timeout: float = DEFAULT_FETCH_TIMEOUT, retry: Backoff = DEFAULT_RETRY) -> None:
        self.url = url
        self.token = token
        self.states = states
        self.timeout = timeout
        self.retry = retry
        self._due: dict[str, int] = {}  # room → its failed fetches so far, to ask next round
        self._task: asyncio.Task[None] | None = None
        self._built: dict[bytes, type[Schema]] = {}  # description (JSON) → its root class

    def write(self, event: TapEvent) -> None:
        for room in self.states.wanted():
            self._due.setdefault(room, 0)
        if self._due and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        """Rounds until no room is due: those that may pass wait for the next one."""
        round_ = 0
        while self._due:
            rooms, self._due = self._due, {}
            again = await self._round(rooms)
            if again:
                round_ += 1
                await asyncio.sleep(self.retry.delay(round_))
                self._due = again | self._due
            else:
                round_ = 0

    async def _round(self, rooms: dict[str, int]) -> dict[str, int]:
        """Ask for each of ``rooms`` through one connection; return those to ask again."""
        client = Client(self.url, token=self.token, binary=False, call_timeout=self.timeout,
                        open_timeout=self.timeout, ping_interval=None, backoff=_NO_RETRIES)
        again: dict[str, int] = {}
        try:
            await client.connect()
        except RtctlError as exc:
            for room, failed in rooms.items():
                self._failed(room, failed, exc, again)
            return again
        at_once = asyncio.Semaphore(FETCHES_AT_ONCE)

        async def fetch(room: str) -> None:
            async with at_once:
                try:
                    description = await client.call("state.schema", {"room": room})
                    schema = self._schema(description)
                except (RtctlError, TypeError) as exc:
                    self._failed(room, rooms[room], exc, again)
                    return
            self.states.learn(room, schema)

        try:
            await asyncio.gather(*(fetch(room) for room in rooms))
        finally:
            await client.close()
        return again

    def _schema(self, description: object) -> type[Schema]:
        """The classes ``description`` builds, shared by every room that has it."""
        key = jsonrpc.dumps(description)
        schema = self._built.get(key)
        if schema is None:
            schema = build(description)
            schema.fields()  # a description without fields fails here, not in the viewer
            if len(self._built) >= MAX_SCHEMAS:
                del self._built[next(iter(self._built))]
            self._built[key] = schema
        return schema

    def _failed(self, room: str, failed: int, exc: BaseException, again: dict[str, int]) -> None:
        if isinstance(exc, GaveUp) and exc.__cause__ is not None:
            exc = exc.__cause__  # the client tries once (_NO_RETRIES): why it could not connect
        if isinstance(exc, ClientError) and exc.retryable and failed + 1 < FETCH_ATTEMPTS:
            logger.info("rtctl inspect: no schema for room %s yet (%s); asking again", room, exc)
            again[room] = failed + 1
            return
        logger.warning("rtctl inspect: no schema for room %s, its state frames show "
                       "their header only (%s)", room, exc)
        self.states.learn(room, None)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
