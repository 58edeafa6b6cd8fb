"""Binary messages on the tap: recorded whole, shown by size, exported as opcode 2."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

import pytest

from rtctl.exceptions import ConfigError
from rtctl.inspect.capture import feed
from rtctl.inspect.filters import parse_filter
from rtctl.inspect.pairing import Row
from rtctl.inspect.pcap import PcapExporter
from rtctl.inspect.recorder import Recorder, read_recording
from rtctl.inspect.view import binary_preview, plain_line, rich_line
from rtctl.protocol import jsonrpc
from rtctl.protocol.frames import state_frame
from rtctl.protocol.tap import IN, OUT, Connected, Disconnected, FrameSeen, event_from_json
from rtctl.protocol.upgrade import BINARY_SUBPROTOCOL
from tests.conftest import GatewayFactory, client, require_program
from tests.gateway.test_binary_frames import BOTH, frames_router, receive
from tests.gateway.test_tap import until
from tests.inspect.test_pcap import tshark

FRAME = state_frame("arena", b"\x00\xff" * 20)
BINARY = FrameSeen.of(7, "c-1", "alice", OUT, FRAME, binary=True)
TEXT = FrameSeen.of(8, "c-1", "alice", OUT, '{"jsonrpc":"2.0","method":"game.tick"}')


def test_a_binary_frame_is_kept_whole_in_base64() -> None:
    assert (BINARY.kind, BINARY.size, BINARY.method, BINARY.id) == ("binary", len(FRAME), None,
                                                                     None)
    assert BINARY.payload == base64.b64encode(FRAME).decode()
    assert BINARY.data == FRAME
    assert (TEXT.binary, TEXT.data) == (False, TEXT.payload.encode())


def test_a_binary_frame_survives_json_and_an_old_line_reads_as_text() -> None:
    line = jsonrpc.dumps(BINARY.to_json())
    assert json.loads(line)["binary"] is True
    assert event_from_json(jsonrpc.loads(line)) == BINARY
    old = TEXT.to_json()
    del old["binary"]  # a recording made before binary frames existed
    assert event_from_json(old) == TEXT


def test_a_binary_payload_that_is_not_base64_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    bad = {**BINARY.to_json(), "payload": "not base64!"}
    path.write_text(json.dumps(bad) + "\n")
    with pytest.raises(ConfigError, match=r"r\.jsonl:1: .*payload is not base64"):
        list(read_recording(path))


def test_a_recording_round_trips_binary_frames(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with Recorder(path) as recorder:
        recorder.write(BINARY)
        recorder.write(TEXT)
    assert list(read_recording(path)) == [BINARY, TEXT]


def test_the_readable_line_shows_size_and_first_bytes() -> None:
    text = rich_line(Row(BINARY)).plain
    assert "binary" in text
    assert "<binary 47 bytes> 01 05 61 72 65 6e 61 00 ff 00 ff 00 ff 00 ff 00…" in text
    assert binary_preview(b"\x01\x02") == "<binary 2 bytes> 01 02"
    assert binary_preview(b"") == "<binary 0 bytes> "
    assert json.loads(plain_line(Row(BINARY)))["payload"] == BINARY.payload


def test_kind_binary_filters_binary_frames_and_they_are_no_errors() -> None:
    rows = [Row(BINARY), Row(TEXT)]
    assert [parse_filter("kind=binary").matches(r) for r in rows] == [True, False]
    assert [parse_filter("errors").matches(r) for r in rows] == [False, False]


def test_the_pcap_has_binary_frames_as_opcode_2_both_ways(tmp_path: Path) -> None:
    require_program("tshark")
    path = tmp_path / "b.pcap"
    exporter = PcapExporter(path, rng=random.Random(1))
    feed([Connected(t_us=1, conn="c-1", user="alice", remote="127.0.0.1:5000",
                    local="127.0.0.1:8765", path="/ws", subprotocol=BINARY_SUBPROTOCOL),
          BINARY, FrameSeen.of(9, "c-1", "alice", IN, b"\x02\x03", binary=True), TEXT],
         [exporter])
    exporter.close()
    rows = tshark("-r", str(path), "-Y", "websocket", "-T", "fields", "-e", "websocket.opcode",
                  "-e", "websocket.mask", "-e", "data.data")
    assert [row.split("\t") for row in rows] == [
        ["2", "0", FRAME.hex()], ["2", "1", "0203"], ["1", "0", ""]]


async def test_a_live_gateways_binary_frames_reach_the_pcap(
    start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    require_program("tshark")
    gateway = await start_gateway(frames_router())
    with gateway.tap.subscribe() as sub:
        async with client(gateway.url, subprotocols=BOTH) as ws:
            await ws.send(jsonrpc.dumps(jsonrpc.encode_request("game.frames", [[3, 200]], 1)),
                          text=True)
            await receive(ws, 5)
        events = await until(sub, Disconnected)
    path = tmp_path / "live.pcap"
    exporter = PcapExporter(path, rng=random.Random(1))
    feed(events, [exporter])
    exporter.close()
    rows = tshark("-r", str(path), "-Y", "websocket.opcode == 2", "-T", "fields",
                  "-e", "data.data")
    assert rows == [state_frame("arena", b"\x00" * 3).hex(),
                    state_frame("arena", b"\x01" * 200).hex()]
    assert len(tshark("-r", str(path), "-Y", "websocket.opcode == 1")) == 4  # ticks, call, reply
