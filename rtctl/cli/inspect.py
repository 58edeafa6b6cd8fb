"""``rtctl inspect``: watch, filter, record and export a gateway's traffic."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from rtctl.cli.options import dev_token, import_attr
from rtctl.exceptions import ConfigError
from rtctl.inspect.capture import Sink, capture, replay
from rtctl.inspect.filters import parse_filter
from rtctl.inspect.recorder import Recorder
from rtctl.inspect.schemas import SchemaFetcher, schema_endpoint
from rtctl.inspect.states import StateFrames
from rtctl.inspect.view import Viewer
from rtctl.protocol.tap import ADMIN_ROLE
from rtctl.state import Schema
from rtctl.units import parse_duration

__all__ = ["inspect"]


def _sinks(viewer: Viewer, record: Path | None, pcap: Path | None,
           replayed: Path | None) -> list[Sink]:
    sinks: list[Sink] = [viewer]
    if record is not None:
        if replayed is not None and os.path.realpath(record) == os.path.realpath(replayed):
            raise ConfigError("--record would overwrite the recording --replay reads")
        sinks.append(Recorder(record))
    if pcap is not None:
        from rtctl.inspect.pcap import PcapExporter  # scapy takes half a second to import

        sinks.append(PcapExporter(pcap))
    return sinks


def load_schema(spec: str) -> type[Schema]:
    """Import ``MODULE:CLASS`` and check it is a Schema class that declares fields."""
    target = import_attr(spec, "--schema", "mygame.state:Arena")
    if not (isinstance(target, type) and issubclass(target, Schema)):
        raise ConfigError(f"--schema: {spec} is not an rtctl Schema class")
    try:
        target.fields()
    except TypeError as exc:
        raise ConfigError(f"--schema: {spec}: {exc}") from None
    return target


def inspect(
    url: Annotated[str | None, typer.Argument(
        help="Gateway base URL, e.g. ws://127.0.0.1:8765 (its tap is /tap; a URL with a "
             "path is used as it is), or a simulator's control API, e.g. "
             "http://127.0.0.1:8767, to see each frame's impairment. "
             "Leave out with --replay.")] = None,
    token: Annotated[str | None, typer.Option(
        envvar="RTCTL_TOKEN", show_envvar=True,
        help="JWT with the claim role=admin. Without it, an admin dev token is minted if "
             "`rtctl serve` runs in dev mode on this machine.")] = None,
    filter: Annotated[str | None, typer.Option(
        "--filter", help="Show only matching events, e.g. 'method=room.* user=alice', "
                         "'dir=in', 'errors', 'size>1KB' (see docs/debugging.md).")] = None,
    record: Annotated[Path | None, typer.Option(
        help="Write every event (the filter only shapes the screen) to FILE.jsonl.")] = None,
    pcap: Annotated[Path | None, typer.Option(
        help="Write every message to FILE.pcap, for Wireshark or tshark.")] = None,
    duration: Annotated[str | None, typer.Option(
        help="Stop after ... (30s, 2m); by default run until Ctrl-C.")] = None,
    plain: Annotated[bool, typer.Option(
        "--plain", help="One JSON object a line instead of the readable view.")] = False,
    replay_file: Annotated[Path | None, typer.Option(
        "--replay", help="Show a recording (FILE.jsonl) again instead of a live gateway.")] = None,
    schema: Annotated[str | None, typer.Option(
        help="Decode every room's state frames with this Schema class, MODULE:CLASS "
             "(e.g. mygame.state:Arena). Without it, schemas are fetched from a gateway "
             "URL with state.schema; a recording or a simulator shows their headers only.",
    )] = None,
) -> None:
    """Show a gateway's traffic live: every frame, connect, disconnect and refusal.

    Replies are paired with their requests and show their latency; state
    frames show the fields they change, with their version and size. --record
    and --pcap can be combined, also with --replay (to turn a recording into a
    pcap). Stop with Ctrl-C: files are flushed and closed either way.

    Exit codes: 0 stopped (Ctrl-C, --duration, end of the recording); 1 the
    gateway is not there or refused the token; 2 bad usage (a bad filter,
    duration or --schema, a recording that is missing or does not parse).
    """
    if (url is None) == (replay_file is None):
        raise ConfigError("give a gateway URL to watch, or --replay FILE.jsonl (one of the two)")
    endpoint = schema_endpoint(url) if url is not None and schema is None else None
    states = StateFrames(load_schema(schema) if schema else None, fetching=endpoint is not None)
    viewer = Viewer(filter=parse_filter(filter or ""), plain=plain, states=states)
    seconds = parse_duration(duration) if duration is not None else None
    sinks = _sinks(viewer, record, pcap, replay_file)
    try:
        if replay_file is not None:
            replay(replay_file, sinks)
        else:
            assert url is not None
            token = token or dev_token({"role": ADMIN_ROLE})
            if endpoint is not None:
                sinks.append(SchemaFetcher(endpoint, token=token, states=states))
            asyncio.run(capture(url, token=token, sinks=sinks, duration=seconds))
    except KeyboardInterrupt:
        pass
    finally:
        for sink in sinks:
            sink.close()
    _summary(viewer, record, pcap)


def _summary(viewer: Viewer, record: Path | None, pcap: Path | None) -> None:
    """One line on stderr, so a pipe on stdout stays clean."""
    parts = [f"{viewer.shown} events shown"]
    if viewer.dropped:
        parts.append(f"{viewer.dropped} dropped by the gateway (this listener fell behind)")
    if record is not None:
        parts.append(f"recorded to {record}")
    if pcap is not None:
        parts.append(f"pcap written to {pcap}")
    print(f"rtctl inspect: {'; '.join(parts)}", file=sys.stderr)
