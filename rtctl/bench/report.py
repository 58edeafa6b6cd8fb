"""How a bench result is shown and written: the rich summary, ``--json`` and ``--csv``.

The live line while a run goes (:func:`progress_line`), the summary table at
the end (:func:`summary`, which says whether the load generator was the
bottleneck), and the files: the JSON document of
:meth:`~rtctl.bench.results.BenchResult.to_json` and the per-second timeline
as CSV. Throughput is named in the scenario's unit (calls/s, deliveries/s ...),
a percentile of nothing is shown as "—", and connections that failed are
explained (:func:`refusals`), so a run that measured nothing says so plainly
(:func:`nothing_completed`). The ``state`` scenario adds its bytes per tick,
sync counts and the room's own cost (:func:`state_parts`), the ``arena``
scenario its netcode numbers, with and without prediction and interpolation
(:func:`netcode_parts`), the ``reconnect-storm`` scenario its recoveries and
messages (:func:`recovery_parts`).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from rtctl.bench.recovery_counts import RecoveryTotals
from rtctl.bench.results import BenchResult
from rtctl.bench.scenarios import SCENARIOS
from rtctl.bench.session import CONNECT, CONNECT_TIMEOUT, OPEN_TIMEOUT, is_connect_error
from rtctl.bench.state_counts import StateTotals
from rtctl.bench.thresholds import Verdict
from rtctl.demo.game import TICK_RATE

__all__ = ["netcode_parts", "nothing_completed", "progress_line", "recovery_parts", "refusals",
           "state_parts", "summary", "unit", "write_csv", "write_json"]

_LABELS = {"p50": "p50", "p90": "p90", "p99": "p99", "p999": "p99.9", "p9999": "p99.99",
           "max": "max", "mean": "mean"}
_NOTHING = "—"  # a percentile of no samples
# Why a connection failed, by error class, with the flag that fixes it when there is one.
# A per-user refusal (429) comes from every client sharing one --token, that is one user.
_WHY = {
    "http 401": "the token was refused: give --token, or --jwt-secret with the server's secret",
    "http 429": "too many connections for one user: use --jwt-secret to give each client "
                "its own user",
    "http 503": "the server is at its connection limit (--max-connections) or draining",
    CONNECT: "nothing accepted the connection: is a server running at that URL?",
    CONNECT_TIMEOUT: f"no answer to the connection within {OPEN_TIMEOUT:g}s",
}
_REFUSED = "the server refused the WebSocket upgrade (is the URL's path right?)"


def unit(result: BenchResult) -> str:
    """What one completion of ``result``'s scenario is: calls, deliveries, sessions ..."""
    return SCENARIOS[result.scenario].unit


def progress_line(scenario: str, elapsed: float, total: float, completed: int,
                  errors: int) -> Text:
    """One line of live progress: phase, time, completions and errors so far."""
    rate = completed / max(elapsed, 1e-9)
    what = SCENARIOS[scenario].unit
    return Text.assemble(
        (f"{scenario} ", "bold"), f"{min(elapsed, total):5.1f}/{total:g}s  ",
        (f"{completed:,}", "cyan"), f" {what}  ", (f"{rate:,.0f}/s", "cyan"), "  ",
        (f"{errors:,} errors", "red" if errors else "green"))


def refusals(result: BenchResult) -> str | None:
    """One sentence on the connections that failed and why, or None if none did.

    ``993 of 1,001 connections failed: 993 http 429 (too many connections for one user: ...)``
    """
    failed = {kind: n for kind, n in sorted(result.errors.items()) if is_connect_error(kind)}
    if not failed:
        return None
    reasons = "; ".join(f"{n:,} {kind} ({_WHY.get(kind, _REFUSED)})" for kind, n in failed.items())
    return f"{sum(failed.values()):,} of {result.connects:,} connections failed: {reasons}"


