"""One cluster for the deploy tests: Redis, NATS, three ``rtctl serve`` nodes, HAProxy.

Starting three gateways takes seconds on two cores, so the package shares one cluster;
each test gets it with every process running and every node UP in HAProxy again
(:meth:`~rtctl.bench.cluster.Cluster.restore`), and uses users and rooms of its own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rtctl.bench.cluster import Cluster
from tests.conftest import TIMING
from tests.servers import cluster

DRAIN = 2.0  # s a SIGTERMed node waits before closing with 1001: past HAProxy's drain (~0.75 s)
HEALTH_BUDGET = 2.0  # s from a failure to HAProxy acting on it (the config says ~0.75 s)


@pytest.fixture(scope="package")
def running_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with cluster(tmp_path_factory.mktemp("cluster"),
                 gateway_flags=("--drain", f"{DRAIN:g}s")) as started:
        yield started


@pytest.fixture
def deployed(running_cluster: Cluster) -> Cluster:
    running_cluster.restore(30 * TIMING)
    return running_cluster
