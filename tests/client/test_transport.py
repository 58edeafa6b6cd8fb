"""Both client transports keep one contract, against a scripted server on loopback.

The server below speaks RFC 6455 by hand so a test can send what no library
would: fragments with a Ping between them, a character split across frames,
invalid UTF-8, a continuation of nothing, a Close frame without a code. Apart
from its script it behaves as §5.5.1 and §7.1.1 ask a server to: it answers a
Close frame with one of the same code and then closes the TCP connection.
Each case runs over ``websockets`` and picows and must come out the same.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from rtctl.client import AuthRefused, Client, ErrorKind, ProtocolError, TransportError
from rtctl.client.errors import classify_close
from rtctl.client.link import MAX_MESSAGE_BYTES, Link, LinkClosed, OpenFailed
from rtctl.client.transport import TRANSPORTS, TransportName, opener
from rtctl.exceptions import AuthError, ConfigError
from rtctl.protocol.codes import CloseCode
from tests.conftest import TIMING

WAIT = 5 * TIMING
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA
Frame = tuple[int, bytes, bool]  # opcode, payload, FIN


def frame(opcode: int, payload: bytes = b"", fin: bool = True) -> Frame:
    return opcode, payload, fin


def close(code: int | None, reason: str = "") -> Frame:
    return frame(CLOSE, b"" if code is None else code.to_bytes(2, "big") + reason.encode())


def encode(opcode: int, payload: bytes, fin: bool) -> bytes:
    """A server frame: unmasked (RFC 6455 §5.1), the length in 7, 16 or 64 bits (§5.2)."""
    size = len(payload)
    if size < 126:
        length = bytes([size])
    elif size < 2**16:
        length = bytes([126]) + size.to_bytes(2, "big")
    else:
        length = bytes([127]) + size.to_bytes(8, "big")
    return bytes([(0x80 if fin else 0) | opcode]) + length + payload


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One client frame, unmasked (clients always mask, §5.3)."""
    head = await reader.readexactly(2)
    size = head[1] & 0x7F
    if size in (126, 127):
        size = int.from_bytes(await reader.readexactly(2 if size == 126 else 8), "big")
    mask = await reader.readexactly(4)
    data = await reader.readexactly(size)
    return head[0] & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


@dataclass
class Script:
    """What the server does with each connection."""

    frames: list[Frame] = field(default_factory=list)  # written right after the 101
    status: int = 101  # anything else refuses the upgrade with ``body``
    body: bytes = b""
    subprotocol: str = "rtctl.v1"
    hang_up: bool = False  # drop TCP after the frames, without a Close frame


class ScriptedServer:
    """A WebSocket server on 127.0.0.1, port 0, that plays :class:`Script`."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[bytes] = []
        self.received: list[tuple[int, bytes]] = []  # the client's frames
        self.handlers: set[asyncio.Task[None]] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}/ws"

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()
        if self.handlers:
            await asyncio.wait(self.handlers, timeout=WAIT)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        try:
            await self._play(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client hung up: the script is over
        finally:
            writer.close()

    async def _play(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        self.requests.append(request)
        script = self.script
        if script.status != 101:
            writer.write(b"HTTP/1.1 %d Refused\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\nConnection: close\r\n\r\n%b"
                         % (script.status, len(script.body), script.body))
            await writer.drain()
            return
        match = re.search(rb"(?im)^sec-websocket-key:\s*(\S+)", request)
        assert match is not None
        accept = base64.b64encode(hashlib.sha1(match.group(1) + GUID).digest())
        protocol = b"Sec-WebSocket-Protocol: %b\r\n" % script.subprotocol.encode()
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: %b\r\n%b\r\n"
                     % (accept, protocol if script.subprotocol else b""))
        writer.write(b"".join(encode(*f) for f in script.frames))
        await writer.drain()
        if script.hang_up:
            return
        closed = any(opcode == CLOSE for opcode, _, _ in script.frames)
        while True:
            opcode, payload = await read_frame(reader)
            self.received.append((opcode, payload))
            if opcode == CLOSE:
                if not closed:  # answer with the same code (§5.5.1), then hang up (§7.1.1)
                    writer.write(encode(CLOSE, payload[:2], True))
                    await writer.drain()
                return


Serve = Callable[[Script], Awaitable[tuple[ScriptedServer, str]]]


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> TransportName:
    name: TransportName = request.param
    return name


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start scripted servers; each is stopped after the test."""
    servers: list[ScriptedServer] = []

    async def start(script: Script) -> tuple[ScriptedServer, str]:
        server = ScriptedServer(script)
        servers.append(server)
        return server, await server.start()

    yield start
    for server in servers:
        await server.stop()