def nothing_completed(result: BenchResult) -> str | None:
    """The one line that says a run measured nothing, and why; None if anything completed."""
    if result.messages:
        return None
    if why := refusals(result):
        return f"nothing completed: {why}"
    if result.errors:
        counts = ", ".join(f"{n:,} {kind}" for kind, n in sorted(result.errors.items()))
        return f"nothing completed: every attempt failed ({counts})"
    return ("nothing completed: no attempt fell in the measured window "
            "(try a longer --duration or a higher --rate)")


def summary(result: BenchResult, verdicts: Sequence[Verdict] = ()) -> Group:
    """The summary: what ran, throughput, the percentile table, errors, thresholds."""
    mode = f"open loop at {result.rate:g}/s" if result.rate is not None else "closed loop"
    if result.state is not None:
        mode = f"one room ticking {result.rate:g} times a second"
    if result.netcode is not None:
        mode = f"bots playing one arena that ticks {TICK_RATE} times a second"
    if (recovery := result.recovery) is not None:
        storms = (f"{result.rate:g} storms/s" if result.rate is not None
                  else "each client dropped again once recovered")
        mode = (f"{storms}, {recovery.rooms:,} rooms publishing "
                f"{recovery.publish_rate:g} messages/s each")
    what = unit(result)
    failed = nothing_completed(result)
    verdict = (Text(failed, "bold red") if failed
               else Text(result.bottleneck.text(),
                         "bold yellow" if result.bottleneck.generator else "dim"))
    head = Text.assemble(
        (f"{result.scenario}", "bold"), f": {result.clients} clients, {mode}, "
        f"{result.workers} worker(s), {result.duration_s:g}s measured\n",
        (f"{result.messages:,}", "bold cyan"), f" {what} completed  ",
        (f"{result.throughput:,.0f} {what}/s", "bold cyan"), " throughput  ",
        (f"{result.error_count:,} errors ({result.error_ratio:.3%})",
         "red" if result.error_count else "green"), "\n", verdict)
    parts: list[Text | Table] = [head]
    if not failed and (why := refusals(result)):  # else the verdict line says it already
        parts.append(Text(why, "red"))
    latency = Table(title="time to recover (ms)" if result.recovery is not None
                    else "latency (ms)", title_justify="left")
    values = result.latency_ms()
    for key in _LABELS:
        latency.add_column(_LABELS[key], justify="right")
    latency.add_row(*(_NOTHING if (ms := values[key]) is None else f"{ms:.3f}" for key in _LABELS))
    parts.append(latency)
    if result.errors:
        errors = Table(title="errors by class", title_justify="left")
        errors.add_column("class")
        errors.add_column("count", justify="right")
        for kind, count in sorted(result.errors.items()):
            errors.add_row(kind, f"{count:,}")
        parts.append(errors)
    if result.state is not None and result.state.clients:  # else no client joined
        parts.extend(state_parts(result.state))
    if result.netcode is not None:
        parts.extend(netcode_parts(result.to_json()["netcode"]))
    if result.recovery is not None:
        parts.extend(recovery_parts(result.recovery))
    if verdicts:
        rules = Table(title="thresholds", title_justify="left")
        for name in ("rule", "measured", "result"):
            rules.add_column(name)
        for v in verdicts:
            rules.add_row(v.threshold.text, v.threshold.show(v.measured),
                          Text("pass", "green") if v.passed else Text("FAIL", "bold red"))
        parts.append(rules)
    return Group(*parts)


def _number(value: float | None, digits: int = 1) -> str:
    return _NOTHING if value is None else f"{value:,.{digits}f}"


