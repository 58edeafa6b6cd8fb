"""``rtctl simulate``: the traffic-shaping proxy, and ``set``/``show`` to change it live."""

from __future__ import annotations

import asyncio
import json
import signal
from typing import Annotated, Any

import typer

from rtctl.cli.exits import CommandFailed
from rtctl.cli.serve import say
from rtctl.config import MAX_PORT
from rtctl.exceptions import ConfigError
from rtctl.units import format_duration
from simulator.base import ShapingProxy
from simulator.control import ControlServer, request
from simulator.profiles import list_profiles, load_profile
from simulator.proxy import WebSocketProxy
from simulator.scenario import Conditions, parse_outage
from simulator.spec import DirectionSpec, LinkSpec, apply_settings
from simulator.stream import TcpProxy

__all__ = ["app"]

_IMP = "Impairments (both directions unless --up-*/--down-*)"
_DIR = "Per direction (up: client → server, down: server → client)"
_DEFAULT_CONTROL = "127.0.0.1:8767"

app = typer.Typer(invoke_without_command=True, no_args_is_help=False)


def _opt(help_text: str, panel: str = _IMP) -> Any:
    return typer.Option(help=help_text, rich_help_panel=panel)


Latency = Annotated[str | None, _opt(
    "One-way delay added in EACH direction, so the round trip grows by twice it: "
    "--latency 50ms adds 100 ms RTT.")]
Jitter = Annotated[str | None, _opt(
    "Delay variation: ± range for uniform (the default), sigma for normal/pareto. "
    "Jitter never reorders; see --reorder.")]
Rtt = Annotated[str | None, _opt(
    "Round trip to add, split evenly: --rtt 100ms is --latency 50ms.")]
Loss = Annotated[str | None, _opt(
    "Message loss, e.g. 5% or 0.05 (tcp mode: segment loss, felt as retransmission stalls).")]
Bandwidth = Annotated[str | None, _opt(
    "Rate limit with a queue (tail drop when full): 1mbit, 256kbit, 64KB/s.")]
Reorder = Annotated[str | None, _opt(
    "Share of messages held back (by the latency, at least 10 ms) so later ones overtake.")]
Duplicate = Annotated[str | None, _opt("Share of messages delivered twice.")]
Distribution = Annotated[str | None, _opt(
    "Jitter distribution: uniform, normal, pareto, paretonormal (tc-netem).")]
Correlation = Annotated[str | None, _opt("Correlation of successive delays, e.g. 25%.")]
Gemodel = Annotated[str | None, _opt(
    "Bursty loss, Gilbert–Elliott 'p [r [1-h [1-k]]]' as tc-netem, e.g. '1% 30%'.")]
Queue = Annotated[str | None, _opt("Bytes queued for --bandwidth before drops (default 1 s).")]
Outage = Annotated[list[str] | None, _opt(
    "DURATION@START[,blackhole|reset]: e.g. 5s@30s drops all traffic 30 s after start; "
    ",reset cuts every connection instead. Repeatable.")]


def _direction_option(direction: str, what: str) -> Any:
    return typer.Option(f"--{direction}-{what}", help=f"{what} {direction} only",
                        rich_help_panel=_DIR)


def _settings(**given: Any) -> dict[str, Any]:
    if given.get("latency") is not None and given.get("rtt") is not None:
        raise ConfigError("give --latency (one way) or --rtt (round trip), not both")
    return {k: v for k, v in given.items() if v is not None}


