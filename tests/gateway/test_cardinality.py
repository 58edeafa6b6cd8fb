"""``/metrics`` stays bounded whatever clients do: 10,000 users, made-up methods, odd close codes.

Every series a label value adds lives in Prometheus for as long as it keeps its
data, so a value a client chooses (its user id, a method name it invents, its
own close code) must never become a label. 10,000 distinct users (a JWT ``sub``
each) connect, call a built-in method, a method named after themselves (which
the router does not know) and a batch of random names, and close with a code of
their own choosing (3000-4999, RFC 6455 §7.4.2). The bound: after the first
half the scrape has at most :data:`NEW_SERIES` series more than before anyone
connected, and the second half adds none; no label value holds a user id.
"""

from __future__ import annotations

import asyncio
import random
import struct

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rtctl.config import Heartbeat
from rtctl.gateway.server import Gateway
from rtctl.protocol import jsonrpc
from rtctl.protocol.codes import CloseCode
from tests.conftest import TIMING, GatewayFactory, make_token
from tests.gateway.raw import RawClient, frame, read_frame, upgrade_request

USERS = 10_000
# Connections under way at once: more only queue in the listen backlog, and a SYN it
# drops is retried a second later (measured: 200 at once took longer than 32).
CONCURRENCY = 32
# Measured 40: two methods' histograms (18 series each), and sys.ping's ok, -32602, -32603
# and -32050 (<unknown>'s ok and -32601, the error codes and the close codes read 0 from
# the start); the rest is headroom.
NEW_SERIES = 60
# Codes a client may choose (RFC 6455 §7.4.2) that rtctl gives no meaning: all are "other".
CLIENT_CODES = [code for code in range(3000, 5000) if code not in set(CloseCode)]


@pytest.fixture
def transport() -> str:
    """One transport: what is counted does not depend on it, and the run is the suite's
    longest (the labels are made in the dispatcher and the gateway, not in a driver)."""
    return "picows"


def series(gateway: Gateway) -> list[tuple[str, dict[str, str]]]:
    """Every sample of a scrape but the process' own: its name and labels."""
    return [(sample.name, sample.labels)
            for family in text_string_to_metric_families(gateway.metrics.render().decode())
            for sample in family.samples if not sample.name.startswith("process_")]


async def visit(port: int, user: str, rng: random.Random) -> None:
    """One user's whole connection: upgrade, three calls (one a batch), a close of its own."""
    raw = await RawClient.connect(port)
    await raw.upgraded(upgrade_request(tokens=(make_token(sub=user),)))
    made_up = [jsonrpc.encode_request(f"{rng.getrandbits(64):x}.{i}", None, 10 + i)
               for i in range(3)]
    raw.call("sys.ping", None, 1)
    raw.call(f"{user}.move", {"to": user}, 2)
    raw.writer.write(frame(jsonrpc.dumps(made_up)))
    replies = [await raw.reply() for _ in range(3)]
    assert "result" in replies[0], replies[0]
    assert replies[1]["error"]["code"] == -32601, replies[1]
    assert [r["error"]["code"] for r in replies[2]] == [-32601] * 3, replies[2]
    raw.writer.write(frame(struct.pack("!H", rng.choice(CLIENT_CODES)), opcode=0x8))
    opcode, _ = await asyncio.wait_for(read_frame(raw.reader), 5 * TIMING)
    assert opcode == 0x8  # the gateway's closing frame (RFC 6455 §5.5.1)
    raw.abort()


async def test_ten_thousand_users_and_made_up_names_add_a_bounded_set_of_series(
        start_gateway: GatewayFactory) -> None:
    gateway = await start_gateway(heartbeat=Heartbeat(interval=600, timeout=60))  # no pings
    rng = random.Random(15)
    before = len(series(gateway))
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(user: str) -> None:
        async with gate:
            await visit(gateway.port, user, rng)

    users = [f"player-{n:05d}" for n in range(USERS)]
    await asyncio.gather(*(one(user) for user in users[:USERS // 2]))
    at_half = series(gateway)
    await asyncio.gather(*(one(user) for user in users[USERS // 2:]))
    after = series(gateway)
    assert gateway.metrics.connections_opened == USERS
    assert len(at_half) <= before + NEW_SERIES
    assert len(after) == len(at_half)
    values = {value for _, labels in after for value in labels.values()}
    assert not [v for v in values if "player-" in v], "a user id became a label value"
    methods = {labels["method"] for _, labels in after if "method" in labels}
    assert methods == {"sys.ping", "<unknown>"}
    closed = {sample.labels["code"]: sample.value
              for family in text_string_to_metric_families(gateway.metrics.render().decode())
              for sample in family.samples if sample.name == "rtctl_connections_closed_total"}
    assert {code: count for code, count in closed.items() if count} == {"other": USERS}
