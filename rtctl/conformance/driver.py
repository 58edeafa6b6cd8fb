"""The Python SDK's conformance driver: ``python -m rtctl.conformance.driver [--no-binary]``.

It does what the driver contract of docs/conformance.md asks, through ``rtctl.client``
as a game would use it: a :class:`~rtctl.client.Client` with ``recover=True`` (session
recovery, §8.3), rooms joined through :class:`~rtctl.client.Rooms` (joined again with
``since`` after a drop, §8.4), stateful rooms through
:class:`~rtctl.client.SyncedRoom` with the schema ``state.schema`` describes (§9), and
a new token fetched from ``RTCTL_TOKEN_URL`` when the gateway says the old one expired
(§8.1). ``--no-binary`` offers ``rtctl.v1`` alone, for the JSON twin of state frames.

Each behaviour is a method, so a test can make a driver that breaks one rule by
overriding it (``tests/conformance/fixtures/``).
"""

from __future__ import annotations

import asyncio
import os
import sys
import urllib.request
from typing import Any

from rtctl.client import (
    AuthRefused,
    Client,
    ClientError,
    ClientState,
    ConnectionLost,
    NotificationReceived,
    Rooms,
    ServerError,
    StateChanged,
    SyncedRoom,
)
from rtctl.state import jsonform
from rtctl.state.reflect import build

__all__ = ["Driver", "main"]

_TOKEN_TIMEOUT = 5.0  # s for one GET of the token endpoint on loopback


class Driver:
    """One run of the scripted gateway: connect, obey, report, exit."""

    def __init__(self, url: str, token_url: str, *, binary: bool = True) -> None:
        self.url, self.token_url, self.binary = url, token_url, binary
        self.client = self.make_client()
        self.rooms = Rooms(self.client)
        self.synced: dict[str, SyncedRoom[Any]] = {}
        self._finished = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def make_client(self) -> Client:
        return Client(self.url, token=self.fetch_token(), token_refresh=self.refresh,
                      binary=self.binary, recover=True)

    def fetch_token(self) -> str:
        """``GET RTCTL_TOKEN_URL``: the body is the token."""
        with urllib.request.urlopen(self.token_url, timeout=_TOKEN_TIMEOUT) as response:
            return str(response.read().decode().strip())

    async def refresh(self, refused: AuthRefused) -> str:
        """The token-refresh callback: a new token, whatever the refusal said."""
        return await asyncio.to_thread(self.fetch_token)

    async def run(self) -> None:
        client = self.client
        client.on_notification(self._spawn(self.call), "conformance.call")
        client.on_notification(self._spawn(self.sync), "conformance.sync")
        client.on_notification(self._spawn(self.report), "conformance.report")
        client.on_notification(self.done, "conformance.done")
        client.on_state_change(self.state_changed)
        try:
            await client.connect()
        except ClientError as exc:  # stopped before it was up (a close it must not retry)
            print(f"driver: the client stopped: {exc}", file=sys.stderr)
        else:
            await self._finished.wait()
        await client.close()

    def done(self, note: NotificationReceived) -> None:
        """``conformance.done``: the run is over, close and exit."""
        self._finished.set()

    def state_changed(self, change: StateChanged) -> None:
        """The client stopped for good (4009, 4003: it must not reconnect): so does the driver."""
        if change.new is ClientState.DISCONNECTED:
            self._finished.set()

    async def call(self, params: dict[str, Any]) -> None:
        method = params["method"]
        outcome: dict[str, Any] = {"method": method}
        try:
            if method == "room.join":
                outcome["result"] = await self.rooms.join(params["params"]["room"])
            else:
                outcome["result"] = await self.client.call(
                    method, params.get("params"), idempotency_key=params.get("idempotency_key"))
        except ServerError as exc:
            outcome["error"] = {"code": exc.code, "message": exc.message}
            if exc.data is not None:
                outcome["error"]["data"] = exc.data
        except ConnectionLost:
            outcome["error"] = {"code": None, "message": "connection lost"}
        await self.client.call("conformance.outcome", outcome)

    async def sync(self, params: dict[str, Any]) -> None:
        room = params["room"]
        schema = build(await self.client.call("state.schema", {"room": room}))
        synced = self.synced[room] = await SyncedRoom.join(self.client, room, schema)
        await self.client.call("conformance.outcome", {"method": "room.join",
                                                       "result": synced.joined})

    async def report(self, params: dict[str, Any]) -> None:
        store = self.synced[params["room"]].store
        await self.client.call("conformance.state", {
            "room": params["room"], "version": store.version,
            "state": jsonform.full(store.state)})

    def _spawn(self, handler: Any) -> Any:
        """A notification callback that runs ``handler(params)`` as its own task, so calls
        made for one notification never hold up the next (the ``order`` scenario)."""
        def received(note: NotificationReceived) -> None:
            task = asyncio.get_running_loop().create_task(handler(note.params))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return received


def main(argv: list[str] | None = None, driver: type[Driver] = Driver) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["--no-binary"]):
        sys.exit("usage: python -m rtctl.conformance.driver [--no-binary] "
                 "(RTCTL_URL and RTCTL_TOKEN_URL in the environment)")

    async def go() -> None:
        await driver(os.environ["RTCTL_URL"], os.environ["RTCTL_TOKEN_URL"],
                     binary=not args).run()

    asyncio.run(go())


if __name__ == "__main__":
    main()
