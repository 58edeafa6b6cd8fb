"""The gateway suite runs over each transport driver."""

from __future__ import annotations

import pytest

from rtctl.config import TRANSPORTS


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    """Every test here that starts a gateway runs over each transport driver."""
    return str(request.param)
