"""``rtctl bench``: load a gateway with a scenario and report HDR latency percentiles.

Exit codes: 0 when the run completed and every ``--threshold`` held, 1 when a
threshold failed or the run could not be made (one line on stderr).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live

from rtctl.bench.embedded import target
from rtctl.bench.plan import DEFAULT_DURATION, DEFAULT_WARMUP, Plan, TokenPlan
from rtctl.bench.report import progress_line, summary, write_csv, write_json
from rtctl.bench.runner import run
from rtctl.bench.scenarios import SCENARIOS
from rtctl.bench.thresholds import check, parse_threshold
from rtctl.cli.devsecret import existing_dev_secret
from rtctl.exceptions import ConfigError
from rtctl.units import format_duration, parse_duration

__all__ = ["bench"]


def _tokens(token: str | None) -> TokenPlan:
    """The given token for every client; else one per client from the dev secret, if any."""
    if token is not None:
        return TokenPlan(token=token)
    return TokenPlan(secret=existing_dev_secret())


def bench(
    url: Annotated[str | None, typer.Argument(
        help="Server base URL, e.g. ws://127.0.0.1:8765 (any JSON-RPC 2.0 server answering "
             "the scenario's methods). Without it an embedded gateway is started.")] = None,
    scenario: Annotated[str, typer.Option(
        help=f"What the clients do: {', '.join(SCENARIOS)}.")] = "echo",
    clients: Annotated[int, typer.Option(help="Simulated clients (connections).")] = 100,
    rate: Annotated[float | None, typer.Option(
        help="Open loop: attempts per second over all clients (for fanout: publishes/s; "
             "for reconnect-storm: storms/s). Latency counts from the intended send time.")]
        = None,
    closed: Annotated[bool, typer.Option(
        "--closed", help="Closed loop (the default without --rate): each client starts its "
                         "next attempt when the last one is answered.")] = False,
    duration: Annotated[str, typer.Option(help="Measured time.")]
        = format_duration(DEFAULT_DURATION),
    warmup: Annotated[str, typer.Option(help="Load before measuring.")]
        = format_duration(DEFAULT_WARMUP),
    ramp: Annotated[str, typer.Option(help="Open the connections evenly over this time.")]
        = "0s",
    workers: Annotated[int, typer.Option(help="Load generator processes.")] = 1,
    through: Annotated[str | None, typer.Option(
        help="Put the network simulator with this profile in between (see rtctl simulate "
             "--list-profiles).")] = None,
    token: Annotated[str | None, typer.Option(
        envvar="RTCTL_TOKEN", show_envvar=True,
        help="JWT for every client. Without it each client gets its own from the dev "
             "secret (or the embedded gateway's).")] = None,
    json_file: Annotated[Path | None, typer.Option("--json", help="Write the result as JSON.")]
        = None,
    csv_file: Annotated[Path | None, typer.Option(
        "--csv", help="Write the per-second timeline as CSV.")] = None,
    plot: Annotated[Path | None, typer.Option(
        help="Draw the percentile spectrum and the throughput timeline to FILE.png.")] = None,
    threshold: Annotated[list[str] | None, typer.Option(
        help="A rule that must hold, else exit 1: p99<50ms, errors<0.1%, throughput>20000. "
             "Repeatable.")] = None,
) -> None:
    """Load a gateway with a scenario; print HDR percentiles, throughput and errors."""
    if rate is not None and closed:
        raise ConfigError("--rate and --closed exclude each other")
    rules = [parse_threshold(text) for text in threshold or []]
    console = Console(stderr=True)
    with target(url, through=through, clients=clients, tokens=_tokens(token)) as (endpoint,
                                                                                   tokens):
        plan = Plan(scenario=scenario, url=endpoint, clients=clients, rate=rate,
                    duration=parse_duration(duration), warmup=parse_duration(warmup),
                    ramp=parse_duration(ramp), workers=workers, tokens=tokens)
        total = plan.warmup + plan.duration
        with Live(progress_line(scenario, 0, total, 0, 0), console=console,
                  transient=True, refresh_per_second=4) as live:
            started = time.monotonic()

            def progress(completed: int, errors: int) -> None:
                live.update(progress_line(scenario, time.monotonic() - started, total,
                                          completed, errors))

            result = run(plan, progress=progress)
    verdicts = check(result, rules)
    Console().print(summary(result, verdicts))
    if json_file is not None:
        write_json(result, json_file, verdicts)
    if csv_file is not None:
        write_csv(result, csv_file)
    if plot is not None:
        from rtctl.bench.plots import draw  # matplotlib takes a while to import

        draw(result, plot)
    if not all(v.passed for v in verdicts):
        failed = ", ".join(v.threshold.text for v in verdicts if not v.passed)
        Console(stderr=True).print(f"rtctl: threshold failed: {failed}")
        raise SystemExit(1)
