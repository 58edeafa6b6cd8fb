"""ws mode impairs binary messages exactly as text ones, and its tap tells them apart.

Two proxies with the same seed and the same lossy, duplicating link each carry
the same number of equally long messages to an echo server: text through one,
binary through the other. Each direction's link draws from its own seeded
generator once per message (:mod:`simulator.base`), so the fates must be the
same message for message; only the opcode differs.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter

import pytest
from websockets.asyncio.client import connect

from rtctl.protocol.tap import IN, FrameSeen
from tests.conftest import TIMING
from tests.simulator.test_proxy import ProxyFactory, echo_url, start_proxy  # noqa: F401

N = 200
LINK = {"up_loss": "30%", "up_duplicate": "20%"}


def copies(impairment: str | None) -> int:
    """How many times the link delivered a message, read from its fate on the tap."""
    if impairment is not None and impairment.startswith("dropped"):
        return 0
    found = re.search(r"duplicated ×(\d+)", impairment or "")
    return int(found.group(1)) if found else 1


async def relay(start: ProxyFactory, upstream: str,
                messages: list[str] | list[bytes]) -> tuple[list[FrameSeen], list[str | bytes]]:
    """Send ``messages`` through a fresh seeded proxy; their fates and what came back."""
    proxy = await start(upstream, seed=7, **LINK)
    with proxy.tap.subscribe() as sub:
        async with connect(proxy.url, compression=None) as ws:
            for message in messages:
                await ws.send(message)
            fates: list[FrameSeen] = []
            while len(fates) < len(messages):
                event = await asyncio.wait_for(sub.get(), 5 * TIMING)
                if isinstance(event, FrameSeen) and event.direction == IN:
                    fates.append(event)
            expected = sum(copies(f.impairment) for f in fates)
            echoed = [await asyncio.wait_for(ws.recv(), 5 * TIMING) for _ in range(expected)]
    return fates, echoed


async def test_binary_is_lost_and_duplicated_exactly_like_text(
    echo_url: str, start_proxy: ProxyFactory,  # noqa: F811
) -> None:
    texts = [f"{i:04d}" for i in range(N)]
    binaries = [b"\xff\x00" + i.to_bytes(2, "big") for i in range(N)]  # not UTF-8, same size
    text_fates, text_echoed = await relay(start_proxy, echo_url, texts)
    binary_fates, binary_echoed = await relay(start_proxy, echo_url, binaries)

    assert [f.impairment for f in binary_fates] == [f.impairment for f in text_fates]
    dropped = sum(copies(f.impairment) == 0 for f in binary_fates)
    duplicated = sum(copies(f.impairment) > 1 for f in binary_fates)
    assert dropped / N == pytest.approx(0.30, abs=0.10)  # seeded; ±10 points for 200 draws
    assert duplicated > 0
    assert all(isinstance(m, bytes) for m in binary_echoed)
    assert Counter(int.from_bytes(m[2:], "big") for m in binary_echoed if isinstance(m, bytes)) \
        == Counter(int(m) for m in text_echoed)

    assert all(f.binary and f.kind == "binary" for f in binary_fates)
    assert [f.data for f in binary_fates] == binaries
    assert not any(f.binary for f in text_fates)
