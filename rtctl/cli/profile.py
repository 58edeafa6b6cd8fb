"""``rtctl profile``: where a live gateway's time goes, stage by stage."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from rtctl.cli.options import dev_token
from rtctl.gateway.tap import ADMIN_ROLE
from rtctl.profiler.report import breakdown, cpu_table, draw, profile, write_folded
from rtctl.units import parse_duration

__all__ = ["profile_command"]


def profile_command(
    url: Annotated[str, typer.Argument(help="Gateway base URL, e.g. ws://127.0.0.1:8765.")],
    duration: Annotated[str, typer.Option(help="How long to profile.")] = "30s",
    token: Annotated[str | None, typer.Option(
        envvar="RTCTL_TOKEN", show_envvar=True,
        help="JWT with the claim role=admin. Without it, an admin dev token is minted if "
             "`rtctl serve` runs in dev mode on this machine.")] = None,
    chart: Annotated[Path, typer.Option(help="Where to write the chart (PNG).")]
        = Path("rtctl-profile.png"),
    cpu: Annotated[bool, typer.Option(
        "--cpu", help="Also sample the gateway's Python stacks (200/s) and show the hot "
                      "functions; the stacks go to --folded for a flame graph.")] = False,
    folded: Annotated[Path, typer.Option(
        help="With --cpu: where to write the folded stacks (flamegraph.pl, speedscope).")]
        = Path("rtctl-profile.folded"),
) -> None:
    """Profile a running gateway for a while: per-stage time by method, loop lag, queues.

    The gateway times one message in 64 per connection all the time; this reads
    what it measured over --duration from GET /profile and writes a chart.
    """
    seconds = parse_duration(duration)
    console = Console()
    with console.status(f"profiling {url} for {duration}…"):
        document = asyncio.run(profile(url, token or dev_token({"role": ADMIN_ROLE}), seconds,
                                       cpu=cpu))
    console.print(breakdown(document))
    draw(document, chart)
    console.print(f"chart: {chart}")
    if cpu:
        console.print(cpu_table(document))
        console.print(f"folded stacks: {folded} ({write_folded(document, folded)} distinct)")
