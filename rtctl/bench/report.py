"""How a bench result is shown and written: the rich summary, ``--json`` and ``--csv``.

The live line while a run goes (:func:`progress_line`), the summary table at
the end (:func:`summary`, which says whether the load generator was the
bottleneck), and the files: the JSON document of
:meth:`~rtctl.bench.results.BenchResult.to_json` and the per-second timeline
as CSV.
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
from rtctl.bench.thresholds import Verdict

__all__ = ["progress_line", "summary", "write_csv", "write_json"]

_LABELS = {"p50": "p50", "p90": "p90", "p99": "p99", "p999": "p99.9", "p9999": "p99.99",
           "max": "max", "mean": "mean"}


def progress_line(scenario: str, elapsed: float, total: float, completed: int,
                  errors: int) -> Text:
    """One line of live progress: phase, time, completions and errors so far."""
    rate = completed / max(elapsed, 1e-9)
    return Text.assemble(
        (f"{scenario} ", "bold"), f"{min(elapsed, total):5.1f}/{total:g}s  ",
        (f"{completed:,}", "cyan"), " done  ", (f"{rate:,.0f}/s", "cyan"), "  ",
        (f"{errors:,} errors", "red" if errors else "green"))


def summary(result: BenchResult, verdicts: Sequence[Verdict] = ()) -> Group:
    """The summary: what ran, throughput, the percentile table, errors, thresholds."""
    mode = f"open loop at {result.rate:g}/s" if result.rate is not None else "closed loop"
    head = Text.assemble(
        (f"{result.scenario}", "bold"), f": {result.clients} clients, {mode}, "
        f"{result.workers} worker(s), {result.duration_s:g}s measured\n",
        (f"{result.messages:,}", "bold cyan"), " completed  ",
        (f"{result.throughput:,.0f}/s", "bold cyan"), " throughput  ",
        (f"{result.error_count:,} errors ({result.error_ratio:.3%})",
         "red" if result.error_count else "green"), "\n",
        (result.bottleneck.text(), "bold yellow" if result.bottleneck.generator else "dim"))
    latency = Table(title="latency (ms)", title_justify="left")
    values = result.latency_ms()
    for key in _LABELS:
        latency.add_column(_LABELS[key], justify="right")
    latency.add_row(*(f"{values[key]:.3f}" for key in _LABELS))
    parts: list[Text | Table] = [head, latency]
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
        for verdict in verdicts:
            rules.add_row(verdict.threshold.text, verdict.threshold.show(verdict.measured),
                          Text("pass", "green") if verdict.passed else Text("FAIL", "bold red"))
        parts.append(rules)
    return Group(*parts)


def write_json(result: BenchResult, path: Path, verdicts: Sequence[Verdict] = ()) -> None:
    document = result.to_json()
    document["thresholds"] = [{"rule": v.threshold.text, "measured": v.measured,
                               "passed": v.passed} for v in verdicts]
    path.write_text(json.dumps(document, indent=2) + "\n")


def write_csv(result: BenchResult, path: Path) -> None:
    with path.open("w", newline="") as file:
        csv.writer(file).writerows(result.csv_rows())