def state_parts(state: StateTotals) -> list[Text | Table]:
    """The state scenario's counts: per encoding, then the room's cost, then any warning."""
    table = Table(title="state over the window", title_justify="left")
    table.add_column("per client")
    rows: list[list[str]] = [["clients"], ["bytes per tick"], ["wire bytes per tick"],
                             ["bytes per patch"], ["versions advanced"],
                             ["patches / snapshots"], ["gaps / resyncs"],
                             ["stale / dropped / corrupt"]]
    for encoding, c in sorted(state.clients.items()):
        table.add_column(encoding, justify="right")
        document = c.to_json()
        cells = [f"{c.clients:,}", _number(document["bytes_per_tick"]),
                 _number(document["wire_bytes_per_tick"]), _number(document["bytes_per_patch"]),
                 f"{c.versions:,}", f"{c.patches:,} / {c.snapshots:,}",
                 f"{c.gaps:,} / {c.resyncs:,}", f"{c.stale:,} / {c.dropped:,} / {c.corrupt:,}"]
        for row, cell in zip(rows, cells, strict=True):
            row.append(cell)
    for row in rows:
        table.add_row(*row)
    room = (f"room {state.room}: {state.entities:,} entities, {state.movers:,} moving, "
            f"{state.tick_rate:g} ticks/s")
    cost = state.server
    if cost is None:
        room += "; its own counts (state.info) did not come"
    else:
        room += (f"; over the window {cost.ticks:,} ticks, {cost.patches:,} patches of "
                 f"{_number(cost.bytes_per_patch)} bytes, encoded in "
                 f"{_number(cost.encode_us_per_patch)} µs each; {cost.coalesced:,} held "
                 f"back from members behind, {cost.catch_ups:,} catch-ups, "
                 f"{cost.fulls:,} full states; {cost.members:,} members")
    parts: list[Text | Table] = [table, Text(room)]
    if state.early:
        parts.append(Text(f"{state.early:,} versions were applied before the server stamped "
                          "them: its clock and this machine's disagree, so the latencies are "
                          "off by as much", "bold yellow"))
    return parts


def _spread(values: Mapping[str, float | None], *keys: str, digits: int = 2) -> str:
    return " / ".join(_number(values[key], digits) for key in keys)


def netcode_parts(netcode: Mapping[str, Any]) -> list[Text | Table]:
    """The arena's netcode numbers (the ``netcode`` JSON object): with prediction and
    interpolation, and what a client without them would have had; then the profile's
    verdict when it is not playable."""
    without = netcode["without"]
    table = Table(title="netcode over the window (distances in world units)",
                  title_justify="left")
    for name in ("", "with prediction and interpolation", "without"):
        table.add_column(name, justify="right" if name else "left")
    loss, rate = netcode["input_loss"], netcode["bytes_per_s"]
    ratio = netcode["extrapolated_ratio"]
    corrections = netcode["corrections"]
    rows = [
        ("prediction error p50 / p99 / max",
         _spread(netcode["prediction_error"], "p50", "p99", "max", digits=3), ""),
        ("corrections: count, p99 size",
         f"{corrections['count']:,}, {_number(corrections['p99'], 3)}", ""),
        ("respawns (left out of both)", f"{netcode['respawns']:,}", ""),
        ("remote player error p50 / p99",
         _spread(netcode["interpolation_error"], "p50", "p99"),
         _spread(without["interpolation_error"], "p50", "p99")),
        ("input delay p50 / p99 (ms)", _spread(netcode["input_delay_ms"], "p50", "p99", digits=1),
         _spread(without["input_delay_ms"], "p50", "p99", digits=1)),
        ("snapshot age p50 / p99 (ms)",
         _spread(netcode["snapshot_age_ms"], "p50", "p99", digits=1), ""),
        ("interpolation delay p50 / p99 (ms)",
         _spread(netcode["interpolation_delay_ms"], "p50", "p99", digits=1), ""),
        ("frames extrapolated or frozen", _NOTHING if ratio is None else f"{ratio:.2%}", ""),
        ("rollback frames p50 / p99 / max",
         _spread(netcode["rollback_frames"], "p50", "p99", "max", digits=0), ""),
        ("inputs lost / sent", f"{loss['lost']:,} / {loss['sent']:,}", ""),
        ("bytes/s per client in / out", f"{_number(rate['in'], 0)} / {_number(rate['out'], 0)}",
         ""),
    ]
    for row in rows:
        table.add_row(*row)
    parts: list[Text | Table] = [table]
    profile = netcode["profile"]
    if profile is not None and profile["unplayable"] is not None:
        parts.append(Text(f"profile {profile['name']} is not playable for a "
                          f"{TICK_RATE} Hz shooter: {profile['unplayable']}", "bold yellow"))
    return parts


