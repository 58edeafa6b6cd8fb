"""``rtctl profile``: where a live gateway's time goes, stage by stage."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from rtctl.cli.options import dev_token, parse_params
from rtctl.profiler.lanes import lane_table
from rtctl.profiler.report import breakdown, cpu_table, draw, profile, write_folded
from rtctl.profiler.trace import hops_table, trace_call
from rtctl.protocol import jsonrpc
from rtctl.protocol.tap import ADMIN_ROLE
from rtctl.units import parse_duration

__all__ = ["profile_command"]

_TRACE = "Tracing one call"


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
        "--cpu", help="Also sample the gateway's Python stacks (200 per CPU-second, by "
                      "SIGPROF in its event loop) and show the hot functions; the stacks "
                      "go to --folded for a flame graph.")] = False,
    folded: Annotated[Path, typer.Option(
        help="With --cpu: where to write the folded stacks (flamegraph.pl, speedscope).")]
        = Path("rtctl-profile.folded"),
    trace: Annotated[bool, typer.Option(
        "--trace", help="Instead: send one traced call and show its hops end to end "
                        "(client, simulator, gateway and back).", rich_help_panel=_TRACE)] = False,
    through: Annotated[str | None, typer.Option(
        help="With --trace: send the call through this simulator, e.g. ws://127.0.0.1:8766.",
        rich_help_panel=_TRACE)] = None,
    simulator: Annotated[str | None, typer.Option(
        help="With --trace: the simulator's control API, e.g. http://127.0.0.1:8767, "
             "to show its hops and impairments.", rich_help_panel=_TRACE)] = None,
    method: Annotated[str, typer.Option(
        help="With --trace: the method to call.", rich_help_panel=_TRACE)] = "sys.echo",
    params: Annotated[str | None, typer.Option(
        help="With --trace: its params as JSON.", rich_help_panel=_TRACE)] = None,
) -> None:
    """Profile a running gateway for a while: per-stage time by method, loop lag, queues,
    and the outboxes' lanes.

    The gateway times one message in 64 per connection all the time; this reads
    what it measured over --duration from GET /profile and writes a chart. The
    lanes (queued now; waits p50/p99, sent, bytes/s, coalesced, dropped over
    --duration) come from GET /metrics at both ends.
    With --trace it follows one call through the simulator and the gateway instead.
    """
    seconds = parse_duration(duration)
    console = Console()
    admin = token or dev_token({"role": ADMIN_ROLE})
    if trace:
        hops, result = asyncio.run(trace_call(
            url, admin_token=admin, token=admin, method=method,
            params=parse_params(params),
            through=through, simulator=simulator))
        console.print(hops_table(hops))
        console.print(f"result: {jsonrpc.dumps(result).decode()}")
        return
    with console.status(f"profiling {url} for {duration}…"):
        result = asyncio.run(profile(url, admin, seconds, cpu=cpu))
    document = result.document
    console.print(breakdown(document))
    console.print(lane_table(result.lanes, result.seconds))
    draw(document, chart)
    console.print(f"chart: {chart}")
    if cpu:
        console.print(cpu_table(document))
        console.print(f"folded stacks: {folded} ({write_folded(document, folded)} distinct)")