@app.callback()
def simulate(
    ctx: typer.Context,
    listen: Annotated[str, typer.Option(help="HOST:PORT to accept clients on; port 0 picks "
                                             "a free one.")] = "127.0.0.1:8766",
    upstream: Annotated[str, typer.Option(help="The server: ws://HOST:PORT (path and query "
                                               "of each client are kept).")]
        = "ws://127.0.0.1:8765",
    mode: Annotated[str, typer.Option(help="ws: impair whole WebSocket messages. tcp: shape "
                                           "the byte stream as TCP suffers it.")] = "ws",
    latency: Latency = None, jitter: Jitter = None, rtt: Rtt = None, loss: Loss = None,
    bandwidth: Bandwidth = None, reorder: Reorder = None, duplicate: Duplicate = None,
    distribution: Distribution = None, correlation: Correlation = None,
    gemodel: Gemodel = None, queue: Queue = None, outage: Outage = None,
    up_latency: Annotated[str | None, _direction_option("up", "latency")] = None,
    down_latency: Annotated[str | None, _direction_option("down", "latency")] = None,
    up_jitter: Annotated[str | None, _direction_option("up", "jitter")] = None,
    down_jitter: Annotated[str | None, _direction_option("down", "jitter")] = None,
    up_loss: Annotated[str | None, _direction_option("up", "loss")] = None,
    down_loss: Annotated[str | None, _direction_option("down", "loss")] = None,
    up_bandwidth: Annotated[str | None, _direction_option("up", "bandwidth")] = None,
    down_bandwidth: Annotated[str | None, _direction_option("down", "bandwidth")] = None,
    profile: Annotated[str | None, typer.Option(
        help="A named profile (see --list-profiles) or a TOML file; flags apply on top.")]
        = None,
    seed: Annotated[int | None, typer.Option(help="Seed the random impairments.")] = None,
    control: Annotated[str, typer.Option(
        help="HOST:PORT of the HTTP+JSON control API and /metrics; 'off' disables it.")]
        = _DEFAULT_CONTROL,
    list_profiles_: Annotated[bool, typer.Option(
        "--list-profiles", help="Show the profiles with their numbers and sources.")] = False,
) -> None:
    """Run a traffic-shaping proxy between game clients and a WebSocket server.

    Example: rtctl simulate --loss 5% --latency 50ms --upstream ws://127.0.0.1:8765, then
    connect clients to ws://127.0.0.1:8766/ws. While it runs, `rtctl simulate set --loss 10%`
    and `rtctl simulate show` change and read it without dropping connections.

    Latency is one way and added in each direction: --latency 200ms shows as a 400 ms
    round trip (use --rtt to give the round trip instead).

    Exit codes: 0 stopped by a signal; 1 cannot listen (address in use) or no simulator
    answers `set`/`show`; 2 bad usage (a bad value, profile or HOST:PORT).
    """
    if ctx.invoked_subcommand is not None:
        return
    if list_profiles_:
        _print_profiles()
        return
    if mode not in ("ws", "tcp"):
        raise ConfigError(f"--mode must be ws or tcp, not {mode!r}")
    flags = _settings(
        latency=latency, jitter=jitter, rtt=rtt, loss=loss, bandwidth=bandwidth,
        reorder=reorder, duplicate=duplicate, distribution=distribution,
        correlation=correlation, gemodel=gemodel, queue=queue, up_latency=up_latency,
        down_latency=down_latency, up_jitter=up_jitter, down_jitter=down_jitter,
        up_loss=up_loss, down_loss=down_loss, up_bandwidth=up_bandwidth,
        down_bandwidth=down_bandwidth)
    conditions = (load_profile(profile).conditions(flags) if profile
                  else Conditions(apply_settings(LinkSpec(), flags)))
    for text in outage or []:
        conditions.add_outage(parse_outage(text))
    host, port = _host_port(listen, "--listen")
    proxy_class = WebSocketProxy if mode == "ws" else TcpProxy
    proxy = proxy_class(upstream, conditions, host=host, port=port, seed=seed)
    asyncio.run(_run(proxy, None if control == "off" else _host_port(control, "--control"),
                     upstream, mode, profile))