def recovery_parts(recovery: RecoveryTotals) -> list[Text | Table]:
    """The storm's outcomes, sessions, replays and messages; then a warning for any
    message lost, duplicated or late, and any the gateway sent twice."""
    table = Table(title="recoveries and messages over the window", title_justify="left")
    table.add_column("")
    table.add_column("", justify="right")
    rate = recovery.success_rate
    resets = ", ".join(f"{n:,} {reason}" for reason, n in sorted(recovery.resets.items()))
    not_resumed = ", ".join(f"{n:,} {why}" for why, n in sorted(recovery.not_resumed.items()))
    replayed = recovery.to_json()["replayed"]
    counts = recovery.messages
    rows = [
        ("attempts / recovered", f"{recovery.attempts:,} / {recovery.recovered:,} "
                                 f"({_NOTHING if rate is None else f'{rate:.2%}'})"),
        ("resets (reason)", resets or "none"),
        ("joins again that failed", f"{recovery.failed:,}"),
        ("unfinished after the drain", f"{recovery.unfinished:,}"),
        ("sessions resumed", f"{recovery.resumed:,}"
                             + (f" (not resumed: {not_resumed})" if not_resumed else "")),
        ("cuts during a recovery", f"{recovery.overlapped:,}"),
        ("replayed: sum, p50 / p99 / max per recovery",
         f"{replayed['sum']:,}, {_spread(replayed, 'p50', 'p99', 'max', digits=0)}"),
        ("published and acknowledged / not", f"{recovery.published:,} / {recovery.unacked:,}"),
        ("deliveries expected / made", f"{counts.expected:,} / {counts.delivered:,}"),
        ("lost / duplicated / reordered", f"{counts.lost:,} / {counts.duplicated:,} / "
                                          f"{counts.reordered:,}"),
        ("skipped by resets (the client was told)", f"{counts.skipped:,}"),
        ("late (not come by the end, no hole yet)", f"{counts.late:,}"),
        ("sent twice by the gateway (dropped by the SDK)", f"{recovery.resent:,}"),
    ]
    for row in rows:
        table.add_row(*row)
    parts: list[Text | Table] = [table]
    if recovery.overlapped:
        parts.append(Text(f"{recovery.overlapped:,} cuts found their client still recovering "
                          "from the one before: storms come faster than recoveries end "
                          "(try a lower --rate)", "bold yellow"))
    if counts.lost or counts.duplicated or counts.reordered:
        parts.append(Text(f"{counts.lost:,} messages lost, {counts.duplicated:,} duplicated "
                          f"and {counts.reordered:,} out of order without a reset saying so",
                          "bold red"))
    if counts.late:
        parts.append(Text(f"{counts.late:,} messages had not come by the end: a stream that "
                          "stopped, or a --drain too short to tell", "bold red"))
    if recovery.resent:
        parts.append(Text(f"{recovery.resent:,} messages were sent twice by the gateway "
                          "(the SDK dropped them: the game saw each once)", "bold yellow"))
    return parts


def write_json(result: BenchResult, path: Path, verdicts: Sequence[Verdict] = ()) -> None:
    document = result.to_json()
    document["throughput_unit"] = f"{unit(result)}/s"
    document["thresholds"] = [{"rule": v.threshold.text, "measured": v.measured,
                               "passed": v.passed} for v in verdicts]
    path.write_text(json.dumps(document, indent=2) + "\n")


def write_csv(result: BenchResult, path: Path) -> None:
    with path.open("w", newline="") as file:
        csv.writer(file).writerows(result.csv_rows())