async def open_link(transport: TransportName, url: str, *, token: str | None = None,
                    max_size: int | None = MAX_MESSAGE_BYTES) -> Link:
    async with asyncio.timeout(WAIT):
        return await opener(transport)(url, token, WAIT, max_size)


async def drain(link: Link) -> list[str | bytes]:
    """Every message until the link closes."""
    messages: list[str | bytes] = []
    async with asyncio.timeout(WAIT):
        while True:
            try:
                messages.append(await link.recv())
            except LinkClosed:
                return messages


# -- open connections ---------------------------------------------------------------


async def test_fragments_are_joined_around_a_ping(serve: Serve, transport: TransportName) -> None:
    word = "héllo wörld".encode()
    split = word.index("é".encode()) + 1  # inside the two bytes of é (RFC 6455 §5.6)
    server, url = await serve(Script(frames=[
        frame(TEXT, word[:split], fin=False), frame(PING, b"p"),
        frame(CONT, word[split:8], fin=False), frame(CONT, word[8:]),
        frame(BINARY, b"\x00\x01", fin=False), frame(CONT, b"\x02"),
        frame(TEXT, b"last"), close(CloseCode.NORMAL, "done"),
    ]))
    link = await open_link(transport, url, token="tok")
    assert await drain(link) == ["héllo wörld", b"\x00\x01\x02", "last"]
    assert link.closed_with == (CloseCode.NORMAL, "done")
    await link.close()
    await server.stop()
    assert (PONG, b"p") in server.received  # §5.5.3
    opcode, payload = server.received[-1]
    assert (opcode, payload[:2]) == (CLOSE, CloseCode.NORMAL.to_bytes(2, "big"))  # §5.5.1
    request = server.requests[0].decode().lower()
    assert "authorization: bearer tok\r\n" in request
    assert "sec-websocket-protocol: rtctl.v1\r\n" in request


@pytest.mark.parametrize(("close_frame", "code", "reason", "kind"), [
    (close(CloseCode.KICKED, "kicked"), CloseCode.KICKED, "kicked", ErrorKind.SERVER),
    (close(CloseCode.TOKEN_EXPIRED, "expired"), CloseCode.TOKEN_EXPIRED, "expired",
     ErrorKind.AUTH),
    (close(CloseCode.GOING_AWAY, "restart"), CloseCode.GOING_AWAY, "restart",
     ErrorKind.TRANSPORT),
    (close(None), CloseCode.NO_STATUS, "", ErrorKind.TRANSPORT),  # no code: 1005 (§7.1.5)
], ids=["4003", "4001", "1001", "no-code"])
async def test_close_codes_come_through(serve: Serve, transport: TransportName,
                                        close_frame: Frame, code: int, reason: str,
                                        kind: ErrorKind) -> None:
    server, url = await serve(Script(frames=[frame(TEXT, b"first"), close_frame]))
    link = await open_link(transport, url)
    assert await drain(link) == ["first"]
    assert link.closed_with == (code, reason)
    assert classify_close(*link.closed_with).kind is kind
    with pytest.raises(LinkClosed):
        await link.send(b"{}")
    await link.close()
    await server.stop()
    assert server.received[-1][0] == CLOSE  # the client answered the Close frame


async def test_a_hang_up_is_an_abnormal_closure(serve: Serve, transport: TransportName) -> None:
    _, url = await serve(Script(frames=[frame(TEXT, b"bye")], hang_up=True))
    link = await open_link(transport, url)
    assert await drain(link) == ["bye"]
    assert link.closed_with == (CloseCode.ABNORMAL_CLOSURE, "")  # no Close frame (§7.1.5)
    assert classify_close(*link.closed_with).kind is ErrorKind.TRANSPORT
    await link.close()


@pytest.mark.parametrize(("frames", "code"), [
    ([frame(CONT, b"x")], CloseCode.PROTOCOL_ERROR),  # a continuation of nothing (§5.4)
    ([frame(TEXT, b"a", fin=False), frame(TEXT, b"b")], CloseCode.PROTOCOL_ERROR),
    ([frame(TEXT, b"\xff\xfe")], CloseCode.INVALID_PAYLOAD),  # not UTF-8 (§8.1)
    ([frame(TEXT, b"\xc3", fin=False), frame(CONT, b"(")], CloseCode.INVALID_PAYLOAD),
    ([frame(TEXT, b"x" * 2000)], CloseCode.MESSAGE_TOO_BIG),  # over max_size=1000
    ([frame(TEXT, b"x" * 600, fin=False), frame(CONT, b"x" * 600)], CloseCode.MESSAGE_TOO_BIG),
], ids=["orphan-continuation", "message-in-message", "bad-utf8", "bad-utf8-split",
        "too-big", "too-big-in-pieces"])
