"""Conformance results: the table, the JSON and the exit code both kits report with."""

from __future__ import annotations

from rich.console import Console

from rtctl.conformance.results import Outcome, Result, as_json, exit_code, render

PASSED = Result("jsonrpc.parse-error", "§3.1", "parse error", Outcome.PASS, "-32700", 0.25)
FAILED = Result("close.too-big", "§11", "too big", Outcome.FAIL, "expected close 1009", 1.5)
SKIPPED = Result("auth.expired", "§2.4", "expired", Outcome.SKIP, "needs --jwt-secret")


def test_json_lists_every_result_and_counts_them() -> None:
    report = as_json([PASSED, FAILED, SKIPPED])
    assert (report["passed"], report["failed"], report["skipped"]) == (1, 1, 1)
    assert report["results"][1] == {"check": "close.too-big", "section": "§11",
                                     "title": "too big", "outcome": "fail",
                                     "detail": "expected close 1009", "seconds": 1.5}


def test_only_a_failure_fails_the_run() -> None:
    assert exit_code([PASSED, SKIPPED]) == 0
    assert exit_code([PASSED, FAILED, SKIPPED]) == 1
    assert exit_code([]) == 0


def test_the_table_shows_each_check_and_a_summary_line() -> None:
    console = Console(record=True, width=120)
    render([PASSED, FAILED, SKIPPED], console, seconds=12.34)
    text = console.export_text()
    for r in (PASSED, FAILED, SKIPPED):
        assert f"{r.check} " in text
        assert f"{r.section} " in text
        assert f" {r.outcome} " in text
    assert "expected close 1009" in text
    # The run's wall time, not a sum of the checks' (1.75 s): waits between them count.
    assert text.rstrip().endswith("1 passed, 1 failed, 1 skipped in 12.3 s")
