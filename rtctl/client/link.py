"""The seam under the client: one open WebSocket to the gateway, whichever library carries it.

The driver (:mod:`rtctl.client.connection`) needs little of a WebSocket: open
it, send a text message, receive the next message, close it with a code, and
read how it closed. :class:`Link` is that seam, so the state machine, calls,
queue, backoff and error classification are one code path over every
implementation (:mod:`rtctl.client.websockets_link`,
:mod:`rtctl.client.picows_link`; :mod:`rtctl.client.transport` picks one).

Every implementation opens the connection the same way: the token as
``Authorization: Bearer`` (RFC 6750 §2.1, :func:`upgrade_headers`), the
subprotocols it is given offered in order (RFC 6455 §1.9: ``rtctl.v1`` unless
told otherwise; a :class:`~rtctl.client.Client` offers ``rtctl.v1.binary``
first), no compression unless ``Client(compression=True)`` (websockets only),
messages up to :data:`MAX_MESSAGE_BYTES`, a keepalive Ping (§5.5.2) every
:data:`KEEPALIVE_INTERVAL` s that must be answered within
:data:`KEEPALIVE_TIMEOUT` s. And each fails the same way: an upgrade answered
with anything but 101 (§4.1) raises :func:`refused`'s :class:`OpenFailed`,
carrying :func:`~rtctl.client.errors.classify_status`'s verdict on the status
and JSON body; anything else that keeps the connection from opening (a
subprotocol chosen that was not offered among them, §4.1) raises
:func:`unreachable`'s, of kind TRANSPORT. Once open, a closed connection
raises :class:`LinkClosed` from ``send`` and ``recv``; then ``closed_with`` is
the code and reason of the Close frame received (1005 if it had no code,
§7.1.5), else of the one this side sent when it failed the connection (1002,
1007, 1009, §7.1.7), else 1006 and no reason (§7.1.5), which
:func:`~rtctl.client.errors.classify_close` reads. """

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol
from urllib.parse import urlsplit

from rtctl.client.errors import ErrorKind, TransportError, Verdict, classify_status, refusal_body
from rtctl.protocol.codes import CloseCode

__all__ = [
    "CLOSE_TIMEOUT",
    "KEEPALIVE_INTERVAL",
    "KEEPALIVE_TIMEOUT",
    "MAX_MESSAGE_BYTES",
    "Link",
    "LinkClosed",
    "OpenFailed",
    "Opener",
    "refused",
    "unreachable",
    "upgrade_headers",
]

MAX_MESSAGE_BYTES = 2**20  # websockets' default: 16 of the gateway's largest messages
KEEPALIVE_INTERVAL = 20.0  # websockets' defaults, kept for both: a dead link is found in 40 s
KEEPALIVE_TIMEOUT = 20.0
CLOSE_TIMEOUT = 10.0  # how long close() waits for the gateway to answer the Close frame


class LinkClosed(Exception):
    """The WebSocket is closed; the link's ``closed_with`` says how.

    Internal to the client: the driver turns it into a classified error.
    """


class OpenFailed(Exception):
    """The connection did not open; ``verdict`` says why and what to do.

    Internal to the client: the driver reports ``verdict.error``.
    """

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(str(verdict.error))
        self.verdict = verdict


class Link(Protocol):
    """One open WebSocket to the gateway, as the driver uses it."""

    @property
    def closed_with(self) -> tuple[int, str]:
        """Code and reason it closed with (module docstring), once it raised :class:`LinkClosed`."""

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the server chose (one of those offered), None if it chose none."""

    async def send(self, data: bytes) -> None:
        """Send ``data`` (UTF-8 JSON) as one text message; raise :class:`LinkClosed` if closed."""

    async def recv(self) -> str | bytes:
        """The next message (``str`` text, ``bytes`` binary); at the end :class:`LinkClosed`."""

    async def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Start the closing handshake (RFC 6455 §7.1.2) and wait, bounded, for it to end."""


# (url, token, open_timeout, max_size, subprotocols): max_size None lifts the limit (tools'
# one-shot calls); the subprotocols are offered in order of preference.
Opener = Callable[[str, str | None, float, int | None, Sequence[str]], Awaitable[Link]]


def upgrade_headers(token: str | None) -> dict[str, str]:
    """The token as ``Authorization: Bearer`` (RFC 6750 §2.1), or nothing without one."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def refused(status: int, body: bytes | None) -> OpenFailed:
    """The upgrade was answered with ``status`` and ``body`` instead of 101 (RFC 6455 §4.1)."""
    return OpenFailed(classify_status(status, refusal_body(body)))


def unreachable(url: str, why: BaseException | str) -> OpenFailed:
    """No WebSocket opened for another reason: refused port, timeout, a broken handshake.

    The message names ``url`` without its query: that carries credentials (``?token=``,
    ``?recover=``), and messages end up in logs.
    """
    url = urlsplit(url)._replace(query="").geturl()
    if isinstance(why, OSError) and why.strerror:
        text = why.strerror
    elif isinstance(why, BaseException):
        text = str(why) or ("timed out" if isinstance(why, TimeoutError) else type(why).__name__)
    else:
        text = why
    return OpenFailed(Verdict(ErrorKind.TRANSPORT, True,
                              TransportError(f"cannot reach {url}: {text}")))
