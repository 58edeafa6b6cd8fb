"""A raw WebSocket client over asyncio streams, for the bytes a well-behaved client never sends.

Hostile tests need requests without ``Host``, with two ``Authorization``
headers, with bytes after the request in the same packet, or a client that
stops reading; the ``websockets`` client does none of these.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from typing import Any

from rtctl.protocol import jsonrpc
from tests.conftest import TIMING, make_token

__all__ = ["RawClient", "frame", "read_frame", "upgrade_request"]


def upgrade_request(path: str = "/ws", *, host: bool = True, tokens: tuple[str, ...] | None = None,
                    extra: tuple[str, ...] = ()) -> bytes:
    """A WebSocket upgrade (RFC 6455 §4.1) with a Bearer header per token (alice's by default)."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1"]
    if host:
        lines.append("Host: 127.0.0.1")
    lines += ["Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
              "Sec-WebSocket-Version: 13"]
    lines += [f"Authorization: Bearer {t}" for t in (tokens or (make_token(),))]
    lines += list(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def frame(payload: bytes, opcode: int = 0x1, *, fin: bool = True) -> bytes:
    """One masked client frame (RFC 6455 §5.2, §5.3)."""
    mask = os.urandom(4)
    size = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if size < 126:
        head += bytes([0x80 | size])
    elif size < 1 << 16:
        head += bytes([0x80 | 126]) + size.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + size.to_bytes(8, "big")
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One unmasked server frame: its opcode and payload."""
    first, second = await reader.readexactly(2)
    size = second & 0x7F
    if size == 126:
        size = int.from_bytes(await reader.readexactly(2), "big")
    elif size == 127:
        size = int.from_bytes(await reader.readexactly(8), "big")
    return first & 0x0F, await reader.readexactly(size)


class RawClient:
    """One TCP connection to the gateway, spoken to byte by byte."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int, *, receive_buffer: int | None = None) -> RawClient:
        """Connect; a small ``receive_buffer`` (SO_RCVBUF) makes a non-reader fill up sooner."""
        sock = socket.socket()
        if receive_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        return cls(*await asyncio.open_connection(sock=sock))

    async def exchange(self, data: bytes) -> bytes:
        """Send ``data`` and read the HTTP response's head."""
        self.writer.write(data)
        return await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 5 * TIMING)

    async def upgraded(self, data: bytes | None = None) -> None:
        head = await self.exchange(data or upgrade_request())
        assert head.startswith(b"HTTP/1.1 101 "), head

    def call(self, method: str, params: Any = None, request_id: jsonrpc.RequestId = 1) -> None:
        self.writer.write(frame(jsonrpc.dumps(jsonrpc.encode_request(method, params, request_id))))

    async def reply(self) -> Any:
        opcode, payload = await asyncio.wait_for(read_frame(self.reader), 5 * TIMING)
        assert opcode == 0x1, (opcode, payload)
        return jsonrpc.loads(payload)

    def abort(self) -> None:
        self.writer.transport.abort()
