"""permessage-deflate (RFC 7692) on the websockets transport: negotiated when on, a threshold.

The client offers deflate through a :class:`Recorder`: its extension notes each
data frame as it came off the wire (RSV1, payload length) before decoding it,
so the tests see what the gateway sent, not what websockets made of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
)
from websockets.frames import CTRL_OPCODES, Frame
from websockets.typing import ExtensionParameter

from rtctl.config import Routing
from rtctl.protocol import jsonrpc
from tests.cli.test_cli import Served, rtctl
from tests.conftest import SECRET, GatewayFactory, client, rpc

PICOWS_REFUSAL = "permessage-deflate needs the websockets transport; picows does not offer it"

# Repeated keys and numbers, as in a state patch: deflate shrinks it several times over.
BIG = [{"id": f"e{i}", "x": i * 1.5, "y": i * 2.25, "hp": 100} for i in range(60)]
SMALL = [1, 2]
MIDDLE = ["chat line " * 10]  # a reply of about 150 bytes


@pytest.fixture
def transport() -> str:
    """Only the websockets driver offers deflate (picows is refused at config time)."""
    return "websockets"


class _Seen(PerMessageDeflate):
    """Notes each data frame's RSV1 and wire length, then decodes it as usual."""

    frames: list[tuple[bool, int]]

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        if frame.opcode not in CTRL_OPCODES:
            self.frames.append((frame.rsv1, len(frame.data)))
        return super().decode(frame, max_size=max_size)


class Recorder(ClientPerMessageDeflateFactory):
    """Offers deflate like websockets' client; ``frames`` is what arrived, as sent."""

    def __init__(self) -> None:
        super().__init__(compress_settings={"memLevel": 5})
        self.frames: list[tuple[bool, int]] = []

    def process_response_params(self, params: Sequence[ExtensionParameter],
                                accepted_extensions: Sequence[Extension]) -> PerMessageDeflate:
        agreed = super().process_response_params(params, accepted_extensions)
        seen = _Seen(agreed.remote_no_context_takeover, agreed.local_no_context_takeover,
                     agreed.remote_max_window_bits, agreed.local_max_window_bits,
                     agreed.compress_settings)
        seen.frames = self.frames
        return seen


async def echo_frames(url: str, *params: Any) -> tuple[list[tuple[bool, int]], list[int]]:
    """Echo each of ``params``: how each reply came on the wire, and its size uncompressed."""
    recorder = Recorder()
    sizes = []
    async with client(url, extensions=[recorder]) as ws:
        for number, value in enumerate(params, 1):
            reply = await rpc(ws, "sys.echo", value, id=number)
            assert reply == jsonrpc.encode_result(number, value)  # content unchanged
            sizes.append(len(jsonrpc.dumps(reply)))
    return recorder.frames, sizes


async def test_deflate_is_negotiated_when_on_with_a_bounded_window(
        start_gateway: GatewayFactory) -> None:
    gateway = await start_gateway(routing=Routing(compression=True))
    async with client(gateway.url, extensions=[Recorder()]) as ws:
        agreed = ws.response.headers["Sec-WebSocket-Extensions"]
        assert agreed.startswith("permessage-deflate")
        assert "server_max_window_bits=12" in agreed  # 16 KiB + 16 KiB of zlib state
        assert "client_max_window_bits=12" in agreed
        assert await rpc(ws, "sys.echo", BIG) == jsonrpc.encode_result(1, BIG)


async def test_deflate_is_not_negotiated_when_off(start_gateway: GatewayFactory) -> None:
    gateway = await start_gateway()
    recorder = Recorder()
    async with client(gateway.url, extensions=[recorder]) as ws:
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        assert ws.protocol.extensions == []
        assert await rpc(ws, "sys.echo", BIG) == jsonrpc.encode_result(1, BIG)
    assert recorder.frames == []  # nothing went through a decoder


async def test_big_messages_go_compressed_and_small_ones_as_they_are(
        start_gateway: GatewayFactory) -> None:
    gateway = await start_gateway(routing=Routing(compression=True))
    frames, sizes = await echo_frames(gateway.url, BIG, SMALL, MIDDLE, BIG)
    assert sizes[1] < sizes[2] < 256 < sizes[0]  # the default threshold lies between
    (big_rsv1, big_wire), small, middle, (again_rsv1, again_wire) = frames
    assert (big_rsv1, again_rsv1) == (True, True)
    assert big_wire < sizes[0] / 3
    assert again_wire < big_wire / 3  # context takeover (RFC 7692 §7.1.1): it refers back
    assert [small, middle] == [(False, sizes[1]), (False, sizes[2])]  # RFC 7692 §6.1


async def test_the_threshold_and_level_are_the_configured_ones(
        start_gateway: GatewayFactory) -> None:
    low = await start_gateway(routing=Routing(compression=True, compression_threshold=64))
    frames, sizes = await echo_frames(low.url, SMALL, MIDDLE)
    assert sizes[0] < 64 < sizes[1]
    assert frames[0] == (False, sizes[0])
    assert frames[1][0]
    assert frames[1][1] < sizes[1]
    stored = await start_gateway(routing=Routing(compression=True, compression_level=0))
    frames, sizes = await echo_frames(stored.url, BIG)
    assert frames[0][0]
    assert frames[0][1] > sizes[0]  # level 0: stored blocks (RFC 1951 §3.2.4), no smaller


def test_serve_refuses_picows_with_compression_in_one_line() -> None:
    result = rtctl("serve", "--port", "0", "--jwt-secret", SECRET, "--transport", "picows",
                   "--compression")
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    assert PICOWS_REFUSAL in result.stderr.strip().splitlines()[-1]


async def test_serve_flags_reach_the_socket() -> None:
    served = Served("--jwt-secret", SECRET, "--drain", "0", "--compression",
                    "--compression-threshold", "64B")
    try:
        frames, sizes = await echo_frames(f"{served.base_url}/ws", SMALL, MIDDLE)
    finally:
        served.stop()
    assert frames[0] == (False, sizes[0])
    assert frames[1][0]