async def test_broken_messages_fail_the_connection(serve: Serve, transport: TransportName,
                                                   frames: list[Frame], code: int) -> None:
    server, url = await serve(Script(frames=[frame(TEXT, b"ok"), *frames]))
    link = await open_link(transport, url, max_size=1000)
    assert await drain(link) == ["ok"]
    assert link.closed_with[0] == code  # the client's own Close frame (§7.1.7)
    assert classify_close(*link.closed_with).kind is ErrorKind.PROTOCOL
    await link.close()
    await server.stop()
    assert server.received[-1][0] == CLOSE
    assert server.received[-1][1][:2] == code.to_bytes(2, "big")  # the client said why


async def test_close_runs_the_closing_handshake(serve: Serve, transport: TransportName) -> None:
    server, url = await serve(Script())
    link = await open_link(transport, url)
    await link.send(b'{"jsonrpc": "2.0", "method": "m"}')
    async with asyncio.timeout(WAIT):
        await link.close(CloseCode.NORMAL, "reconnect requested")
    assert link.closed_with == (CloseCode.NORMAL, "")  # the server's answer, which has no reason
    await server.stop()
    assert server.received == [(TEXT, b'{"jsonrpc": "2.0", "method": "m"}'),
                               (CLOSE, CloseCode.NORMAL.to_bytes(2, "big")
                                + b"reconnect requested")]


# -- upgrades that fail -----------------------------------------------------------------


@pytest.mark.parametrize(("status", "body", "kind", "reconnect", "error"), [
    (401, b'{"error":"unauthorized","reason":"expired","detail":"the token expired"}',
     ErrorKind.AUTH, False, AuthRefused),
    (404, b'{"error":"not_found","detail":"the WebSocket endpoint is /ws"}',
     ErrorKind.PROTOCOL, False, ProtocolError),
    (429, b'{"error":"too_many_connections_for_user"}', ErrorKind.TRANSPORT, True,
     TransportError),
    (503, b'{"error":"draining"}', ErrorKind.TRANSPORT, True, TransportError),
], ids=["401", "404", "429", "503"])
async def test_refusals_are_classified_alike(serve: Serve, transport: TransportName,
                                             status: int, body: bytes, kind: ErrorKind,
                                             reconnect: bool, error: type) -> None:
    _, url = await serve(Script(status=status, body=body))
    with pytest.raises(OpenFailed) as info:
        await open_link(transport, url)
    verdict = info.value.verdict
    assert (verdict.kind, verdict.reconnect, type(verdict.error)) == (kind, reconnect, error)


async def test_a_401_carries_the_reason_word(serve: Serve, transport: TransportName) -> None:
    _, url = await serve(Script(status=401, body=b'{"error":"unauthorized","reason":"expired",'
                                                 b'"detail":"the token expired 3m ago"}'))
    with pytest.raises(OpenFailed) as info:
        await open_link(transport, url)
    error = info.value.verdict.error
    assert isinstance(error, AuthRefused)
    assert isinstance(error, AuthError)
    assert (error.reason, error.detail) == ("expired", "the token expired 3m ago")


async def test_a_subprotocol_not_offered_fails(serve: Serve, transport: TransportName) -> None:
    _, url = await serve(Script(subprotocol="other.v9"))
    with pytest.raises(OpenFailed) as info:
        await open_link(transport, url)
    assert info.value.verdict.kind is ErrorKind.TRANSPORT  # RFC 6455 §4.1: fail it


async def test_an_unreachable_port_is_a_transport_error(transport: TransportName) -> None:
    with pytest.raises(OpenFailed) as info:
        await open_link(transport, "ws://127.0.0.1:1/ws?recover=secret")
    verdict = info.value.verdict
    assert (verdict.kind, verdict.reconnect) == (ErrorKind.TRANSPORT, True)
    assert "cannot reach ws://127.0.0.1:1/ws:" in str(verdict.error)  # not the query's token
    assert "secret" not in str(verdict.error)


def test_an_unknown_transport_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="websockets, picows"):
        Client("ws://127.0.0.1:1", transport="carrier-pigeon")  # type: ignore[arg-type]
