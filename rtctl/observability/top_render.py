"""``rtctl top``'s view for the terminal: a title, one summary grid, the busiest methods.

It is made for a 80×24 terminal (a busy node on Redis and NATS fills it), and Rich's live
display crops what does not fit from the bottom, where the least busy methods are: so
figures share lines, label values
that did not move (a close code at 0/s, an idle lane) are left out, and a backend
is one line. Every figure a scrape lacks shows as "—"
(:class:`~rtctl.observability.top.TopView` holds ``None`` there), so an older
gateway or a memory-only node still reads; a family with nothing to show says
``none``.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from rtctl.observability.top import BackendRow, LaneRow, MethodRow, TopView

__all__ = ["top_table", "with_failure"]

_NOTHING = "—"


def _rate(value: float | None) -> str:
    return _NOTHING if value is None else f"{value:,.1f}/s"


def _count(value: float | None) -> str:
    return _NOTHING if value is None else f"{value:,.0f}"


def _seconds(value: float | None) -> str:
    # Each unit holds while three significant digits stay below 1000: ``.3g`` prints 999.5
    # as "1e+03", so the scaled value is compared, not the seconds (0.9995 * 1000 may be 999.5).
    if value is None:
        return _NOTHING
    if (micros := value * 1e6) < 999.5:  # RPC handlers and Redis calls take microseconds
        return f"{micros:.3g} µs"
    if (millis := value * 1000) < 999.5:
        return f"{millis:.3g} ms"
    return f"{value:.3g} s" if value < 100 else f"{value:,.0f} s"  # a heartbeat age may be hours


def _bytes(value: float | None, suffix: str = "") -> str:
    if value is None:
        return _NOTHING
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:,.1f} {unit}{suffix}" if unit != "B" else f"{value:,.0f} B{suffix}"
        value /= 1024
    return f"{value:,.1f} GiB{suffix}"


def _percent(value: float | None) -> str:
    if value is None:
        return _NOTHING
    if 0 < (percent := 100 * value) < 0.05:  # "0.0 %" would hide errors eating a 99.9 % SLO
        return "<0.1 %"
    return f"{percent:.1f} %" if percent < 9.95 else f"{percent:.0f} %"


def _labelled(values: dict[str, float] | None, show: Callable[[float], str] = _count) -> str:
    if values is None:
        return _NOTHING
    return "  ".join(f"{key} {show(value)}" for key, value in values.items()) or "none"


def _moving(rates: dict[str, float] | None) -> str:
    """Only the labels with a non-zero rate: every close code and upgrade outcome is
    zero-initialised (design note §1), and fifteen codes at 0.0/s fill three lines."""
    if rates is None:
        return _NOTHING
    return _labelled({key: rate for key, rate in rates.items() if rate}, _rate)


def _yes(value: bool | None) -> str:
    return _NOTHING if value is None else ("yes" if value else "no")


def _rpc(view: TopView) -> str:
    if not view.rpc_calls_per_s:  # None (no family) or no call: no ratio to give
        return "0 calls" if view.rpc_calls_per_s == 0 else _NOTHING
    return f"{_rate(view.rpc_calls_per_s)}  errors {_percent(view.rpc_error_ratio)}"


def _lanes(lanes: list[LaneRow] | None) -> str:
    """The lanes with messages queued or dropping; the others have nothing to say."""
    if lanes is None:
        return _NOTHING
    busy = [f"{lane.lane} {_count(lane.depth)} queued"
            + (f", {_rate(lane.drops_per_s)} dropped" if lane.drops_per_s else "")
            for lane in lanes if lane.depth or lane.drops_per_s]
    return "  ".join(busy) or ("nothing queued or dropped" if lanes else "none")


def _backend(row: BackendRow) -> tuple[str, str]:
    return (f"backend {row.backend}",
            f"up {_yes(row.up)}  ops {_rate(row.ops_per_s)}  "
            f"errors {_rate(row.errors_per_s)}  p99 {_seconds(row.p99_s)}")


def _title(view: TopView, source: str) -> Text:
    build = view.build or {}
    about = " · ".join(build[key] for key in ("node", "version", "transport") if key in build)
    return Text(f"{source}  {about}  over {view.seconds:.1f}s", no_wrap=True,
                overflow="ellipsis")


def _summary(view: TopView) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    table.add_row("node", f"ready {_yes(view.ready)}  draining {_yes(view.draining)}  "
                          f"heartbeat age {_seconds(view.heartbeat_age_s)}  "
                          f"ttl {_seconds(view.node_ttl_s)}")
    cpu = _NOTHING if view.cpu_percent is None else f"{view.cpu_percent:.0f} %"
    table.add_row("process", f"cpu {cpu}  rss {_bytes(view.rss_bytes)}  "
                             f"event-loop lag p99 {_seconds(view.event_loop_lag_p99_s)}")
    table.add_row("connections", f"{_count(view.connections)} open  "
                                 f"opened {_rate(view.opened_per_s)}")
    table.add_row("closes by code", _moving(view.closes_per_s))
    table.add_row("upgrades", _moving(view.upgrades_per_s))
    table.add_row("messages", f"in {_rate(view.messages_in_per_s)} "
                              f"({_bytes(view.bytes_in_per_s, '/s')})  "
                              f"out {_rate(view.messages_out_per_s)} "
                              f"({_bytes(view.bytes_out_per_s, '/s')})")
    table.add_row("rpc", _rpc(view))
    table.add_row("sessions", f"{_labelled(view.sessions)}  "
                              f"users online {_count(view.online_users)}")
    table.add_row("rooms", f"{_count(view.rooms)}  members {_count(view.room_members)}")
    table.add_row("outbox lanes", _lanes(view.lanes))
    if view.backends:
        for row in view.backends:
            table.add_row(*_backend(row))
    else:
        table.add_row("backends", _NOTHING if view.backends is None else "none")
    return table


def _methods(methods: list[MethodRow] | None) -> Table:
    # No title: a table's title wraps to the table's width, and costs a line.
    table = Table(box=None, pad_edge=False)
    for name in ("rpc by method", "calls", "p50", "p99"):
        table.add_column(name, justify="left" if name == "rpc by method" else "right",
                         no_wrap=True)
    for m in methods or ():
        table.add_row(m.method, _rate(m.calls_per_s), _seconds(m.p50_s), _seconds(m.p99_s))
    if not methods:
        table.add_row(_NOTHING if methods is None else "none", "", "", "")
    return table


def top_table(view: TopView, source: str) -> Group:
    """The view for the terminal, titled with the scraped URL ``source``."""
    return Group(_title(view, source), _summary(view), _methods(view.methods))


def with_failure(shown: RenderableType, reason: str, at: str) -> Group:
    """``shown`` (the last view) under the line saying the scrape at ``at`` failed."""
    return Group(Text(f"scrape failed {at}: {reason}; retrying", style="bold red",
                      no_wrap=True, overflow="ellipsis"), shown)
