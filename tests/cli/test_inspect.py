"""``rtctl inspect`` as a user meets it: a real process watching a live gateway."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from rtctl.gateway.server import Gateway
from rtctl.inspect.recorder import read_recording
from rtctl.protocol.tap import Connected, FrameSeen
from tests.conftest import TIMING, client, make_token, rpc

ROOT = Path(__file__).resolve().parents[2]
ADMIN = make_token("ops", role="admin")


async def inspect(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rtctl", "inspect", *args, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def line(proc: asyncio.subprocess.Process) -> dict[str, Any]:
    assert proc.stdout is not None
    text = await asyncio.wait_for(proc.stdout.readline(), 20 * TIMING)
    assert text, "rtctl inspect ended early"
    result: dict[str, Any] = json.loads(text)
    return result


async def finished(*args: str) -> tuple[int, str, str]:
    proc = await inspect(*args)
    out, err = await asyncio.wait_for(proc.communicate(), 20 * TIMING)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_inspect_shows_records_and_exports_then_replays(
    gateway: Gateway, tmp_path: Path
) -> None:
    record, pcap = tmp_path / "run.jsonl", tmp_path / "run.pcap"
    base = f"ws://127.0.0.1:{gateway.port}"
    proc = await inspect(base, "--token", ADMIN, "--plain", "--filter", "dir=out",
                         "--record", str(record), "--pcap", str(pcap))
    assert (await line(proc))["event"] == "subscribed"
    async with client(gateway.url, make_token("alice")) as ws:
        await rpc(ws, "sys.echo", [1])
        await rpc(ws, "no.such", id=2)
    shown = [await line(proc), await line(proc)]
    proc.send_signal(signal.SIGINT)  # Ctrl-C: stops cleanly and still flushes the files
    _, err = await asyncio.wait_for(proc.communicate(), 20 * TIMING)
    assert proc.returncode == 0, err
    assert [(s["direction"], s["kind"], s["method"]) for s in shown] == [
        ("out", "result", "sys.echo"), ("out", "error", "no.such")]
    assert all(s["latency_us"] >= 0 for s in shown)
    assert f"recorded to {record}" in err.decode()

    events = list(read_recording(record))  # the filter shaped the screen, not the file
    assert isinstance(events[1], Connected)
    assert events[1].user == "alice"
    assert [(e.direction, e.kind) for e in events if isinstance(e, FrameSeen)] == [
        ("in", "request"), ("out", "result"), ("in", "request"), ("out", "error")]
    assert pcap.stat().st_size > 24 * 10  # a pcap header and packets

    code, out, _ = await finished("--replay", str(record), "--filter", "errors", "--plain")
    assert code == 0
    replayed = [json.loads(text) for text in out.splitlines()]
    assert [(r["event"], r.get("method")) for r in replayed] == [
        ("subscribed", None), ("frame", "no.such")]


async def test_duration_stops_by_itself(gateway: Gateway) -> None:
    code, out, err = await finished(f"ws://127.0.0.1:{gateway.port}", "--token", ADMIN,
                                    "--duration", "200ms")
    assert code == 0, err
    assert "listening" in out


@pytest.mark.parametrize(("args", "exit_code", "message"), [
    (["--token", make_token("alice")], 1,
     "HTTP 403: the tap needs a token with the claim role=admin"),
    (["--token", "junk"], 1, "malformed: the token is not a well-formed JWT"),
    (["--token", ADMIN, "--filter", "dir=up"], 2, "filter: dir is one of in, out, not 'up'"),
    (["--token", ADMIN, "--duration", "soon"], 2, "duration 'soon'"),
    ([], 2, "give a gateway URL to watch, or --replay"),
])
async def test_failures_are_one_line_refusals_exit_1_bad_usage_2(
    gateway: Gateway, args: list[str], exit_code: int, message: str
) -> None:
    url = [f"ws://127.0.0.1:{gateway.port}"] if args else []
    code, _, err = await finished(*url, *args)
    assert code == exit_code
    assert err.count("\n") == 1, err
    assert message in err


async def test_an_unreachable_gateway_is_one_line() -> None:
    code, _, err = await finished("ws://127.0.0.1:1", "--token", ADMIN)
    assert code == 1
    assert "cannot reach ws://127.0.0.1:1/tap" in err
