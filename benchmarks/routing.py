"""Advanced routing, measured: lanes and shaping, a slow consumer, batching, inbound rate limits.

Issue 14's done-when figures (all but compression), each side by side in one run,
against real ``rtctl serve`` processes on 127.0.0.1 (``routing_scenarios.py`` says
what each run does; ``routing_client.py`` is the light client):

1. **Shaping**: a client limited to 32 KiB/s (``--outbound-rate 32KiB/s``) in a room
   flooded at about 100 KiB/s of droppable and coalescible messages, pinging every
   20 ms; with lanes, and with ``--no-lanes``.
2. **Slow consumer**: a member that stops reading in a room of readers, against the
   same run where it keeps reading (``--slow-consumer-grace 2s``).
3. **Batching**: gateway CPU per delivered message in a 1,000-member fan-out whose
   publisher sends two messages together every 250 ms, with ``--batch-window 2ms``,
   with ``20ms`` and without (``--batch-window`` chooses).
4. **Inbound rate**: ``--inbound-rate 50/s``, 10 clients at 20 calls/s each beside one
   at 200/s, against the same clients alone.

Variants alternate within each run (their order flips every run); the table shows
medians of ``--runs``. The exit status is 1 when a done-when threshold is missed
(:func:`checks` names each), 0 otherwise.

    .venv/bin/python benchmarks/routing.py --runs 3
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, fields
from typing import Any

import uvloop
from loadgen import raise_nofile_limit
from routing_scenarios import (
    BUDGET,
    SLOW_GRACE,
    Fanout,
    Inbound,
    Shaping,
    SlowConsumer,
    fanout,
    inbound,
    shaping,
    slow_consumer,
)

BUDGET_TOLERANCE = 0.05  # received bytes/s may pass the budget by this share (frame sizes)
PING_P99_MS = 50.0
P99_TOLERANCE = 0.10  # others' p99 against the run without the slow client or flooder
P99_FLOOR_MS = 1.0  # below this, a p99 difference is the scheduler's, not the gateway's
CLOSE_TIMEOUT = 2.0  # s the gateway waits for the answer to its close frame (RFC 6455 §7.1.1;
# rtctl.gateway.server: min(2 s, ping timeout / 2)), then drops the socket
GRACE_TOLERANCE = 0.5  # s: /metrics and RSS are sampled every 0.1 s
RSS_ALLOWANCE_MIB = 4.0  # its outbox holds 1 MiB at most (limits.max_outbox_bytes); with
# what was handed to its socket and the allocator's slack, four times that

Row = dict[str, Any]
Results = dict[str, dict[Any, list[Any]]]  # scenario → variant → one result a run
SCENARIOS = ("shaping", "slow", "fanout", "inbound")


def median_row(runs: Sequence[Any]) -> Row:
    """Each numeric field's median over ``runs`` (NaNs, events that did not happen, are
    left out unless every run has one); other fields as in the first run."""
    row: Row = {}
    for f in fields(runs[0]):
        values = [getattr(run, f.name) for run in runs]
        if isinstance(values[0], bool) or not isinstance(values[0], int | float):
            row[f.name] = values[0]
            continue
        present = [v for v in values if not math.isnan(v)]
        row[f.name] = statistics.median(present) if present else math.nan
    return row


def _within(value: float, base: float) -> bool:
    return abs(value - base) <= max(P99_TOLERANCE * base, P99_FLOOR_MS)


def checks(results: Results) -> list[tuple[str, bool]]:
    """Every done-when threshold the runs made, and whether it held."""
    out: list[tuple[str, bool]] = []
    if "shaping" in results:
        lanes = median_row(results["shaping"][True])
        out += [
            (f"lanes: received ≤ budget + {BUDGET_TOLERANCE:.0%}",
             lanes["received_bps"] <= BUDGET * (1 + BUDGET_TOLERANCE)),
            (f"lanes: sys.ping p99 < {PING_P99_MS:g} ms", lanes["ping_p99_ms"] < PING_P99_MS),
            ("lanes: the flood shed or coalesced, and counted, in every run",
             all(r.dropped_telemetry + r.coalesced_events > 0
                 for r in results["shaping"][True])),
            ("lanes: the limited client never closed",
             all(r.closed == 0 for r in results["shaping"][True])),
        ]
    if "slow" in results:
        slow, calm = (median_row(results["slow"][v]) for v in (True, False))
        out += [
            ("the slow client closed 4008, and nobody else, in every run",
             all(r.closed_4008 == 1 for r in results["slow"][True])
             and all(r.closed_4008 == 0 for r in results["slow"][False])),
            (f"its socket gone within the grace + the close timeout ({SLOW_GRACE:g} + "
             f"{CLOSE_TIMEOUT:g} s, ± {GRACE_TOLERANCE:g} s) of falling behind, every run",
             all(r.closed_after_behind_s <= SLOW_GRACE + CLOSE_TIMEOUT + GRACE_TOLERANCE
                 for r in results["slow"][True])),
            (f"gateway RSS growth ≤ the run without + {RSS_ALLOWANCE_MIB:g} MiB",
             slow["rss_growth_mib"] <= calm["rss_growth_mib"] + RSS_ALLOWANCE_MIB),
            (f"others' delivery p99 within ±{P99_TOLERANCE:.0%} (or ±{P99_FLOOR_MS:g} ms)",
             _within(slow["others_p99_ms"], calm["others_p99_ms"])),
        ]
    if "inbound" in results:
        flooded, alone = (median_row(results["inbound"][v]) for v in (True, False))
        runs = results["inbound"][True]
        out += [
            ("flooder told -32029 with retry_after_ms, every run",
             all(r.flood_limited > 0 and r.flood_told_when == r.flood_limited
                 and r.flood_other_errors == 0 for r in runs)),
            ("calm clients: no error; no connection closed, every run",
             all(r.calm_errors == 0 and r.closed == 0 for r in runs)),
            (f"calm clients' p99 within ±{P99_TOLERANCE:.0%} (or ±{P99_FLOOR_MS:g} ms)",
             _within(flooded["calm_p99_ms"], alone["calm_p99_ms"])),
        ]
    return out


def _shown(value: float, spec: str) -> str:
    """A figure, or a dash for what did not happen (NaN)."""
    return "–" if math.isnan(value) else format(value, spec)


def _table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [f"\n{title}\n", "| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in rows)])


def report(results: Results, args: argparse.Namespace) -> str:
    """The markdown tables of the medians."""
    runs, members = args.runs, args.members
    parts = [f"Medians of {runs} run(s), `--transport {args.transport}`."]
    if "shaping" in results:
        parts.append(_table(
            "**Shaping**: a client at `--outbound-rate 32KiB/s` in a room flooded at ~100 KiB/s",
            ["outbox", "received KiB/s", "flood KiB/s", "ping p50 ms", "ping p99 ms",
             "unanswered pings", "dropped (telemetry)", "coalesced (events)",
             "other lanes", "closed"],
            [[name, f"{r['received_bps'] / 1024:.1f}", f"{r['offered_bps'] / 1024:.0f}",
              f"{r['ping_p50_ms']:.1f}", f"{r['ping_p99_ms']:.1f}", f"{r['unanswered']:.0f}",
              f"{r['dropped_telemetry']:.0f}", f"{r['coalesced_events']:.0f}",
              f"{r['elsewhere']:.0f}", str(r["closed"] or "no")]
             for name, r in (("lanes", median_row(results["shaping"][True])),
                             ("`--no-lanes`", median_row(results["shaping"][False])))]))
    if "slow" in results:
        parts.append(_table(
            f"**Slow consumer** (`--slow-consumer-grace {SLOW_GRACE:g}s`)",
            ["one member", "others' delivery p50 / p99 ms", "gateway RSS growth MiB",
             "sent to it until closed MiB", "stop → behind s", "behind → closed s",
             "4008 closes"],
            [[name, f"{r['others_p50_ms']:.2f} / {r['others_p99_ms']:.2f}",
              f"{r['rss_growth_mib']:.1f}", _shown(r["offered_mib"], ".1f"),
              _shown(r["behind_s"], ".2f"), _shown(r["closed_after_behind_s"], ".2f"),
              f"{r['closed_4008']:.0f}"]
             for name, r in (("stops reading", median_row(results["slow"][True])),
                             ("keeps reading", median_row(results["slow"][False])))]))
    if "fanout" in results:
        parts.append(_table(
            f"**Batching**: {members:,}-member fan-out",
            ["gateway", "CPU µs per delivery", "deliveries/s", "messages per frame",
             "delivered"],
            [[name, f"{r['cpu_us_per_delivery']:.2f}", f"{r['deliveries_per_s']:,.0f}",
              f"{r['messages_per_frame']:.2f}", f"{r['delivered_share']:.0%}"]
             for name, r in ((f"`--batch-window {v}`" if v else "no batching", median_row(each))
                              for v, each in results["fanout"].items())]))
    if "inbound" in results:
        parts.append(_table(
            "**Inbound rate**: `--inbound-rate 50/s`, 10 calm clients at 20 calls/s each",
            ["beside them", "calm p50 / p99 ms", "calm errors", "flooder answered/s",
             "flooder -32029", "with retry_after_ms", "closed"],
            [[name, f"{r['calm_p50_ms']:.2f} / {r['calm_p99_ms']:.2f}", f"{r['calm_errors']:.0f}",
              f"{r['flood_ok_per_s']:.1f}", f"{r['flood_limited']:.0f}",
              f"{r['flood_told_when']:.0f}", f"{r['closed']:.0f}"]
             for name, r in (("a flooder at 200 calls/s", median_row(results["inbound"][True])),
                             ("nobody", median_row(results["inbound"][False])))]))
    return "\n".join(parts)


async def measure(args: argparse.Namespace) -> Results:
    """Every chosen scenario's variants, ``args.runs`` times, their order flipped each run."""
    on = {"warmup": args.warmup, "transport": args.transport}
    window = {"seconds": args.seconds, **on}
    run: dict[str, Callable[[Any], Awaitable[Shaping | SlowConsumer | Fanout | Inbound]]] = {
        "shaping": lambda v: shaping(lanes=v, **window),
        "slow": lambda v: slow_consumer(stops=v, **on),
        "fanout": lambda v: fanout(window_flag=v, members=args.members, **window),
        "inbound": lambda v: inbound(flooder=v, **window),
    }
    variants: dict[str, list[Any]] = {"shaping": [True, False], "slow": [True, False],
                                      "fanout": [*args.batch_window, None],
                                      "inbound": [True, False]}
    results: Results = {}
    for index in range(args.runs):
        for name in args.scenarios:
            for variant in variants[name][::-1 if index % 2 else 1]:
                result = await run[name](variant)
                results.setdefault(name, {}).setdefault(variant, []).append(result)
                print(f"  run {index + 1} {name}: {asdict(result)}", file=sys.stderr, flush=True)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each variant (median)")
    parser.add_argument("--seconds", type=float, default=4.0, help="measured window per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="load before the window")
    parser.add_argument("--members", type=int, default=1000, help="the fan-out's room size")
    parser.add_argument("--batch-window", nargs="+", default=["2ms", "20ms"],
                        help="the fan-out's batched gateways' --batch-window, each beside none")
    parser.add_argument("--transport", choices=["websockets", "picows"], default="websockets",
                        help="the gateways' --transport")
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    args = parser.parse_args(argv)
    if args.runs < 1 or args.seconds <= 0 or args.warmup < 0 or args.members < 1:
        parser.error("--runs, --seconds and --members must be above 0, --warmup at least 0")
    raise_nofile_limit()
    results = uvloop.run(measure(args))
    print(report(results, args))
    held = checks(results)
    print()
    for what, ok in held:
        print(f"- {'PASS' if ok else 'FAIL'}: {what}")
    return 0 if all(ok for _, ok in held) else 1


if __name__ == "__main__":
    sys.exit(main())
