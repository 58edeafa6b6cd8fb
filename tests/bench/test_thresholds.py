"""The threshold grammar, and verdicts over a result with known numbers."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest

from rtctl.bench.histogram import Histogram
from rtctl.bench.recovery_counts import MessageCounts, RecoveryTotals
from rtctl.bench.results import BenchResult
from rtctl.bench.thresholds import check, parse_threshold
from rtctl.exceptions import ConfigError


def _result() -> BenchResult:
    histogram = Histogram()
    histogram.record_all([10_000_000] * 99 + [80_000_000])  # 99 x 10 ms, 1 x 80 ms
    return BenchResult(scenario="echo", clients=10, workers=1, mode="closed", rate=None,
                       duration_s=2.0, histogram=histogram, timeline=[histogram],
                       errors=Counter({"closed": 1}), expected=101)


@pytest.mark.parametrize(("text", "passes"), [
    ("p50<11ms", True),
    ("p50 < 11", True),
    ("p50<9ms", False),
    ("p99<0.05s", True),
    ("max<=80ms", True),
    ("max<80000us", False),
    ("mean>10ms", True),
    ("errors<1%", True),  # 1 of 101 attempts: 0.99 %
    ("errors<0.5%", False),
    ("errors<=1", True),
    ("errors<1", False),
    ("throughput>49", True),
    ("throughput>=50/s", True),
    ("throughput>50", False),
])
def test_verdicts(text: str, passes: bool) -> None:
    [verdict] = check(_result(), [parse_threshold(text)])
    assert verdict.passed is passes


@pytest.mark.parametrize(("text", "message"), [
    ("p99<<5", "is not METRIC<VALUE"),
    ("p99=5", "is not METRIC<VALUE"),
    ("p98<5ms", "unknown metric 'p98'"),
    ("p99<5kb", "a latency is in us, ms or s"),
    ("errors<5ms", "count or a percentage"),
    ("throughput>5%", "completions per second"),
])
def test_bad_thresholds_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_threshold(text)


@pytest.mark.parametrize(("text", "shown"), [
    ("p50<11ms", "10 ms"),
    ("max<1s", "80 ms"),
    ("errors<1%", "0.99%"),
    ("errors<5", "1"),
    ("throughput>10", "50/s"),
])
def test_measured_values_are_shown_in_the_rules_unit(text: str, shown: str) -> None:
    [verdict] = check(_result(), [parse_threshold(text)])
    assert verdict.threshold.show(verdict.measured) == shown


def _nothing_completed() -> BenchResult:
    return BenchResult(scenario="echo", clients=10, workers=1, mode="closed", rate=None,
                       duration_s=2.0, histogram=Histogram(), timeline=[Histogram()],
                       errors=Counter({"connect": 10}), expected=0)


@pytest.mark.parametrize("text", ["p99<50ms", "p50>0ms", "max<1s", "mean<=10"])
def test_a_latency_rule_over_nothing_fails_and_shows_why(text: str) -> None:
    [verdict] = check(_nothing_completed(), [parse_threshold(text)])
    assert (verdict.measured, verdict.passed) == (None, False)
    assert verdict.threshold.show(verdict.measured) == "n/a (nothing completed)"


def _storm(lost: int, duplicated: int, late: int = 0) -> BenchResult:
    recovery = RecoveryTotals(messages=MessageCounts(
        expected=100, delivered=100 - lost - late, lost=lost, duplicated=duplicated, late=late))
    return replace(_result(), scenario="reconnect-storm", recovery=recovery)


@pytest.mark.parametrize(("text", "lost", "duplicated", "passes", "shown"), [
    ("lost<1", 0, 3, True, "0 messages"),
    ("lost<1", 2, 0, False, "2 messages"),
    ("duplicated<=0", 2, 0, True, "0 messages"),
    ("duplicated<=0", 0, 1, False, "1 messages"),
])
def test_message_rules_read_the_storms_counts(text: str, lost: int, duplicated: int,
                                              passes: bool, shown: str) -> None:
    [verdict] = check(_storm(lost, duplicated), [parse_threshold(text)])
    assert (verdict.passed, verdict.threshold.show(verdict.measured)) == (passes, shown)


def test_a_stream_that_stopped_passes_lost_but_fails_late() -> None:
    stopped = _storm(0, 0, late=95)  # handed 5 of 100, nothing after: no hole, all late
    lost, late = check(stopped, [parse_threshold("lost<1"), parse_threshold("late<1")])
    assert (lost.passed, late.passed) == (True, False)
    assert late.threshold.show(late.measured) == "95 messages"


def test_a_message_rule_over_a_scenario_without_messages_fails_and_says_why() -> None:
    [verdict] = check(_result(), [parse_threshold("lost<1")])
    assert (verdict.measured, verdict.passed) == (None, False)
    assert verdict.threshold.show(verdict.measured) == "n/a (this scenario counts no messages)"
    with pytest.raises(ConfigError, match="lost is a count of messages"):
        parse_threshold("lost<1%")
