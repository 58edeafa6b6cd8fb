"""``rtctl bench``: load a gateway with a scenario and report HDR latency percentiles.

Everything that can be checked is checked before any server or client starts
(the plan, the scenario, the URL, the profile, where the files go), so a bad
value costs no run. Exit codes: 0 when the run completed something and every
``--threshold`` held; 1 when nothing completed, a threshold failed or the run
could not be made; 2 for bad usage. Each failure is one line on stderr.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live

from rtctl.bench.embedded import target
from rtctl.bench.plan import (
    DEFAULT_DURATION,
    DEFAULT_ENTITIES,
    DEFAULT_MOVERS,
    DEFAULT_WARMUP,
    Plan,
    TokenPlan,
)
from rtctl.bench.report import nothing_completed, progress_line, summary, write_csv, write_json
from rtctl.bench.runner import run
from rtctl.bench.scenarios import SCENARIOS, scenario_for
from rtctl.bench.state_scenario import ENCODINGS
from rtctl.bench.thresholds import check, parse_threshold
from rtctl.cli.devsecret import existing_dev_secret
from rtctl.cli.exits import EXIT_FAILURE, CommandFailed
from rtctl.client.endpoint import endpoint_url
from rtctl.exceptions import ConfigError
from rtctl.units import format_duration, parse_duration
from simulator.profiles import load_profile

__all__ = ["bench"]


def _tokens(token: str | None, secret: str | None) -> TokenPlan:
    """``--token`` for every client (one user), else one token per client (a user each)
    minted with ``--jwt-secret``, else with the dev secret if ``rtctl serve`` made one."""
    if token is not None and secret is not None:
        raise ConfigError("give --token (every client the same user) or --jwt-secret "
                          "(a user per client), not both")
    if token is not None:
        return TokenPlan(token=token)
    return TokenPlan(secret=secret or existing_dev_secret())


def _writable(path: Path | None, flag: str) -> None:
    """Refuse an output file that cannot be written, before the run rather than after it."""
    if path is None:
        return
    folder = path.parent
    if path.is_dir():
        raise ConfigError(f"{flag} {path} is a directory; name a file")
    if not folder.is_dir():
        raise ConfigError(f"{flag} {path}: the directory {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"{flag} {path}: not writable")


def bench(
    url: Annotated[str | None, typer.Argument(
        help="Server base URL, e.g. ws://127.0.0.1:8765 (any JSON-RPC 2.0 server answering "
             "the scenario's methods). Without it an embedded gateway is started.")] = None,
    scenario: Annotated[str, typer.Option(
        help=f"What the clients do: {', '.join(SCENARIOS)}. Throughput is in the scenario's "
             "unit: calls/s (echo), deliveries/s (fanout, rooms: one publish reaching N "
             "members counts N), sessions/s (presence-churn), recoveries/s "
             "(reconnect-storm: clients in rooms lose their links and recover; time to "
             "recover, resets, replayed and lost messages besides), versions/s (state: one "
             "room version applied by one client), snapshots/s (arena: bots play the demo "
             "arena; one snapshot applied by one bot, its latency the snapshot's age; the "
             "netcode numbers besides).")]
        = "echo",
    clients: Annotated[int, typer.Option(help="Simulated clients (connections).")] = 100,
    rate: Annotated[float | None, typer.Option(
        help="Open loop: attempts per second over all clients (for fanout: publishes/s; "
             "for reconnect-storm: storms/s, default 0.2; for state: the room's ticks per second, "
             "1 to 120, default 20). Latency counts from the intended send time.")]
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
    entities: Annotated[int, typer.Option(
        help="state: entities in the room.")] = DEFAULT_ENTITIES,
    movers: Annotated[int, typer.Option(
        help="state: entities that move each tick.")] = DEFAULT_MOVERS,
    encoding: Annotated[str, typer.Option(
        help=f"state: how the clients take the room's state: {', '.join(ENCODINGS)} "
             "(every other client JSON).")] = "binary",
    through: Annotated[str | None, typer.Option(
        help="Put the network simulator with this profile in between (see rtctl simulate "
             "--list-profiles). arena: says whether the profile is playable.")] = None,
    token: Annotated[str | None, typer.Option(
        envvar="RTCTL_TOKEN", show_envvar=True,
        help="JWT for every client: they are all one user, so the server's per-user "
             "limit (8 by default) refuses the rest with HTTP 429. For many clients "
             "use --jwt-secret.")] = None,
    jwt_secret: Annotated[str | None, typer.Option(
        envvar="RTCTL_JWT_SECRET", show_envvar=True,
        help="The server's HS256 secret: mint one token per client (users bench-0, "
             "bench-1 ...). Without it or --token, the dev secret is used if `rtctl serve` "
             "made one; the embedded gateway always gets its own.")] = None,
    json_file: Annotated[Path | None, typer.Option("--json", help="Write the result as JSON.")]
        = None,
    csv_file: Annotated[Path | None, typer.Option(
        "--csv", help="Write the per-second timeline as CSV.")] = None,
    plot: Annotated[Path | None, typer.Option(
        help="Draw the percentile spectrum and the throughput timeline to FILE.png (arena: "
             "and the netcode numbers per second to FILE-netcode.png).")] = None,
    threshold: Annotated[list[str] | None, typer.Option(
        help="A rule that must hold, else exit 1: p99<50ms, errors<0.1%, throughput>20000. "
             "Repeatable.")] = None,
) -> None:
    """Load a gateway with a scenario; print HDR percentiles, throughput and errors.

    Exit codes: 0 something completed and every --threshold held; 1 nothing
    completed (the summary says why, e.g. connections refused), a threshold
    failed, a server could not be started, or (state, arena) the gateway has no
    drift or arena room type; 2 bad usage.
    """
    if rate is not None and closed:
        raise ConfigError("--rate and --closed exclude each other")
    rules = [parse_threshold(text) for text in threshold or []]
    if rate is None and not closed and scenario in SCENARIOS:
        rate = SCENARIOS[scenario].default_rate
    plan = Plan(scenario=scenario, url=endpoint_url(url) if url else "", clients=clients,
                rate=rate, duration=parse_duration(duration), warmup=parse_duration(warmup),
                ramp=parse_duration(ramp), workers=workers, tokens=_tokens(token, jwt_secret),
                entities=entities, movers=movers, encoding=encoding, through=through)
    chosen = scenario_for(plan)
    if through is not None:
        load_profile(through)
    for path, flag in ((json_file, "--json"), (csv_file, "--csv"), (plot, "--plot")):
        _writable(path, flag)
    console = Console(stderr=True)
    with target(url, through=through, clients=clients, tokens=plan.tokens,
                mode=chosen.through_mode) as (
            endpoint, tokens, gateway):
        plan = replace(plan, url=endpoint, tokens=tokens, gateway=gateway)
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
    try:
        if json_file is not None:
            write_json(result, json_file, verdicts)
        if csv_file is not None:
            write_csv(result, csv_file)
        if plot is not None:
            from rtctl.bench.plots import draw  # matplotlib takes a while to import

            draw(result, plot)  # and the arena's netcode figure beside it
    except OSError as exc:
        raise CommandFailed(f"cannot write {exc.filename}: {exc.strerror}") from None
    if failed := nothing_completed(result):
        raise CommandFailed(failed)
    if not all(v.passed for v in verdicts):
        failed = ", ".join(v.threshold.text for v in verdicts if not v.passed)
        Console(stderr=True).print(f"rtctl: threshold failed: {failed}")
        raise SystemExit(EXIT_FAILURE)
