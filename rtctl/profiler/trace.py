"""One message's hops, end to end: client → simulator → gateway → simulator → client.

The trace id is the request's own JSON-RPC id (§4: the client sets it, and the
server must return it unchanged), made unmistakable: ``trace-`` and 12 random
hex digits. Nothing is added to the protocol, so any server can be traced. The
gateway's tap and, when the call goes through ``rtctl simulate``, the
simulator's tap each report the frame with that id as they saw it; since
every part runs on one machine, their Unix microsecond clocks
(:func:`~rtctl.protocol.tap.unix_us`) line up, and the
hops read as one timeline, each simulator hop with what the link did to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from rich.table import Table

from rtctl.client.oneshot import call_once
from rtctl.exceptions import RtctlError
from rtctl.inspect.listener import listen
from rtctl.protocol.tap import IN, FrameSeen, TapEvent, unix_us

__all__ = ["Hop", "TraceFailed", "hops_table", "trace_call"]


class TraceFailed(RtctlError):
    """A tap the trace needs did not attach."""

@dataclass(frozen=True, slots=True)
class Hop:
    """Where the message was seen, when (Unix µs), and what happened to it there."""

    where: str
    t_us: int
    note: str | None = None


async def _pump(source: str, events: AsyncIterator[TapEvent], trace_id: str,
                found: asyncio.Queue[tuple[str, FrameSeen]], ready: asyncio.Event) -> None:
    async for event in events:
        if not ready.is_set():
            ready.set()  # the first event is Subscribed: this listener is attached
        if isinstance(event, FrameSeen) and event.id == trace_id:
            await found.put((source, event))


async def trace_call(url: str, *, admin_token: str | None, token: str | None,
                     method: str = "sys.echo", params: Any = None,
                     through: str | None = None, simulator: str | None = None,
                     timeout: float = 10.0) -> tuple[list[Hop], Any]:
    """Call ``method`` once (via ``through`` if given) and return its hops and result.

    ``url`` is the gateway (its tap, on the same host and port, needs
    ``admin_token``; a path in ``url`` names the endpoint called), ``through`` the
    simulator's listen URL and ``simulator`` its control URL (for its tap).
    """
    trace_id = f"trace-{os.urandom(6).hex()}"
    found: asyncio.Queue[tuple[str, FrameSeen]] = asyncio.Queue()
    parts = urlsplit(url if "://" in url else f"ws://{url}")
    taps = {"gateway": listen(f"{parts.scheme}://{parts.netloc}", token=admin_token)}
    if simulator is not None:
        taps["simulator"] = listen(simulator, token=None)
    readies = {source: asyncio.Event() for source in taps}
    pumps = [asyncio.get_running_loop().create_task(
        _pump(source, events, trace_id, found, readies[source]))
        for source, events in taps.items()]
    try:
        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(*(ready.wait() for ready in readies.values()))
        except TimeoutError:
            raise TraceFailed(f"no tap answered within {timeout:g}s ({', '.join(taps)})"
                              ) from None
        sent: list[int] = []
        result = await call_once(through or url, method, params, token=token,
                                 timeout=timeout, request_id=trace_id,
                                 on_send=lambda: sent.append(unix_us()))
        received = unix_us()
        seen: list[tuple[str, FrameSeen]] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while len(seen) < 2 * len(taps):  # each tap: the request and the reply
                    seen.append(await found.get())
    finally:
        for pump in pumps:
            pump.cancel()
        for events in taps.values():
            with contextlib.suppress(Exception):
                await events.aclose()
    hops = [Hop("client sent the request", sent[0])]
    for source, frame in seen:
        what = ("got the request" if frame.direction == IN
                else "sent the reply" if source == "gateway" else "got the reply")
        hops.append(Hop(f"{source} {what}", frame.t_us, frame.impairment))
    hops.append(Hop("client got the reply", received))
    hops.sort(key=lambda hop: hop.t_us)
    return hops, result


def hops_table(hops: list[Hop], trace: str = "") -> Table:
    """The timeline: each hop's time since the send and since the hop before."""
    table = Table(title=f"one message, end to end {trace}".strip(), title_justify="left")
    table.add_column("hop")
    table.add_column("at", justify="right")
    table.add_column("+", justify="right")
    table.add_column("")
    start = hops[0].t_us if hops else 0
    before = start
    for hop in hops:
        table.add_row(hop.where, f"{(hop.t_us - start) / 1000:.2f} ms",
                      f"{(hop.t_us - before) / 1000:.2f} ms", hop.note or "")
        before = hop.t_us
    return table
