"""Pass/fail rules over a result, for CI: ``p99<50ms``, ``errors<0.1%``, ``throughput>20000``,
``lost<1``, ``late<1``.

Grammar (spaces allowed around the operator)::

    threshold := metric op value
    metric    := p50 | p90 | p99 | p999 | p9999 | max | mean     latency
               | errors                                          error ratio or count
               | throughput                                      completions per second
               | lost | duplicated | late                        messages (reconnect-storm)
    op        := < | <= | > | >=
    value     := number [unit]

A latency value takes ``us``, ``ms`` (the default) or ``s``. An ``errors``
value with ``%`` is compared with the error ratio, without it with the count.
``throughput`` takes a bare number, optionally ``/s``. ``lost``,
``duplicated`` and ``late`` count the ``reconnect-storm`` scenario's messages
that never reached a member that should have had them, reached it more than
once, or had not reached it by the end with no hole to tell
(:mod:`rtctl.bench.recovery_counts`): a subscriber whose stream stopped has
its missing messages late, not lost, so ``lost<1`` alone would pass it. A run
of another scenario has none to count, and such a rule fails.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rtctl.bench.results import LATENCY_METRICS, BenchResult
from rtctl.exceptions import ConfigError

__all__ = ["MESSAGE_METRICS", "Threshold", "Verdict", "check", "parse_threshold"]

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_LATENCY_UNITS = {"": 1.0, "ms": 1.0, "us": 1e-3, "µs": 1e-3, "s": 1e3}
_PATTERN = re.compile(r"\s*(?P<metric>[a-z0-9]+)\s*(?P<op><=|>=|<|>)\s*"
                      r"(?P<num>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>[a-zµ%/]*)\s*")
_HELP = "try p99<50ms, errors<0.1% or throughput>20000"
MESSAGE_METRICS = ("lost", "duplicated", "late")  # counts of reconnect-storm's messages


@dataclass(frozen=True)
class Threshold:
    """One rule: ``metric`` (in ms, a ratio, a count or per second) ``op`` ``limit``."""

    text: str
    metric: str
    op: str
    limit: float
    ratio: bool = False  # errors given in %

    def measure(self, result: BenchResult) -> float | None:
        """The measured value; None for a latency of a run where nothing completed, and
        for messages of a run that counts none."""
        if self.metric in LATENCY_METRICS:
            return result.latency_ms()[self.metric]
        if self.metric in MESSAGE_METRICS:
            recovery = result.recovery
            if recovery is None:
                return None
            count: int = getattr(recovery.messages, self.metric)
            return count
        if self.metric == "errors":
            return result.error_ratio if self.ratio else result.error_count
        return result.throughput

    def passes(self, result: BenchResult) -> bool:
        """Whether the rule held; a rule over nothing measured cannot have."""
        measured = self.measure(result)
        return measured is not None and _OPERATORS[self.op](measured, self.limit)

    def show(self, measured: float | None) -> str:
        """``measured`` in this rule's own unit: ``1.45 ms``, ``0.012%``, ``19,634/s``."""
        if measured is None:
            return ("n/a (this scenario counts no messages)" if self.metric in MESSAGE_METRICS
                    else "n/a (nothing completed)")
        if self.metric in LATENCY_METRICS:
            return f"{measured:.3g} ms"
        if self.metric == "errors":
            return f"{measured * 100:.3g}%" if self.ratio else f"{measured:,.0f}"
        if self.metric in MESSAGE_METRICS:
            return f"{measured:,.0f} messages"
        return f"{measured:,.0f}/s"


@dataclass(frozen=True)
class Verdict:
    threshold: Threshold
    measured: float | None
    passed: bool


def parse_threshold(text: str) -> Threshold:
    """Parse one rule; a bad one raises :class:`ConfigError` naming what is wrong."""
    match = _PATTERN.fullmatch(text)
    if match is None:
        raise ConfigError(f"threshold {text!r} is not METRIC<VALUE or METRIC>VALUE ({_HELP})")
    metric, op, unit = match["metric"], match["op"], match["unit"]
    value = float(match["num"])
    if metric in LATENCY_METRICS:
        if unit not in _LATENCY_UNITS:
            raise ConfigError(f"threshold {text!r}: a latency is in us, ms or s")
        return Threshold(text, metric, op, value * _LATENCY_UNITS[unit])
    if metric == "errors":
        if unit not in ("", "%"):
            raise ConfigError(f"threshold {text!r}: errors are a count or a percentage")
        return Threshold(text, metric, op, value / 100 if unit else value, ratio=bool(unit))
    if metric in MESSAGE_METRICS:
        if unit:
            raise ConfigError(f"threshold {text!r}: {metric} is a count of messages")
        return Threshold(text, metric, op, value)
    if metric == "throughput":
        if unit not in ("", "/s"):
            raise ConfigError(f"threshold {text!r}: throughput is completions per second "
                              "(calls, deliveries, sessions, recoveries ..., by scenario)")
        return Threshold(text, metric, op, value)
    raise ConfigError(f"threshold {text!r}: unknown metric {metric!r} "
                      f"(use {', '.join(LATENCY_METRICS)}, errors, throughput, "
                      f"{', '.join(MESSAGE_METRICS)})")


def check(result: BenchResult, thresholds: Sequence[Threshold]) -> list[Verdict]:
    """Each threshold with what was measured and whether it held."""
    return [Verdict(t, t.measure(result), t.passes(result)) for t in thresholds]
