"""Read a gateway's stage profile over an interval, and show where the time went.

:func:`profile` asks ``GET /profile?reset=1`` (with an admin token) to start a
fresh interval, waits, and asks again: the second answer is that interval's
stage table. Beside it, ``GET /metrics`` at both ends gives the outboxes'
lanes over the same interval (:mod:`rtctl.profiler.lanes`). :func:`breakdown`
turns the stage table into a rich table (each method's stages with their
share of the sampled time); :func:`draw` into a stacked bar chart. Two
profilers reading one gateway at once would cut each other's intervals short.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from rtctl.client.endpoint import http_url
from rtctl.exceptions import RtctlError
from rtctl.profiler.cpu import hot_functions
from rtctl.profiler.lanes import lanes_between, parse_lanes
from rtctl.profiler.stages import PROFILE_PATH, STAGES
from rtctl.protocol.lanes import LaneStats

__all__ = ["Profile", "ProfileFailed", "breakdown", "cpu_table", "draw", "fetch",
           "fetch_lanes", "profile", "write_folded"]

_TIMEOUT = 10.0
_METRICS_PATH = "/metrics"


class ProfileFailed(RtctlError):
    """The gateway's profile could not be read."""


def fetch(url: str, token: str | None, *, reset: bool, cpu: bool = False) -> dict[str, Any]:
    """One ``GET /profile`` of the gateway at base ``url``; ``cpu`` starts stack sampling."""
    query = "&".join(q for q, on in (("reset=1", reset), ("cpu=1", cpu)) if on)
    target = http_url(url, PROFILE_PATH) + (f"?{query}" if query else "")
    document: dict[str, Any] = json.loads(_get(target, token))
    return document


def fetch_lanes(url: str) -> LaneStats:
    """The outboxes' lanes now, from one ``GET /metrics`` of the gateway at base ``url``."""
    return parse_lanes(_get(http_url(url, _METRICS_PATH), None).decode("utf-8", "replace"))


def _get(target: str, token: str | None) -> bytes:
    request = urllib.request.Request(target, headers={"Authorization": f"Bearer {token}"}
                                     if token else {})
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
            body: bytes = response.read()
    except urllib.error.HTTPError as exc:
        text = exc.read().decode("utf-8", "replace")
        try:
            detail = json.loads(text).get("detail", text)
        except ValueError:
            detail = text
        raise ProfileFailed(f"{target} answered HTTP {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ProfileFailed(f"cannot read {target}: {getattr(exc, 'reason', exc)}") from None
    return body


@dataclass(frozen=True, slots=True)
class Profile:
    """One interval: the stage table of ``GET /profile``, and the lanes over ``seconds``."""

    document: dict[str, Any]
    lanes: LaneStats
    seconds: float


async def profile(url: str, token: str | None, duration: float,
                  *, cpu: bool = False) -> Profile:
    """The profile of the next ``duration`` seconds (with sampled stacks under ``cpu``)."""
    await asyncio.to_thread(fetch, url, token, reset=True, cpu=cpu)
    before, started = await asyncio.to_thread(fetch_lanes, url), time.monotonic()
    await asyncio.sleep(duration)
    document = await asyncio.to_thread(fetch, url, token, reset=True)
    after = await asyncio.to_thread(fetch_lanes, url)
    return Profile(document, lanes_between(before, after), time.monotonic() - started)


def _duration(us: float) -> str:
    """Microseconds, readable: ``12.3µs``, ``616.5ms``, ``1.38s``."""
    if us < 1_000:
        return f"{us:.1f}µs"
    return f"{us / 1e3:.1f}ms" if us < 1_000_000 else f"{us / 1e6:.2f}s"


def _totals(document: dict[str, Any]) -> dict[str, float]:
    return {method: sum(stages[s]["total_us"] for s in STAGES)
            for method, stages in document["methods"].items()}


def breakdown(document: dict[str, Any]) -> Group:
    """The stage table, loop lag and queues, for the terminal."""
    totals = _totals(document)
    grand = sum(totals.values()) or 1.0
    head = Text.assemble(
        (f"{document['sampled']:,}", "bold cyan"),
        f" messages timed in {document['seconds']:.1f}s (one in {document['every']} per "
        "connection); share = of all sampled time")
    table = Table(title="where the time goes (per message)", title_justify="left")
    for name in ("method", "stage", "count", "mean", "p50", "p99", "max", "share"):
        table.add_column(name, justify="left" if name in ("method", "stage") else "right",
                         no_wrap=True)
    for method in sorted(totals, key=totals.__getitem__, reverse=True):
        for stage in STAGES:
            row = document["methods"][method][stage]
            table.add_row(method if stage == STAGES[0] else "", stage, f"{row['count']:,}",
                          *(_duration(row[key]) for key in ("mean_us", "p50_us", "p99_us",
                                                            "max_us")),
                          f"{row['total_us'] / grand:.1%}")
    lag, queues = document["loop_lag_ms"], document["queues"]
    tail = Text(f"event loop lag: p50 {lag['p50']:.2f} ms, p99 {lag['p99']:.2f} ms, max "
                f"{lag['max']:.2f} ms ({lag['samples']} probes)\n"
                f"queues: {queues['connections']} connections, {queues['outboxes']} outboxes, "
                f"{queues['queued_messages']} messages / {queues['queued_bytes']} bytes "
                f"waiting (most in one: {queues['max_queued_messages']})")
    return Group(head, table, tail)


def draw(document: dict[str, Any], path: Path) -> None:
    """A stacked bar per method: mean µs in each stage (PNG, matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = sorted(_totals(document), key=_totals(document).__getitem__)
    figure, axes = plt.subplots(figsize=(9, 1.2 + 0.5 * max(len(methods), 1)))
    left = [0.0] * len(methods)
    for stage in STAGES:
        widths = [document["methods"][m][stage]["mean_us"] for m in methods]
        axes.barh(methods, widths, left=left, label=stage)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    axes.set_xlabel("mean µs per message, by stage")
    axes.set_title(f"gateway stages ({document['sampled']:,} messages sampled)")
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def cpu_table(document: dict[str, Any], limit: int = 15) -> Table:
    """The functions the loop was running most (self) and under (total)."""
    cpu = document.get("cpu") or {"samples": 0, "stacks": {}, "interval_ms": 0}
    samples = cpu["samples"] or 1
    table = Table(title=f"CPU: {cpu['samples']:,} stack samples of the loop, one every "
                        f"{cpu['interval_ms']:g} ms of CPU time", title_justify="left")
    table.add_column("function")
    table.add_column("self", justify="right")
    table.add_column("total", justify="right")
    for name, own, total in hot_functions(cpu["stacks"], limit):
        table.add_row(name, f"{own / samples:.1%}", f"{total / samples:.1%}")
    return table


def write_folded(document: dict[str, Any], path: Path) -> int:
    """Write the sampled stacks as folded lines (flamegraph.pl, speedscope); return the count."""
    stacks: dict[str, int] = (document.get("cpu") or {}).get("stacks", {})
    path.write_text("".join(f"{stack} {count}\n" for stack, count in sorted(stacks.items())))
    return len(stacks)
