"""``rtctl tui``'s arguments (the app itself is driven with Pilot in ``tests/tui``)."""

from __future__ import annotations

import pytest

from tests.cli.test_cli import rtctl


@pytest.mark.parametrize("args", [(), ("--demo", "--gateway", "ws://127.0.0.1:1")])
def test_demo_or_gateway_not_both_nor_neither(args: tuple[str, ...]) -> None:
    result = rtctl("tui", *args)
    assert result.returncode == 2  # bad usage, as `rtctl --help` says
    assert result.stderr == "rtctl: error: give either --demo or --gateway URL\n"


def test_help_names_both_ways() -> None:
    result = rtctl("tui", "--help")
    assert result.returncode == 0
    assert "--demo" in result.stdout
    assert "--gateway" in result.stdout
