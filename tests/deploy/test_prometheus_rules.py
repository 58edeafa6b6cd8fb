"""deploy/prometheus: the config and alert rules as promtool sees them, and what an on-call
person needs from every alert.

promtool (Debian's ``prometheus`` package) checks the config (and the target file it
reads) and the rules, and runs the rules' unit tests in deploy/prometheus/tests, where
every alert is driven to fire on the series that should fire it and kept silent on normal
ones. The rest reads the YAML: each alert carries a severity and the four annotations, its
``runbook_url`` points at a section of docs/runbooks.md that exists, and its unit tests
expect it both firing and silent.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require_program

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))
RUNBOOKS = ROOT / "docs" / "runbooks.md"
SEVERITIES = {"page", "ticket"}
ANNOTATIONS = {"summary", "description", "runbook", "runbook_url"}


def promtool(*args: str) -> str:
    """promtool's output; a failure shows it whole, since that is where promtool says why."""
    done = subprocess.run([require_program("promtool"), *args], cwd=PROMETHEUS,
                          capture_output=True, text=True, timeout=120, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def alerts() -> list[dict[str, Any]]:
    return [rule for group in load(PROMETHEUS / "alerts.yml")["groups"]
            for rule in group["rules"] if "alert" in rule]


def github_anchor(heading: str) -> str:
    """The fragment GitHub gives a Markdown heading: lower case, punctuation out, spaces to -."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_promtool_accepts_the_config() -> None:
    # A target file named by file_sd but missing is only a warning to promtool: a failure here.
    output = promtool("check", "config", "prometheus.yml")
    assert "WARNING" not in output, output


def test_promtool_accepts_the_rules() -> None:
    promtool("check", "rules", "alerts.yml")


def test_every_rule_unit_test_passes() -> None:
    assert RULE_TESTS, "no promtool unit tests in deploy/prometheus/tests"
    promtool("test", "rules", *(str(path.relative_to(PROMETHEUS)) for path in RULE_TESTS))


def test_the_alerts_are_the_ones_the_design_names() -> None:
    assert [rule["alert"] for rule in alerts()] == [
        "RtctlGatewayDown", "RtctlGatewayNotReady", "RtctlRpcErrorBudgetBurn",
        "RtctlRpcErrorBudgetBurnSlow", "RtctlRpcLatencyHigh", "RtctlEventLoopLag",
        "RtctlAbnormalCloses", "RtctlAuthFailureSpike", "RtctlBackendUnavailable",
        "RtctlOutboxDrops", "RtctlNodeHeartbeatLapsed",
    ]


@pytest.mark.parametrize("rule", alerts(), ids=lambda rule: rule["alert"])
def test_every_alert_says_how_urgent_it_is_and_what_to_do(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in SEVERITIES
    annotations = rule["annotations"]
    assert set(annotations) == ANNOTATIONS
    assert all(annotations[key].strip() for key in ANNOTATIONS)
    assert "\n" not in annotations["runbook"], "the runbook annotation is one line"
    # docs/runbooks.md#..., or where a team published them (deploy/prometheus/README.md)
    assert annotations["runbook_url"].endswith(f"runbooks.md#{rule['alert'].lower()}")


def test_every_runbook_url_names_a_section_of_the_runbooks() -> None:
    headings = re.findall(r"^#{1,6} (.+)$", RUNBOOKS.read_text(encoding="utf-8"), re.MULTILINE)
    anchors = {github_anchor(heading) for heading in headings}
    missing = [rule["alert"] for rule in alerts()
               if rule["annotations"]["runbook_url"].partition("#")[2] not in anchors]
    assert not missing, f"docs/runbooks.md has no section for {missing}"


def test_every_alert_is_unit_tested_firing_and_silent() -> None:
    expected: dict[str, set[bool]] = {rule["alert"]: set() for rule in alerts()}
    for path in RULE_TESTS:
        for group in load(path)["tests"]:
            for case in group["alert_rule_test"]:
                expected.setdefault(case["alertname"], set()).add(bool(case.get("exp_alerts")))
    untested = {name: seen for name, seen in expected.items() if seen != {True, False}}
    assert not untested, f"alerts not tested both firing and silent: {untested}"
