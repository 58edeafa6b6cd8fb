"""docs/client.md must quote the defaults the code has, and its Recovery program must
print what the page shows."""

from __future__ import annotations

import asyncio
import random
import re
from pathlib import Path

import pytest

from rtctl.client import Backoff, Client, QueueLimits, Rooms, link
from rtctl.client import connection as conn
from tests.client.history_faults import faulty_gateway
from tests.client.lab import WAIT
from tests.conftest import GatewayFactory, make_token
from tests.test_docs import fences
from tests.test_docs_examples import Example, examples

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "client.md"


@pytest.fixture(scope="module")
def guide() -> str:
    return GUIDE.read_text(encoding="utf-8")


def test_the_default_backoff_sequence_is_quoted(guide: str) -> None:
    match = re.search(r"^\s+([\d., ]+), \.\.\. seconds$", guide, re.MULTILINE)
    assert match is not None
    quoted = [float(x) for x in match.group(1).split(",")]
    assert quoted == [Backoff().delay(n) for n in range(1, len(quoted) + 1)]


def test_the_seeded_run_is_quoted(guide: str) -> None:
    match = re.search(r"`random.Random\((\d+)\)`\) gave ([\d., \n]+) s", guide)
    assert match is not None
    rng = random.Random(int(match.group(1)))
    quoted = [float(x) for x in match.group(2).replace("\n", " ").split(",")]
    assert quoted == [round(Backoff().delay(n, rng), 3) for n in range(1, len(quoted) + 1)]


@pytest.mark.parametrize(("row", "value"), [
    (r"\| `base` \| ([\d.]+) s", Backoff().base),
    (r"\| `multiplier` \| ([\d.]+)", Backoff().multiplier),
    (r"\| `cap` \| ([\d.]+) s", Backoff().cap),
    (r"\| `jitter` \| ([\d.]+)", Backoff().jitter),
    (r"\| `reset_after` \| ([\d.]+) s", Backoff().reset_after),
    (r"\| `max_messages` \| (\d+)", QueueLimits().max_messages),
    (r"\| `max_bytes` \| (\d+) KiB", QueueLimits().max_bytes / 1024),
    (r"\| `call_timeout` \| `([\d.]+)` s", conn.DEFAULT_CALL_TIMEOUT),
    (r"\| `open_timeout` \| `([\d.]+)` s", conn.DEFAULT_OPEN_TIMEOUT),
    (r"\| `ping_interval` \| `([\d.]+)` s", conn.DEFAULT_PING_INTERVAL),
])
def test_default_tables(guide: str, row: str, value: float) -> None:
    match = re.search(row, guide)
    assert match is not None, row
    assert float(match.group(1)) == value


@pytest.mark.parametrize(("quote", "value"), [
    (r"messages up to (\d+) MiB", link.MAX_MESSAGE_BYTES / 2**20),
    (r"ping every (\d+) s", link.KEEPALIVE_INTERVAL),
    (r"no pong comes within (\d+) s", link.KEEPALIVE_TIMEOUT),
])
def test_the_transport_section_quotes_the_link(guide: str, quote: str, value: float) -> None:
    match = re.search(quote, guide)
    assert match is not None, quote
    assert float(match.group(1)) == value


def _recovery_program(guide: str) -> tuple[Example, str]:
    """The page's program marked as run here, and the output shown right after it."""
    (program,) = [e for e in examples(GUIDE) if "test_guide.py" in (e.not_run or "")]
    shown = next(f for f in fences(guide) if f.info == "text" and f.opening > program.line)
    return program, shown.body


def _any_seconds(output: str) -> str:
    return re.sub(r"\b\d+\.\d\ds\b", "N.NNs", output)


async def test_the_recovery_program_prints_what_the_page_shows(
        guide: str, start_gateway: GatewayFactory, capsys: pytest.CaptureFixture[str]) -> None:
    """Against a gateway, bob publishing in the lobby while the program is away (its join
    again held at the history until then): the seconds aside, the lines the page shows."""
    program, shown = _recovery_program(guide)
    gateway, history = await faulty_gateway(start_gateway)
    async with Client(gateway.url, token=make_token("bob"), ping_interval=None) as bob:
        lobby = Rooms(bob)
        await lobby.join("lobby")
        history.reads.close()  # only a join again with since reads there
        namespace = {"__name__": "__docs__", "url": gateway.url, "token": make_token("alice")}
        # eval runs the block as exec would, and returns its top-level coroutine
        running = asyncio.ensure_future(eval(program.compiled(), namespace))
        await asyncio.wait_for(history.reads.entered.wait(), WAIT)
        await lobby.publish("lobby", {"text": "gg"})
        history.reads.open()
        await asyncio.wait_for(running, WAIT)
    assert _any_seconds(capsys.readouterr().out) == _any_seconds(shown)
