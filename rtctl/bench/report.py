"""How a bench result is shown and written: the rich summary, ``--json`` and ``--csv``.

The live line while a run goes (:func:`progress_line`), the summary table at
the end (:func:`summary`, which says whether the load generator was the
bottleneck), and the files: the JSON document of
:meth:`~rtctl.bench.results.BenchResult.to_json` and the per-second timeline
as CSV. Throughput is named in the scenario's unit (calls/s, deliveries/s ...),
a percentile of nothing is shown as "—", and connections that failed are
explained (:func:`refusals`), so a run that measured nothing says so plainly
(:func:`nothing_completed`).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

from rich.console import Group
from rich.table import Table
from rich.text import Text

from rtctl.bench.results import BenchResult
from rtctl.bench.scenarios import SCENARIOS
from rtctl.bench.session import CONNECT, CONNECT_TIMEOUT, OPEN_TIMEOUT, is_connect_error
from rtctl.bench.thresholds import Verdict

__all__ = ["nothing_completed", "progress_line", "refusals", "summary", "unit", "write_csv",
           "write_json"]

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
    latency = Table(title="latency (ms)", title_justify="left")
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
    if verdicts:
        rules = Table(title="thresholds", title_justify="left")
        for name in ("rule", "measured", "result"):
            rules.add_column(name)
        for v in verdicts:
            rules.add_row(v.threshold.text, v.threshold.show(v.measured),
                          Text("pass", "green") if v.passed else Text("FAIL", "bold red"))
        parts.append(rules)
    return Group(*parts)


def write_json(result: BenchResult, path: Path, verdicts: Sequence[Verdict] = ()) -> None:
    document = result.to_json()
    document["throughput_unit"] = f"{unit(result)}/s"
    document["thresholds"] = [{"rule": v.threshold.text, "measured": v.measured,
                               "passed": v.passed} for v in verdicts]
    path.write_text(json.dumps(document, indent=2) + "\n")


def write_csv(result: BenchResult, path: Path) -> None:
    with path.open("w", newline="") as file:
        csv.writer(file).writerows(result.csv_rows())
