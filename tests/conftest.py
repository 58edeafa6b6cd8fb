"""Shared fixtures: tokens, an in-process gateway on port 0, a raw client.

Timing tolerances scale from one constant, ``TIMING``, so a slow CI machine
can be given more room in one place.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from rtctl.config import DEFAULT_TRANSPORT, GatewayConfig, Heartbeat, Limits
from rtctl.gateway.auth import AuthConfig
from rtctl.gateway.server import Gateway
from rtctl.protocol import jsonrpc
from rtctl.router import Router
from rtctl.services import BUILTIN_SERVICES
from rtctl.tokens import issue_token

SECRET = "test-secret-that-is-at-least-32-bytes-long"
TIMING = float(os.environ.get("RTCTL_TEST_TIMING", "1.0"))  # scales every timeout here


IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_program(name: str) -> str:
    """The path of a real program a test needs: under CI its absence fails, else skips."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (scripts/ensure-tools.sh installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the developer's real dev secret."""
    monkeypatch.setenv("RTCTL_STATE_DIR", str(tmp_path / "state"))


def make_token(sub: str = "alice", ttl: float | None = 3600, **claims: Any) -> str:
    return issue_token(SECRET, sub=sub, ttl=ttl, claims=claims)


def gateway_config(**overrides: Any) -> GatewayConfig:
    limits = overrides.pop("limits", Limits())
    heartbeat = overrides.pop("heartbeat", Heartbeat())
    auth = overrides.pop("auth", AuthConfig(secret=SECRET))
    return GatewayConfig(auth=auth, port=0, limits=limits, heartbeat=heartbeat, **overrides)


GatewayFactory = Callable[..., Any]


@pytest.fixture
def transport() -> str:
    """The gateway's transport driver; tests/gateway and tests/services run over each."""
    return DEFAULT_TRANSPORT


@pytest.fixture
async def start_gateway(transport: str) -> AsyncIterator[GatewayFactory]:
    """Start gateways on free ports; all are shut down after the test."""
    started: list[Gateway] = []

    async def start(router: Router | None = None, **config: Any) -> Gateway:
        config.setdefault("transport", transport)
        clock = config.pop("clock", time.time)
        backends = config.pop("backends", None)
        services = config.pop("services", BUILTIN_SERVICES)
        gateway = Gateway(gateway_config(**config), router=router, clock=clock,
                          backends=backends, services=services)
        await gateway.start()
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        await gateway.shutdown(drain=0)


@pytest.fixture
async def gateway(start_gateway: GatewayFactory) -> Gateway:
    gw: Gateway = await start_gateway()
    return gw


def client(url: str, token: str | None = None, **kwargs: Any) -> Any:
    """Connect with a Bearer token (the default user is alice)."""
    headers = {"Authorization": f"Bearer {token or make_token()}"}
    return connect(url, additional_headers=headers, compression=None, **kwargs)


async def rpc(ws: ClientConnection, method: str, params: Any = None, id: Any = 1) -> Any:
    """Send one request and return the decoded reply."""
    await ws.send(jsonrpc.dumps(jsonrpc.encode_request(method, params, id)), text=True)
    return jsonrpc.loads(await ws.recv())


# The real Redis and NATS servers, shared by the backend and service tests (at the
# end: tests.servers uses TIMING and require_program from this module).
from tests.servers import nats_server, redis_server  # noqa: E402, F401
