"""The ``lab`` and ``scene`` fixtures: every client-vs-gateway test runs once per client
transport, against the real gateway (``lab``) or a scripted one (``scene``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from rtctl.client.transport import TRANSPORTS
from tests.client.lab import Lab
from tests.client.scripted_gateway import Scene


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


@pytest.fixture(params=TRANSPORTS)
async def scene(request: pytest.FixtureRequest) -> AsyncIterator[Scene]:
    """A started scripted gateway, and the transport the scene's clients use; all closed after."""
    scene = Scene(request.param)
    scene.url = await scene.gateway.start()
    yield scene
    for client in scene.clients:
        await client.close()
    await scene.gateway.stop()
