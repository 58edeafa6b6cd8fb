"""The ``lab`` fixture: every client-vs-gateway test runs once per client transport."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from rtctl.client.transport import TRANSPORTS
from tests.client.lab import Lab


@pytest.fixture(params=TRANSPORTS)
async def lab(request: pytest.FixtureRequest) -> AsyncIterator[Lab]:
    """A started gateway, and the transport the lab's clients use; all closed after."""
    lab = Lab(request.param)
    await lab.start()
    yield lab
    lab.release.set()
    for client in lab.clients:
        await client.close()
    await lab.stop()
