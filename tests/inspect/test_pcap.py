"""The pcap export: RFC 6455 framing, and a live gateway's traffic as tshark decodes it."""

from __future__ import annotations

import asyncio
import random
import subprocess
from pathlib import Path

import pytest

from rtctl import Router
from rtctl.inspect.capture import feed
from rtctl.inspect.pcap import PcapExporter, accept_key, apply_mask, ws_frame
from rtctl.protocol.tap import Disconnected, FrameSeen
from tests.conftest import TIMING, GatewayFactory, client, make_token, require_program, rpc
from tests.gateway.test_tap import until


def test_accept_key_is_the_rfc_example() -> None:
    # RFC 6455 §1.3
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.mark.parametrize(("size", "header"), [
    (0, b"\x81\x00"), (125, b"\x81\x7d"), (126, b"\x81\x7e\x00\x7e"),
    (65535, b"\x81\x7e\xff\xff"), (65536, b"\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
])
def test_frame_lengths_use_7_16_or_64_bits(size: int, header: bytes) -> None:
    frame = ws_frame(b"x" * size)
    assert frame[: len(header)] == header
    assert len(frame) == len(header) + size


def test_client_frames_are_masked() -> None:
    # RFC 6455 §5.7: a masked "Hello"
    frame = ws_frame(b"Hello", mask=bytes.fromhex("37fa213d"))
    assert frame == bytes.fromhex("818537fa213d7f9f4d5158")
    assert apply_mask(frame[6:], frame[2:6]) == b"Hello"


def tshark(*args: str) -> list[str]:
    result = subprocess.run([require_program("tshark"), *args], capture_output=True,
                            text=True, timeout=30 * TIMING, check=True)
    return [line for line in result.stdout.splitlines() if line.strip()]


async def test_a_live_gateway_exports_a_pcap_tshark_decodes(
    start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    require_program("tshark")
    router = Router()

    @router.method("shop.buy")
    def buy(item: str) -> dict[str, str]:
        return {"item": item, "pad": "x" * 5000}  # spans several segments

    gateway = await start_gateway(router)
    with gateway.tap.subscribe() as sub:
        async with client(gateway.url, make_token("alice")) as alice, \
                client(gateway.url, make_token("bob")) as bob:
            await rpc(alice, "shop.buy", ["sword"])
            await rpc(bob, "sys.echo", {"hi": "é"}, id="b1")
            await alice.close(1000, "bye")
        events = await until(sub, Disconnected)
        events += await asyncio.wait_for(until(sub, Disconnected), 5 * TIMING)
    path = tmp_path / "live.pcap"
    exporter = PcapExporter(path, rng=random.Random(1))
    feed(events, [exporter])
    exporter.close()
    assert sum(isinstance(e, FrameSeen) for e in events) == 4

    texts = tshark("-r", str(path), "-Y", "websocket.opcode == 1", "-T", "fields",
                   "-e", "websocket.payload.text")
    assert len(texts) == 4
    assert any('"method":"shop.buy"' in t for t in texts)
    assert any('"method":"sys.echo"' in t for t in texts)
    members = tshark("-r", str(path), "-o", "websocket.text_type:As json", "-Y", "websocket",
                     "-T", "fields", "-e", "json.value.string")
    assert {"shop.buy", "sys.echo"} <= {v for line in members for v in line.split(",")}
    assert tshark("-r", str(path), "-Y", "tcp.analysis.flags") == []
    streams = tshark("-r", str(path), "-Y", "http.response.code == 101", "-T", "fields",
                     "-e", "tcp.stream")
    assert len(streams) == 2
    closes = tshark("-r", str(path), "-Y", "websocket.opcode == 8", "-T", "fields",
                    "-e", "websocket.payload.close.status_code",
                    "-e", "websocket.payload.close.reason")
    assert ["1000", "bye"] in [line.split("\t") for line in closes]
