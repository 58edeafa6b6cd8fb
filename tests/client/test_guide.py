"""docs/client.md must quote the defaults the code has."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from rtctl.client import Backoff, QueueLimits, link
from rtctl.client import connection as conn

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
