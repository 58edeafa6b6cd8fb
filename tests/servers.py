"""Real ``redis-server``, ``nats-server``, ``rtctl serve`` and HAProxy processes on loopback.

The processes themselves are :mod:`rtctl.bench.cluster`'s (the failover drill starts the
same ones); here a missing program fails the test under CI and skips it elsewhere
(:func:`tests.conftest.require_program`), and waits scale with ``TIMING``. The shared
Redis and NATS are session-scoped fixtures (registered by ``tests/conftest.py``); tests
keep apart by key and subject prefix. Tests that stop and restart a server start their
own with :class:`ServerProcess`, and a whole cluster behind HAProxy with :func:`cluster`.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rtctl.bench import cluster as processes
from rtctl.bench.cluster import Cluster, free_port
from tests.conftest import TIMING, require_program

__all__ = ["HAPROXY_CONFIG", "ServerProcess", "cluster", "free_port", "nats_server",
           "redis_server", "unique_prefix"]

HAPROXY_CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "haproxy" / "haproxy.cfg"


class ServerProcess(processes.ServerProcess):
    """One server process on a fixed port that can be stopped and started again."""

    def __init__(self, program: str, port: int | None = None) -> None:
        super().__init__(program, port, path=require_program(program),
                         start_timeout=10 * TIMING)


@contextlib.contextmanager
def cluster(workdir: Path, **options: Any) -> Iterator[Cluster]:
    """Redis, NATS, ``rtctl serve`` nodes and HAProxy with deploy/haproxy/haproxy.cfg, all
    stopped on the way out (:func:`rtctl.bench.cluster.start_cluster` takes ``options``)."""
    with processes.start_cluster(config=HAPROXY_CONFIG, workdir=workdir, which=require_program,
                                 start_timeout=30 * TIMING, **options) as started:
        yield started


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
