"""One call's hops end to end, through a real simulator and gateway."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from rtctl.profiler.trace import hops_table, trace_call
from simulator.control import ControlServer
from tests.cli import test_cli
from tests.cli.test_cli import Served, rtctl
from tests.conftest import GatewayFactory, make_token
from tests.simulator.test_proxy import ProxyFactory, start_proxy  # noqa: F401  (fixture)

env = test_cli.env  # the fixture: a fresh state directory, no token in the environment


async def test_hops_through_the_simulator_show_its_delays(
    start_gateway: GatewayFactory, start_proxy: ProxyFactory,  # noqa: F811
) -> None:
    gateway = await start_gateway()
    proxy = await start_proxy(gateway.url.removesuffix("/ws"), up_latency="30ms",
                              down_latency="20ms")
    control = ControlServer(proxy)
    await control.start()
    admin = make_token("tracer", role="admin")
    try:
        hops, result = await trace_call(gateway.url, admin_token=admin, token=admin,
                                        params=["ping"], through=proxy.url,
                                        simulator=control.url)
    finally:
        await control.stop()
    assert result == ["ping"]
    assert [hop.where for hop in hops] == [
        "client sent the request", "simulator got the request", "gateway got the request",
        "gateway sent the reply", "simulator got the reply", "client got the reply"]
    notes = {hop.where: hop.note for hop in hops}
    assert notes["simulator got the request"] == "delayed 30 ms"
    assert notes["simulator got the reply"] == "delayed 20 ms"
    at = {hop.where: hop.t_us for hop in hops}
    assert at["gateway got the request"] - at["simulator got the request"] >= 30_000
    assert at["client got the reply"] - at["simulator got the reply"] >= 20_000
    console = Console(record=True, width=100)
    console.print(hops_table(hops))
    assert "delayed 30 ms" in console.export_text()


async def test_hops_straight_to_the_gateway(start_gateway: GatewayFactory) -> None:
    gateway = await start_gateway()
    admin = make_token("tracer", role="admin")
    hops, result = await trace_call(gateway.url, admin_token=admin, token=admin,
                                    method="sys.ping")
    assert "time" in result
    assert [hop.where for hop in hops] == [
        "client sent the request", "gateway got the request", "gateway sent the reply",
        "client got the reply"]


def test_rtctl_profile_trace_prints_the_hops(env: dict[str, str], tmp_path: Path) -> None:
    served = Served(env=env)
    try:
        done = rtctl("profile", served.base_url, "--trace", "--params", '["x"]', env=env)
        bad = rtctl("profile", served.base_url, "--trace", "--params", "{oops", env=env)
    finally:
        served.stop()
    assert done.returncode == 0, done.stderr
    assert "gateway got the request" in done.stdout
    assert 'result: ["x"]' in done.stdout
    assert bad.returncode == 2  # bad usage
    assert "PARAMS_JSON is not JSON" in bad.stderr
