"""``rtctl simulate`` as a user meets it: profiles, bad values, banner, live set/show."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.profiles import list_profiles, load_profile
from tests.cli.test_cli import ROOT, rtctl
from tests.conftest import TIMING

PROFILES = sorted((ROOT / "profiles").glob("*.toml"))


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.stem)
def test_every_profile_loads_and_cites_its_source(path: Path) -> None:
    assert path.read_text(encoding="utf-8").startswith("# Source: ")
    profile = load_profile(path.stem)
    assert profile.source
    assert not profile.conditions().base.clean


def test_the_presets_the_issue_names_exist() -> None:
    names = {p.name for p in list_profiles()}
    assert {"slow-3g", "slow-4g", "fast-4g", "edge", "3g", "dsl", "lte", "wifi",
            "very-bad-network", "satellite-geo", "broadband-regional-p50",
            "broadband-international-p50", "mobile-4g", "wifi-lte-handover"} <= names
    slow = load_profile("slow-3g").conditions().base
    assert (slow.up.latency, slow.down.bandwidth) == (1.0, 400_000)


def test_help_says_latency_is_one_way() -> None:
    result = rtctl("simulate", "--help")
    said = " ".join(result.stdout.replace("│", " ").split())
    assert "--latency 200ms shows as a 400 ms round trip" in said


def test_list_profiles_shows_numbers() -> None:
    result = rtctl("simulate", "--list-profiles")
    assert result.returncode == 0
    assert "slow-3g" in result.stdout
    assert "latency 1s, bandwidth 400kbit" in result.stdout


@pytest.fixture
def echo_server() -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "benchmarks/bare_echo.py", "--port", "0"],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    yield proc.stdout.readline().split()[-1]
    proc.terminate()
    proc.wait(10 * TIMING)


def test_run_then_set_and_show(echo_server: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rtctl", "simulate", "--listen", "127.0.0.1:0", "--upstream",
         echo_server, "--loss", "5%", "--latency", "200ms", "--control", "127.0.0.1:0",
         "--seed", "3"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        banner = [proc.stdout.readline() for _ in range(4)]
        assert banner[0].startswith("rtctl simulate listening on ws://127.0.0.1:"), banner
        assert "impairments: latency 200ms, loss 5%" in banner[1]
        # Latency is one way: a player sees twice it as round trip.
        assert "round trip: +400ms (latency is one way, added in each direction)" in banner[2]
        control = banner[3].split()[1]
        changed = rtctl("simulate", "set", "--latency", "20ms", "--control", control)
        assert changed.returncode == 0, changed.stderr
        assert "impairments: latency 20ms, loss 5%" in changed.stdout
        assert "round trip: +40ms" in changed.stdout
        ruled = rtctl("simulate", "set", "--user", "bob", "--loss", "50%", "--control", control)
        assert "rule bob" in ruled.stdout
        shown = rtctl("simulate", "show", "--control", control)
        assert "connections: 0 open" in shown.stdout
        bad = rtctl("simulate", "set", "--loss", "2", "--control", control)
        assert bad.returncode == 2
        assert "more than 100%" in bad.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15 * TIMING)
    assert "rtctl simulate stopped" in out


def test_set_without_a_simulator_is_one_line() -> None:
    result = rtctl("simulate", "set", "--loss", "1%", "--control", "127.0.0.1:9")
    assert result.returncode == 1  # it ran and failed: not bad usage
    assert "cannot reach the simulator's control API" in result.stderr
