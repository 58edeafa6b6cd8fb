"""The JavaScript reference client (clients/js) passes `rtctl conformance client`.

clients/js was written from docs/protocol.md and docs/conformance.md alone; these tests are
the proof that those pages suffice. They run real processes: node and the scripted gateway.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[2]
JS = ROOT / "clients" / "js"
NODE_MIN = (20, 10)  # clients/js/package.json's engines

pytestmark = pytest.mark.slow


def require_node() -> str:
    """node at NODE_MIN or newer: under CI its absence fails, else skips.

    scripts/ensure-tools.sh does not install Node.js, so the message names it instead.
    """
    message = f"install Node.js >= {NODE_MIN[0]}.{NODE_MIN[1]} to test clients/js"
    node = shutil.which("node")
    if node is not None:
        version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30,
                                 check=False).stdout.strip()
        found = re.match(r"v(\d+)\.(\d+)", version)
        if found and (int(found[1]), int(found[2])) >= NODE_MIN:
            return node
        message += f" (found {version or 'a node that does not say its version'})"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def test_node_unit_tests_pass() -> None:
    node = require_node()
    tests = sorted(str(p) for p in (JS / "test").glob("*.test.mjs"))
    assert tests, "clients/js/test has no *.test.mjs"
    proc = subprocess.run([node, "--test", *tests], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_js_client_passes_conformance() -> None:
    node = require_node()
    command = [sys.executable, "-m", "rtctl", "conformance", "client", "--json", "--",
               node, "--experimental-websocket", str(JS / "driver.mjs")]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.stdout.strip(), f"no report (exit {proc.returncode}):\n{proc.stderr}"
    report = json.loads(proc.stdout)
    bad = [r for r in report["results"] if r["outcome"] == "fail"]
    assert not bad, "\n".join(f"{r['check']} ({r['section']}): {r['detail']}" for r in bad)
    assert proc.returncode == 0, proc.stderr
    # The client offers rtctl.v1 only (no binary decoder): only state.binary may skip.
    skipped = {r["check"] for r in report["results"] if r["outcome"] == "skip"}
    assert skipped <= {"state.binary"}, skipped
    assert report["passed"] >= 13, report
