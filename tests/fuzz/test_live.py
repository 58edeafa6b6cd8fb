"""Hypothesis over a live socket, on each transport, with a bystander whose latency is checked.

Whatever frames one connection sends, it gets proper JSON-RPC answers or is
closed with a documented code (``docs/api.md``); meanwhile another user's
``sys.ping`` keeps being answered. The attacker's own timing is never asserted.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import statistics
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtctl.config import Limits
from rtctl.gateway.server import Gateway
from rtctl.protocol import jsonrpc
from tests.conftest import TIMING, GatewayFactory, client, make_token, rpc
from tests.fuzz.strategies import DOCUMENTED_CLOSES, DOCUMENTED_ERRORS, FUZZ, json_text
from tests.gateway.raw import RawClient, frame, read_frame, upgrade_request

# A bystander's p99 round trip while someone attacks. The target is 100 ms
# (met on this 2-core box, median of runs, see docs/api.md); the suite runs beside
# other work on shared cores, so the bound is twice that, times the TIMING scale.
# Unbounded batches took it to 1.8 s.
BYSTANDER_P99 = 0.200 * TIMING
SENTINEL = 424242  # the id of the call that ends each attack

_TEXT, _BINARY, _CLOSE, _PING, _PONG = 0x1, 0x2, 0x8, 0x9, 0xA

# One frame of an attack: any data or control opcode but a client's own Close
# (closing is not hostile), FIN or not, JSON-ish text or raw bytes.
frames = st.builds(
    lambda opcode, fin, payload: frame(payload, opcode, fin=fin),
    st.sampled_from([0x0, _TEXT, _TEXT, _TEXT, _BINARY, 0x3, _PING, _PONG]),
    st.booleans() | st.just(True),
    json_text.map(lambda text: text.encode()) | st.binary(max_size=64),
)


class Bystander:
    """Another user's connection, pinging while an attack runs."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.latencies: list[float] = []

    async def ping(self) -> None:
        """One timed ``sys.ping``, then a pause: a player's rate, not a flood."""
        started = time.perf_counter()
        assert (await asyncio.wait_for(rpc(self.ws, "sys.ping"), 5 * TIMING))["result"]
        self.latencies.append(time.perf_counter() - started)
        await asyncio.sleep(0.005)

    async def ping_while(self, attack: asyncio.Task[Any]) -> None:
        while not attack.done():
            await self.ping()



@contextlib.asynccontextmanager
async def bystander(gateway: Gateway) -> AsyncIterator[Bystander]:
    async with client(gateway.url, make_token("bystander")) as ws:
        yield Bystander(ws)


async def outcome(raw: RawClient) -> tuple[str, int | None]:
    """Read until the sentinel's answer ("answered") or the gateway's Close ("closed", code).

    Every message on the way must be a response with a documented error code,
    a result, or a notification.
    """
    while True:
        try:
            opcode, payload = await asyncio.wait_for(read_frame(raw.reader), 5 * TIMING)
        except asyncio.IncompleteReadError:
            return "dropped", None  # TCP closed without a Close frame: never allowed
        if opcode == _CLOSE:
            return "closed", int.from_bytes(payload[:2], "big") if payload else None
        if opcode in (_PING, _PONG):
            continue
        assert opcode == _TEXT, opcode
        answers = jsonrpc.loads(payload)
        for answer in answers if isinstance(answers, list) else [answers]:
            assert answer.get("jsonrpc") == "2.0"
            if "error" in answer:
                assert answer["error"]["code"] in DOCUMENTED_ERRORS, answer
            else:
                assert "result" in answer or "method" in answer, answer
            if answer.get("id") == SENTINEL:
                return "answered", None


@pytest.fixture
async def gateway(start_gateway: GatewayFactory) -> Gateway:
    gw: Gateway = await start_gateway(limits=Limits(max_message_size=4096, max_batch=50))
    return gw


@FUZZ
@given(attack=st.lists(frames, min_size=1, max_size=6))
async def test_any_frames_get_proper_answers_or_a_documented_close(
    gateway: Gateway, attack: list[bytes],
) -> None:
    async with bystander(gateway) as watcher:
        raw = await RawClient.connect(gateway.port)
        try:
            await raw.upgraded(upgrade_request(tokens=(make_token("attacker"),)))
            raw.writer.write(b"".join(attack))
            raw.call("sys.echo", ["sentinel"], SENTINEL)
            task = asyncio.get_running_loop().create_task(outcome(raw))
            await watcher.ping_while(task)
            how, code = await task
        finally:
            raw.abort()
    assert how in ("answered", "closed")
    if how == "closed":
        assert code in DOCUMENTED_CLOSES
    assert watcher.latencies  # the bystander was answered all along


async def client_process(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(sys.executable, "-m", "tests.fuzz.attacker",
                                                *args, stdout=asyncio.subprocess.PIPE)


async def test_a_bystander_keeps_its_latency_while_one_user_attacks(
    start_gateway: GatewayFactory,
) -> None:
    """One user floods on all its allowed connections; another pings. Both are processes
    of their own (attacker.py), so the gateway's loop carries the gateway's work alone.

    The gateway itself runs in the test process, whose heap holds whatever the tests
    before this one left: it is frozen first (as a server may after start-up), so the
    garbage collector's full passes scan what the gateway allocates, not the suite's
    leftovers (late in a full run such a pass took about 200 ms)."""
    gc.collect()
    gc.freeze()
    try:
        latencies = await _bystander_under_attack(start_gateway)
    finally:
        gc.unfreeze()
    assert len(latencies) == 100
    # Inclusive: of 100 samples the p99 is the 99th, not an extrapolation towards the max,
    # so one scheduling hiccup of a shared machine cannot decide the test on its own.
    p99 = statistics.quantiles(latencies, n=100, method="inclusive")[98]
    assert p99 < BYSTANDER_P99, sorted(latencies)[-5:]


async def _bystander_under_attack(start_gateway: GatewayFactory) -> list[float]:
    limits = Limits()
    gw = await start_gateway(limits=limits)
    attacker = await client_process("attack", gw.url, make_token("attacker"),
                                    str(limits.max_connections_per_user))
    try:
        assert attacker.stdout is not None
        ready = await asyncio.wait_for(attacker.stdout.readline(), 10 * TIMING)
        assert ready == b"attacking\n"
        watcher = await client_process("ping", gw.url, make_token("bystander"), "100")
        out, _ = await asyncio.wait_for(watcher.communicate(), 60 * TIMING)
        assert watcher.returncode == 0
        assert attacker.returncode is None  # still attacking when the last ping came back
    finally:
        attacker.terminate()
        await attacker.wait()
    latencies: list[float] = json.loads(out)
    return latencies
