"""Real ``redis-server`` and ``nats-server`` processes on free loopback ports.

Neither accepts port 0, so a free port is found by binding a socket first. The
shared servers are session-scoped fixtures (registered by ``tests/conftest.py``);
tests keep apart by key and subject prefix. Tests that stop and restart a
server start their own with :class:`ServerProcess`.
"""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import TIMING, require_program


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """One server process on a fixed port that can be stopped and started again."""

    def __init__(self, program: str, port: int | None = None) -> None:
        self.path = require_program(program)
        self.program = program
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        scheme = "redis" if self.program == "redis-server" else "nats"
        return f"{scheme}://127.0.0.1:{self.port}"

    def _argv(self) -> list[str]:
        if self.program == "redis-server":  # no persistence: a restart loses everything
            return [self.path, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no"]
        return [self.path, "-a", "127.0.0.1", "-p", str(self.port)]

    def start(self) -> ServerProcess:
        self.proc = subprocess.Popen(self._argv(), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10 * TIMING
        while time.monotonic() < deadline:  # poll the condition, bounded
            assert self.proc.poll() is None, f"{self.program} exited at start"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.02)
        raise AssertionError(f"{self.program} did not listen on {self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10 * TIMING)
        self.proc = None


@pytest.fixture(scope="session")
def redis_server() -> Iterator[ServerProcess]:
    server = ServerProcess("redis-server").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def nats_server() -> Iterator[ServerProcess]:
    server = ServerProcess("nats-server").start()
    yield server
    server.stop()


def unique_prefix() -> str:
    """A key and subject prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}"
