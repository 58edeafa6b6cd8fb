"""The client side of the tap: a gateway's events as an async iterator.

The tap is a WebSocket at ``/tap`` on the gateway's own port; its token must
carry the claim ``role=admin``. Each text message holds one or more events,
one JSON object per line (see :mod:`rtctl.gateway.tap`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError, InvalidStatus

from rtctl.client.endpoint import endpoint_url
from rtctl.client.errors import classify_status, refusal
from rtctl.exceptions import RtctlError
from rtctl.protocol import jsonrpc
from rtctl.protocol.tap import TAP_PATH, TapEvent, event_from_json

__all__ = ["TapUnavailable", "listen", "parse_events", "tap_url"]


class TapUnavailable(RtctlError):
    """The tap could not be reached, or it broke off."""


def tap_url(url: str) -> str:
    """``ws://host:port`` → ``ws://host:port/tap``; a URL with a path is used as it is."""
    parts = urlsplit(url if "://" in url else f"ws://{url}")
    if parts.path in ("", "/"):
        parts = parts._replace(path=TAP_PATH)
    return endpoint_url(urlunsplit(parts))


def parse_events(message: str | bytes) -> list[TapEvent]:
    """The events of one tap message; ``ValueError`` when a line is not one."""
    text = message.decode() if isinstance(message, bytes) else message
    return [event_from_json(jsonrpc.loads(line)) for line in text.splitlines() if line]


async def listen(url: str, *, token: str | None) -> AsyncGenerator[TapEvent, None]:
    """Yield the tap's events until the gateway closes it; the first is ``Subscribed``.

    An ``http://`` URL names a simulator's control API, whose ``/tap`` streams
    the same events as JSON lines, frames annotated with their impairments.
    A refused upgrade raises what the client SDK raises for it (an
    :class:`~rtctl.exceptions.AuthError` for 401, a one-line error naming the
    HTTP status otherwise); an unreachable gateway raises :class:`TapUnavailable`.
    """
    if url.startswith("http://"):
        async for event in _listen_simulator(url):
            yield event
        return
    target = tap_url(url)
    headers = {"Authorization": f"Bearer {token}"} if token else None
    try:
        async with connect(target, additional_headers=headers, compression=None,
                           max_size=None) as ws:
            async for message in ws:
                for event in parse_events(message):
                    yield event
    except InvalidStatus as exc:
        raise classify_status(*refusal(exc)).error from None
    except ValueError as exc:
        raise TapUnavailable(f"{target} sent something that is not a tap event: {exc}") from None
    except ConnectionClosedError as exc:
        raise TapUnavailable(f"the tap at {target} broke off: {exc}") from None
    except OSError as exc:
        raise TapUnavailable(f"cannot reach {target}: {exc.strerror or exc}") from None


async def _listen_simulator(url: str) -> AsyncGenerator[TapEvent, None]:
    """The simulator's tap: ``GET /tap`` answered with one JSON event a line until it closes."""
    parts = urlsplit(url)
    path = parts.path if parts.path not in ("", "/") else TAP_PATH
    target = f"http://{parts.netloc}{path}"
    try:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
    except OSError as exc:
        raise TapUnavailable(f"cannot reach {target}: {exc.strerror or exc}") from None
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode())
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        if head.split(" ", 2)[1:2] != ["200"]:
            raise TapUnavailable(f"{target} answered {head.splitlines()[0]!r}, not a tap")
        while line := await reader.readline():
            yield event_from_json(jsonrpc.loads(line))
    except ValueError as exc:
        raise TapUnavailable(f"{target} sent something that is not a tap event: {exc}") from None
    except (asyncio.IncompleteReadError, OSError) as exc:
        raise TapUnavailable(f"the tap at {target} broke off: {exc}") from None
    finally:
        writer.close()
