"""``rtctl top``: a gateway's key metrics, live in the terminal, from its ``/metrics``."""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from typing import Annotated

import typer
from rich.console import Console, RenderableType
from rich.live import Live

from rtctl.cli.exits import CommandFailed
from rtctl.exceptions import ConfigError
from rtctl.observability.top import (
    NotMetrics,
    Scrape,
    metrics_url,
    parse_scrape,
    top_view,
    view_json,
)
from rtctl.observability.top_render import top_table, with_failure
from rtctl.units import parse_duration

__all__ = ["top"]

_TIMEOUT = 5.0  # seconds a scrape may take; Prometheus' default scrape_timeout is 10 s


class ScrapeFailed(CommandFailed):
    """A scrape that failed: the message for the command's one error line, and ``reason``,
    short enough for the live view's status line (which shows the URL already)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def scrape(url: str) -> Scrape:
    """One ``GET`` of the metrics ``url``, parsed; :class:`ScrapeFailed` if it cannot be read."""
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT) as response:
            text = response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        raise ScrapeFailed(f"{url} answered HTTP {exc.code}: not a metrics endpoint "
                           "(give the gateway's base URL or its /metrics)",
                           f"HTTP {exc.code}") from None
    # HTTPException: a gateway that stopped halfway through its answer (IncompleteRead).
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = str(getattr(exc, "reason", exc))
        raise ScrapeFailed(f"cannot read {url}: {reason}", reason) from None
    try:
        return parse_scrape(text)
    except NotMetrics as exc:
        raise ScrapeFailed(f"{url} is not a metrics endpoint: {exc}", str(exc)) from None


def top(
    url: Annotated[str, typer.Argument(
        help="The gateway: its base URL (http://127.0.0.1:8765), its /metrics URL, or "
             "the WebSocket URL clients use (ws://127.0.0.1:8765/ws).")],
    interval: Annotated[str, typer.Option(
        help="Time between two scrapes; rates and quantiles cover it (500ms, 1s, 5s).")] = "1s",
    once: Annotated[bool, typer.Option(
        "--once", help="Scrape twice, one --interval apart, print the view and exit.")] = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help="With --once: print the view as one JSON object (null where the "
                       "gateway lacks a metric).")] = False,
) -> None:
    """Watch a gateway's key metrics live, for people without a Grafana.

    Connections and closes by code, upgrades by outcome, messages and bytes
    per second, RPC calls, error ratio and p50/p99 by method, event-loop lag,
    outbox lanes, backends, sessions, presence and rooms, the node's heartbeat,
    CPU and memory. Rates and quantiles are over the last --interval, as
    Prometheus' rate() and histogram_quantile() would compute them; a metric
    the gateway does not expose shows as "—". A scrape that fails once the
    view is up (a restart, a drain, a timeout) is shown above the last view and
    retried at the next interval. Stop with Ctrl-C.

    Example: rtctl top http://127.0.0.1:8765 --interval 2s

    Exit codes: 0 stopped (Ctrl-C, or --once done); 1 the first scrape (or with
    --once, either) cannot be read or is not a metrics endpoint; 2 bad usage.
    """
    seconds = parse_duration(interval)
    if seconds <= 0:
        raise ConfigError(f"--interval {interval!r} must be longer than zero")
    if as_json and not once:
        raise ConfigError("--json prints one view: use it with --once")
    target = metrics_url(url)
    console = Console()
    try:
        before, then = scrape(target), time.monotonic()
        if once:
            time.sleep(seconds)
            view = top_view(before, scrape(target), time.monotonic() - then)
            if as_json:
                typer.echo(json.dumps(view_json(view)))
            else:
                console.print(top_table(view, target))
            return
        shown: RenderableType = f"reading {target} every {interval}…"
        with Live(shown, console=console, auto_refresh=False) as live:
            while True:
                time.sleep(seconds)
                try:
                    after, now = scrape(target), time.monotonic()
                except ScrapeFailed as exc:
                    # The on-call person is watching a restart or a stall: keep the last
                    # view; the next good scrape's window reaches back to the last good
                    # one, and counters that restarted count from zero (top_view).
                    live.update(with_failure(shown, exc.reason, time.strftime("%H:%M:%S")),
                                refresh=True)
                    continue
                shown = top_table(top_view(before, after, now - then), target)
                live.update(shown, refresh=True)
                before, then = after, now
    except KeyboardInterrupt:
        pass
