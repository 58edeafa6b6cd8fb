"""The raw WebSocket client the server checks drive: JSON text frames, no SDK in between.

The checks test the wire, so they speak it with the ``websockets`` library directly
(RFC 6455) and raw JSON-RPC 2.0 objects; only the names and numbers the protocol defines
(subprotocols, codes, frame layout) come from :mod:`rtctl.protocol`. Every wait is bounded
by the run's per-check timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.protocol import Event
from websockets.typing import Subprotocol

from rtctl.client.endpoint import with_query
from rtctl.config import DEFAULT_PING_INTERVAL
from rtctl.protocol.upgrade import SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX
from rtctl.tokens import issue_token

__all__ = ["Carrier", "Check", "CheckFailed", "CheckSkipped", "Conn", "Heard", "NoReply", "Probe",
           "Target", "Unreachable", "expect"]

_CLOSE_TIMEOUT = 1.0  # seconds; closing is clean-up, a check has reported by then

Carrier = Literal["header", "query", "subprotocol", "none"]  # where the token goes (§2.2)
_USERS = ("alice", "bob")


class CheckFailed(Exception):
    """The server did something the protocol forbids; the message says what was seen."""


class CheckSkipped(Exception):
    """The check cannot run against this server or with these options; the message says why."""


class Unreachable(CheckFailed):
    """The server cannot be talked to at all (refused, silent): every later check fails alike."""


class NoReply(CheckFailed):
    """A server that answered before let one wait run out: this check fails, the run goes on."""


@dataclass(slots=True)
class Heard:
    """What the run has heard from the server, across checks and connections: until one
    JSON-RPC 2.0 response arrives, a wait that runs out means the server cannot be talked
    to (silent, or not speaking JSON-RPC), not that one method is broken."""

    responded: bool = False
    other: str | None = None  # the first thing received that was not a response

    def note(self, message: Any) -> None:
        """Take one received message (a batch's responses count as responses)."""
        if any(isinstance(m, dict) and m.get("jsonrpc") == "2.0" and "id" in m
               and ("result" in m) != ("error" in m)
               for m in (message if isinstance(message, list) else [message])):
            self.responded = True
        elif self.other is None:
            self.other = repr(message)[:80]

    def silence(self, timeout: float) -> CheckFailed:
        """What a wait of ``timeout`` s that ran out means, given what was heard before."""
        if self.responded:
            return NoReply(f"nothing within {timeout:g} s")
        if self.other is None:
            return Unreachable(f"server silent: nothing received within {timeout:g} s "
                               "of a message that needs an answer")
        return Unreachable("nothing the server sent was a JSON-RPC 2.0 response "
                           f"(first: {self.other}); no answer within {timeout:g} s")


def expect(condition: bool, detail: str) -> None:
    """Fail the check with ``detail`` unless ``condition`` holds."""
    if not condition:
        raise CheckFailed(detail)


@dataclass(frozen=True, slots=True)
class Target:
    """What the run talks to and with what: ``tokens`` are (alice, bob, …)."""

    url: str
    tokens: tuple[str, ...] = ()
    jwt_secret: str | None = None
    timeout: float = 10.0
    max_message_size: int = 64 * 1024
    ping_interval: float = DEFAULT_PING_INTERVAL  # §7's default
    state_rooms: tuple[str, ...] = ("drift", "arena")
    secret_from: str = "--jwt-secret"  # where jwt_secret came from, for a report
    run_id: str = field(default_factory=lambda: format(time.time_ns() % 16**8, "08x"))

    def token(self, user: int) -> str:
        """The token of user number ``user`` (0 alice, 1 bob); skips the check without one."""
        if user < len(self.tokens):
            return self.tokens[user]
        if self.jwt_secret:
            return issue_token(self.jwt_secret, sub=f"conformance-{_USERS[user]}-{self.run_id}",
                               ttl=3600)
        raise CheckSkipped(f"needs {user + 1} tokens (--token, or --jwt-secret to mint them)")

    def describe(self, user: int) -> str:
        """Where user number ``user``'s token came from, for a report."""
        if user < len(self.tokens):
            return f"--token {user + 1} ({_USERS[user]}'s)"
        return f"the token minted for {_USERS[user]} with {self.secret_from}"

    def minted(self, *, secret_suffix: str = "", age: float = 0.0) -> str:
        """A token signed with a wrong secret (``secret_suffix``) or expired ``age`` s ago."""
        if not self.jwt_secret:
            raise CheckSkipped("needs --jwt-secret to mint a token the server must refuse")
        # Issued ``age`` s ago for 60 s: expired well past any clock-skew leeway.
        return issue_token(self.jwt_secret + secret_suffix, sub=f"conformance-alice-{self.run_id}",
                           ttl=60, now=time.time() - age if age else None)


class _Recording(ClientConnection):
    """A client connection that notes the server's pings (RFC 6455 §5.5.2) as they arrive;
    websockets still answers them itself."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pinged = asyncio.Event()

    def process_event(self, event: Event) -> None:
        if isinstance(event, Frame) and event.opcode is Opcode.PING:
            self.pinged.set()
        super().process_event(event)


class Conn:
    """One open connection: send raw frames, await replies by id, collect the rest."""

    def __init__(self, ws: _Recording, timeout: float, heard: Heard) -> None:
        self.ws = ws
        self.timeout = timeout
        self.heard = heard
        self.notifications: list[dict[str, Any]] = []  # seen while waiting for something else
        self.binaries: list[bytes] = []
        self._ids = itertools.count(1)

    @property
    def subprotocol(self) -> str | None:
        return self.ws.subprotocol

    @property
    def pinged(self) -> asyncio.Event:
        return self.ws.pinged

    async def send(self, message: str | bytes, *, text: bool = True) -> None:
        """Send one frame as is; a connection the server already closed is not an error here."""
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(message, text=text)

    async def send_json(self, message: Any) -> None:
        await self.send(json.dumps(message))

    async def _recv(self) -> str | bytes:
        try:
            data = await self.ws.recv()
        except ConnectionClosed as exc:
            raise CheckFailed(f"the server closed the connection ({exc})") from None
        return data

    async def recv_json(self) -> Any:
        """The next text message, parsed; binary messages on the way are kept in ``binaries``.
        A wait that runs out raises what :meth:`Heard.silence` says it means."""
        try:
            async with asyncio.timeout(self.timeout):
                while isinstance(data := await self._recv(), bytes):
                    self.binaries.append(data)
        except TimeoutError:
            raise self.heard.silence(self.timeout) from None
        try:
            message = json.loads(data)
        except ValueError:
            self.heard.note(data)
            raise CheckFailed(f"a text frame that is not JSON: {data[:80]!r}") from None
        self.heard.note(message)
        return message

    async def recv_binary(self) -> bytes:
        """The first binary message, kept or to come; text on the way goes to ``notifications``."""
        async with asyncio.timeout(self.timeout):
            while not self.binaries:
                data = await self._recv()
                if isinstance(data, bytes):
                    return data
                self.notifications.append(json.loads(data))
        return self.binaries.pop(0)

    async def reply(self, id: Any) -> dict[str, Any]:
        """The response with ``id``; notifications before it go to ``notifications``."""
        try:
            while True:
                message = await self.recv_json()
                if isinstance(message, dict) and "id" in message and "method" not in message:
                    expect(message.get("id") == id and type(message.get("id")) is type(id),
                           f"expected the reply to id {id!r}, got {message!r}")
                    return message
                if isinstance(message, dict) and "method" in message:
                    self.notifications.append(message)
                    continue
                raise CheckFailed(f"expected the reply to id {id!r}, got {message!r}")
        except NoReply:
            raise NoReply(f"no reply to id {id!r} within {self.timeout:g} s") from None

    async def call(self, method: str, params: Any = None, *, id: Any = None) -> dict[str, Any]:
        """Send a request and return its whole response object (result or error)."""
        id = next(self._ids) if id is None else id
        request: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": id}
        if params is not None:
            request["params"] = params
        await self.send_json(request)
        return await self.reply(id)

    async def result(self, method: str, params: Any = None) -> Any:
        """The result of a call; an error reply fails the check."""
        response = await self.call(method, params)
        expect("result" in response, f"{method} answered {response.get('error')!r}")
        return response["result"]

    async def error_code(self, method: str, params: Any = None) -> int | None:
        """The error code a call answers (None for a result)."""
        error = (await self.call(method, params)).get("error")
        return error.get("code") if isinstance(error, dict) else None

    async def notification(self, method: str,
                           match: Callable[[dict[str, Any]], bool] = lambda _: True,
                           ) -> dict[str, Any]:
        """The params of the first ``method`` notification ``match`` accepts, seen or to come."""
        for note in self.notifications:
            if note.get("method") == method and match(note.get("params") or {}):
                self.notifications.remove(note)
                return dict(note.get("params") or {})
        try:
            while True:
                message = await self.recv_json()
                if isinstance(message, dict) and message.get("method") == method:
                    params = message.get("params") or {}
                    if match(params):
                        return dict(params)
                if isinstance(message, dict) and "method" in message:
                    self.notifications.append(message)
        except NoReply:  # a notification not sent is this check's failure, not silence
            raise CheckFailed(f"no {method} notification within {self.timeout:g} s") from None

    async def closed(self) -> int | None:
        """The close code the server sent, once it closed (None for no close frame in time)."""
        try:
            async with asyncio.timeout(self.timeout):
                await self.ws.wait_closed()
        except TimeoutError:
            return None
        rcvd = self.ws.protocol.close_rcvd
        return rcvd.code if rcvd is not None else None


class Probe:
    """The connections of one check, all closed when it ends."""

    def __init__(self, target: Target, heard: Heard) -> None:
        self.target = target
        self.heard = heard
        self._open: list[Conn] = []

    async def connect(self, user: int = 0, *, carrier: Carrier = "header",
                      subprotocols: Sequence[str] = (SUBPROTOCOL,), token: str | None = None,
                      recover: str | None = None) -> Conn:
        """Open a connection as user number ``user``, the token in ``carrier`` (§2.2)."""
        own = token is None and carrier != "none"  # the user's token, not one to be refused
        token = self.target.token(user) if own else token
        url = self.target.url
        headers: dict[str, str] = {}
        offered = list(subprotocols)
        query = {"recover": recover} if recover else {}
        if carrier == "header":
            headers["Authorization"] = f"Bearer {token}"
        elif carrier == "query":
            query["token"] = str(token)
        elif carrier == "subprotocol":
            offered.append(TOKEN_SUBPROTOCOL_PREFIX + str(token))
        if query:
            url = with_query(url, **query)
        try:
            ws = await connect(url, additional_headers=headers,
                               subprotocols=[Subprotocol(p) for p in offered],
                               compression=None, open_timeout=self.target.timeout,
                               close_timeout=_CLOSE_TIMEOUT, max_size=None,
                               create_connection=_Recording)
        except InvalidStatus as exc:
            if own and exc.response.status_code == 401:  # no check can run as this user
                raise Unreachable(f"the server refused {self.target.describe(user)} "
                                  f"({_refusal(exc)})") from None
            raise
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            raise Unreachable(f"cannot connect to {self.target.url}: "
                              f"{type(exc).__name__}: {exc}") from None
        assert isinstance(ws, _Recording)
        conn = Conn(ws, self.target.timeout, self.heard)
        self._open.append(conn)
        return conn

    async def refused(self, **kwargs: Any) -> int | None:
        """The HTTP status an upgrade is refused with (§2.4), None when it was accepted."""
        try:
            await self.connect(**kwargs)
        except InvalidStatus as exc:
            return exc.response.status_code
        return None

    async def aclose(self) -> None:
        for conn in self._open:
            await conn.ws.close()
        self._open.clear()


def _refusal(exc: InvalidStatus) -> str:
    """"HTTP 401, reason expired" from a refusal's §2.4 JSON body, when it has one."""
    status = f"HTTP {exc.response.status_code}"
    try:
        reason = json.loads(exc.response.body or b"").get("reason")
    except (ValueError, AttributeError):
        return status
    return f"{status}, reason {reason}" if reason else status


@dataclass(frozen=True, slots=True)
class Check:
    """One conformance check: ``run`` returns what it saw, or raises CheckFailed/Skipped."""

    id: str
    section: str
    title: str
    run: Callable[[Probe], Awaitable[str]]
