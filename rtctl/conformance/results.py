"""Results of a conformance run: one :class:`Result` per check, rendered as a table or JSON.

Both kits (server and client) report in this shape so a run reads the same whichever side is
under test; ``exit_code`` makes a run usable in CI (skips are fine, a failure is not).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["Outcome", "Result", "as_json", "exit_code", "render"]

_STYLES = {"pass": "green", "fail": "bold red", "skip": "yellow"}


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class Result:
    """One check's outcome. ``check`` is a stable id (``"jsonrpc.parse-error"``) that ``--check``
    and ``--skip`` select by; ``section`` cites docs/protocol.md (``"§3.1"``)."""

    check: str
    section: str
    title: str
    outcome: Outcome
    detail: str = ""
    seconds: float = 0.0


def _counts(results: Sequence[Result]) -> dict[Outcome, int]:
    return {outcome: sum(r.outcome is outcome for r in results) for outcome in Outcome}


def render(results: Sequence[Result], console: Console, *, seconds: float) -> None:
    """Print a table of ``results`` (id, section, result, detail) and a one-line summary
    with the run's wall time, ``seconds`` (waits that no check owns count too)."""
    table = Table(show_edge=False)
    for column in ("check", "section", "result", "detail"):
        table.add_column(column, overflow="fold")
    for r in results:
        table.add_row(r.check, r.section, f"[{_STYLES[r.outcome]}]{r.outcome}[/]", r.detail)
    console.print(table)
    counts = _counts(results)
    console.print(f"{counts[Outcome.PASS]} passed, {counts[Outcome.FAIL]} failed, "
                  f"{counts[Outcome.SKIP]} skipped in {seconds:.1f} s", highlight=False)


def as_json(results: Sequence[Result]) -> dict[str, Any]:
    """``{"results": [...], "passed": n, "failed": n, "skipped": n}``, for ``--json``."""
    counts = _counts(results)
    return {
        "results": [{"check": r.check, "section": r.section, "title": r.title,
                     "outcome": str(r.outcome), "detail": r.detail,
                     "seconds": round(r.seconds, 3)} for r in results],
        "passed": counts[Outcome.PASS],
        "failed": counts[Outcome.FAIL],
        "skipped": counts[Outcome.SKIP],
    }


def exit_code(results: Sequence[Result]) -> int:
    """0 when no check failed (skipped checks do not fail a run), else 1."""
    return int(any(r.outcome is Outcome.FAIL for r in results))
