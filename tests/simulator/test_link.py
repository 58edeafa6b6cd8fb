"""The link pipeline and the settings parser: order, drops, copies, stream mode, outages."""

from __future__ import annotations

import random
from typing import Any

import pytest

from rtctl.exceptions import ConfigError
from simulator.impairments import RTO_MIN
from simulator.link import MSS, Link
from simulator.scenario import Client, Conditions, Outage, Phase, Rule, parse_outage
from simulator.spec import DirectionSpec, LinkSpec, apply_settings, parse_fraction


def spec(**settings: Any) -> DirectionSpec:
    return apply_settings(LinkSpec(), settings).up


@pytest.mark.parametrize(
    ("text", "value"),
    [("5%", 0.05), ("0.05", 0.05), (0.05, 0.05), ("100%", 1.0), ("0", 0.0), (" 2.5 % ", 0.025)],
)
def test_parse_fraction(text: Any, value: float) -> None:
    assert parse_fraction(text) == pytest.approx(value)


@pytest.mark.parametrize(
    ("settings", "message"),
    [({"loss": "5"}, "more than 100%"), ({"loss": "lots"}, "not a fraction"),
     ({"latency": "5 parsecs"}, "unknown unit"), ({"bandwidth": "fast"}, "not a number"),
     ({"distribution": "cauchy"}, "not one of"), ({"wobble": "1"}, "unknown impairment"),
     ({"gemodel": "0% 10%"}, "above 0")],
)
def test_bad_settings_are_one_clear_error(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        apply_settings(LinkSpec(), settings)


def test_settings_directions_rtt_and_aliases() -> None:
    link = apply_settings(LinkSpec(), {"rtt": "100ms", "up": {"loss": "1%"}, "down-loss": "2%",
                                       "PktLagVariance": 5, "PktDup": 3, "rate": "1mbit"})
    assert (link.up.latency, link.down.latency) == (0.05, 0.05)
    assert (link.up.loss, link.down.loss) == (0.01, 0.02)
    assert link.up.jitter == pytest.approx(0.005)
    assert link.up.duplicate == pytest.approx(0.03)
    assert link.down.bandwidth == 1e6
    assert apply_settings(LinkSpec(), {"gemodel": "1% 30%"}).up.gemodel == (0.01, 0.3, 1.0, 0.0)
    assert LinkSpec().clean
    assert not link.clean


def test_jitter_never_reorders_without_reorder() -> None:
    link = Link(spec(latency="50ms", jitter="40ms", distribution="normal"),
                rng=random.Random(1))
    times = [link.send(100, i * 0.001).deliveries[0].at for i in range(5000)]
    assert times == sorted(times)


def test_reorder_and_duplicate_rates() -> None:
    link = Link(spec(latency="20ms", reorder="10%", duplicate="5%"), rng=random.Random(2))
    outcomes = [link.send(100, i * 0.005) for i in range(10_000)]
    assert sum(o.reordered for o in outcomes) / 10_000 == pytest.approx(0.10, abs=0.012)
    assert sum(o.duplicated for o in outcomes) / 10_000 == pytest.approx(0.05, abs=0.009)
    held = next(o for o in outcomes if o.reordered)
    assert held.delay == pytest.approx(0.040)  # the latency, then held back by it again


def test_loss_drops_with_the_stage_named() -> None:
    link = Link(spec(loss="30%"), rng=random.Random(3))
    outcomes = [link.send(100, 0.0) for _ in range(10_000)]
    dropped = [o for o in outcomes if o.dropped]
    assert {o.dropped for o in dropped} == {"loss"}
    assert len(dropped) / 10_000 == pytest.approx(0.3, abs=0.02)


def test_bandwidth_queue_overflow_is_a_bandwidth_drop() -> None:
    link = Link(spec(bandwidth="80kbit", queue="2000"), rng=random.Random(0))
    outcomes = [link.send(1000, 0.0) for _ in range(5)]
    assert [o.dropped for o in outcomes] == [None, None, None, "bandwidth", "bandwidth"]
    assert outcomes[2].delay == pytest.approx(0.15)  # 2500 B beyond the 1500 B burst, 10 KB/s


def test_stream_mode_never_loses_bytes_and_stalls_by_rto() -> None:
    link = Link(spec(latency="10ms", loss="20%"), rng=random.Random(4), stream=True)
    outcomes = [link.send(MSS, i * 0.001) for i in range(2000)]
    assert all(not o.dropped and len(o.deliveries) == 1 for o in outcomes)
    times = [o.deliveries[0].at for o in outcomes]
    assert times == sorted(times)  # head-of-line blocking: bytes stay in order
    stalled = [o for o in outcomes if o.retransmits]
    assert len(stalled) / len(outcomes) == pytest.approx(0.2, abs=0.03)
    assert min(o.delay for o in stalled) >= RTO_MIN + 0.010
    doubled = [o for o in stalled if o.retransmits == 2]
    assert doubled
    assert min(o.delay for o in doubled) >= 3 * RTO_MIN


def test_blackhole_drops_in_ws_mode_and_stalls_in_stream_mode() -> None:
    ws = Link(rng=random.Random(0))
    ws.configure(DirectionSpec(), [(1.0, 2.0)])
    assert ws.send(10, 0.5).dropped is None
    assert ws.send(10, 1.5).dropped == "outage"
    assert ws.send(10, 2.0).dropped is None
    tcp = Link(rng=random.Random(0), stream=True)
    tcp.configure(DirectionSpec(), [(1.0, 2.0)])
    outcome = tcp.send(10, 1.0)
    assert outcome.deliveries[0].at >= 2.0
    assert outcome.retransmits == 3


def test_conditions_layers_phases_rules_and_outages() -> None:
    conditions = Conditions(
        apply_settings(LinkSpec(), {"latency": "10ms"}),
        phases=[Phase(20.0, {"loss": "5%"})],
        rules=[Rule({"loss": "50%"}, user="bob")])
    alice, bob = Client("10.0.0.1", user="alice"), Client("10.0.0.2", 4000, "bob")
    assert conditions.spec_for(alice, 0.0).up.loss == 0.0
    assert conditions.spec_for(alice, 25.0).up.loss == 0.05
    assert conditions.spec_for(bob, 0.0).up == DirectionSpec(latency=0.01, loss=0.5)
    assert Rule({}, address="10.0.0.2:4000").matches(bob)
    key = conditions.key(0.0)
    conditions.add_outage(Outage(30.0, 5.0, "reset"))
    assert conditions.key(0.0) != key
    assert conditions.resetting(31.0)
    assert not conditions.resetting(36.0)


def test_end_outages_cuts_short_only_those_in_force() -> None:
    conditions = Conditions(outages=[Outage(0.0, 3600.0), Outage(100.0, 5.0, "reset")])
    version = conditions.version
    conditions.end_outages(10.0)
    assert conditions.outages == [Outage(0.0, 10.0), Outage(100.0, 5.0, "reset")]
    assert conditions.blackholes() == [(0.0, 10.0)]
    assert conditions.version == version + 1


@pytest.mark.parametrize(
    ("text", "outage"),
    [("5s@30s", Outage(30.0, 5.0)), ("3s@20s,reset", Outage(20.0, 3.0, "reset")),
     ("500ms", Outage(7.0, 0.5))],
)
def test_parse_outage(text: str, outage: Outage) -> None:
    assert parse_outage(text, now=7.0) == outage


def test_bad_outage() -> None:
    with pytest.raises(ConfigError, match="kind must be"):
        parse_outage("5s@1s,unplug")