def _host_port(text: str, flag: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > MAX_PORT:
        raise ConfigError(f"{flag} expects HOST:PORT with a port from 0 to {MAX_PORT}, "
                          f"like 127.0.0.1:8766, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


async def _listen(server: ShapingProxy | ControlServer, flag: str) -> None:
    try:
        await server.start()
    except OSError as exc:
        raise CommandFailed(f"{flag}: cannot listen on {server.host}:{server.requested_port}: "
                            f"{exc.strerror or exc}") from None


def _round_trip(spec: LinkSpec) -> str | None:
    """What the latency adds to a round trip: both directions' one-way delays."""
    added = spec.added_rtt()
    return (f"round trip: +{format_duration(added)} (latency is one way, added in each "
            "direction)") if added else None


async def _run(proxy: ShapingProxy, control: tuple[str, int] | None, upstream: str,
               mode: str, profile: str | None) -> None:
    api = ControlServer(proxy, host=control[0], port=control[1]) if control else None
    await _listen(proxy, "--listen")
    if api is not None:
        await _listen(api, "--control")
    say(f"rtctl simulate listening on {proxy.url} → {upstream} ({mode} mode"
        + (f", profile {profile}" if profile else "") + ")")
    for line in proxy.conditions.banner():
        say(f"  {line}")
    if round_trip := _round_trip(proxy.conditions.base):
        say(f"  {round_trip}")
    say(f"  control: {api.url} (rtctl simulate set/show, /metrics)" if api
        else "  control: off")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    if api is not None:
        await api.stop()
    await proxy.stop()
    say("rtctl simulate stopped")


def _print_profiles() -> None:
    for profile in list_profiles():
        say(f"{profile.name:28} {profile.conditions().base.describe()}")
        say(f"{'':28} {profile.description} — source: {profile.source}")


ControlOption = Annotated[str, typer.Option(
    "--control", envvar="RTCTL_SIMULATE_CONTROL", help="The running simulator's control API.")]


@app.command("set")
def set_(
    latency: Latency = None, jitter: Jitter = None, rtt: Rtt = None, loss: Loss = None,
    bandwidth: Bandwidth = None, reorder: Reorder = None, duplicate: Duplicate = None,
    distribution: Distribution = None, correlation: Correlation = None,
    gemodel: Gemodel = None, queue: Queue = None,
    outage: Annotated[str | None, typer.Option(
        help="Start an outage: DURATION[@START][,blackhole|reset]; now if no @START.")]
        = None,
    clear: Annotated[bool, typer.Option(
        "--clear", help="Start from no impairment instead of the current ones.")] = False,
    user: Annotated[str | None, typer.Option(
        help="Apply to this token user only (a per-client rule).")] = None,
    address: Annotated[str | None, typer.Option(
        help="Apply to this client address (HOST or HOST:PORT) only.")] = None,
    control: ControlOption = _DEFAULT_CONTROL,
) -> None:
    """Change a running simulator's impairments; open connections stay open."""
    settings = _settings(latency=latency, jitter=jitter, rtt=rtt, loss=loss,
                         bandwidth=bandwidth, reorder=reorder, duplicate=duplicate,
                         distribution=distribution, correlation=correlation,
                         gemodel=gemodel, queue=queue)
    apply_settings(LinkSpec(), settings)  # a bad value fails here, before any request
    if user or address:
        rules = [r for r in request(control, "GET", "/rules")
                 if (r["user"], r["address"]) != (user, address)]
        if settings or not clear:
            rules.insert(0, {"user": user, "address": address, "settings": settings})
        request(control, "PUT", "/rules", rules)
    elif settings or clear:
        request(control, "PUT" if clear else "PATCH", "/impairments", settings)
    if outage:
        duration, _, kind = outage.partition(",")
        length, _, at = duration.partition("@")
        request(control, "POST", "/outages", {"duration": length, "at": at or None,
                                              "kind": kind or "blackhole"})
    _show(control)


@app.command("show")
def show(control: ControlOption = _DEFAULT_CONTROL,
         as_json: Annotated[bool, typer.Option("--json", help="Print raw JSON.")] = False,
         ) -> None:
    """Print a running simulator's impairments and counters."""
    if as_json:
        say(json.dumps({"impairments": request(control, "GET", "/impairments"),
                        "stats": request(control, "GET", "/stats")}, indent=2))
        return
    _show(control)


def _show(control: str) -> None:
    state = request(control, "GET", "/impairments")
    stats = request(control, "GET", "/stats")
    current = LinkSpec(*(DirectionSpec.from_json(state["current"][d]) for d in ("up", "down")))
    say(f"impairments: {current.describe()}")
    if round_trip := _round_trip(current):
        say(f"  {round_trip}")
    for rule in state["rules"]:
        say(f"  rule {rule['user'] or rule['address']}: {rule['settings']}")
    for outage in state["outages"]:
        say(f"  outage {outage['kind']} {outage['duration']:g}s at {outage['start']:g}s")
    say(f"connections: {stats['connections_open']} open, {stats['connections_opened']} total;"
        f" messages up {stats['messages'].get('up', 0)}, down {stats['messages'].get('down', 0)};"
        f" dropped {sum(stats['dropped'].values())}")

