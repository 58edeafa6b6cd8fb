"""``rtctl top``'s view for the terminal: one summary grid, then methods, lanes, backends.

Every figure a scrape lacks shows as "—" (:class:`~rtctl.observability.top.TopView`
holds ``None`` there), so an older gateway or a memory-only node still reads.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Group
from rich.table import Table

from rtctl.observability.top import TOP_METHODS, TopView

__all__ = ["top_table"]

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


def _labelled(values: dict[str, float] | None, show: Callable[[float], str] = _rate) -> str:
    if values is None:
        return _NOTHING
    return "  ".join(f"{key} {show(value)}" for key, value in values.items()) or "none"


def _yes(value: bool | None) -> str:
    return _NOTHING if value is None else ("yes" if value else "no")


def _title(view: TopView, source: str) -> str:
    build = view.build or {}
    about = " · ".join(build[key] for key in ("node", "version", "transport") if key in build)
    return f"{source}  {about}  over {view.seconds:.1f}s"


def _summary(view: TopView) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    table.add_row("state", f"ready {_yes(view.ready)}  draining {_yes(view.draining)}")
    table.add_row("connections", f"{_count(view.connections)} open  "
                                 f"opened {_rate(view.opened_per_s)}")
    table.add_row("closes by code", _labelled(view.closes_per_s))
    table.add_row("upgrades", _labelled(view.upgrades_per_s))
    table.add_row("messages", f"in {_rate(view.messages_in_per_s)}  "
                              f"out {_rate(view.messages_out_per_s)}")
    table.add_row("bytes", f"in {_bytes(view.bytes_in_per_s, '/s')}  "
                           f"out {_bytes(view.bytes_out_per_s, '/s')}")
    table.add_row("rpc", f"{_rate(view.rpc_calls_per_s)}  errors {_percent(view.rpc_error_ratio)}")
    table.add_row("event-loop lag", f"p99 {_seconds(view.event_loop_lag_p99_s)}")
    table.add_row("sessions", _labelled(view.sessions, _count))
    table.add_row("presence, rooms", f"online {_count(view.online_users)}  "
                                     f"rooms {_count(view.rooms)}  "
                                     f"members {_count(view.room_members)}")
    table.add_row("node heartbeat", f"age {_seconds(view.heartbeat_age_s)}  "
                                    f"ttl {_seconds(view.node_ttl_s)}")
    cpu = _NOTHING if view.cpu_percent is None else f"{view.cpu_percent:.0f} %"
    table.add_row("process", f"cpu {cpu}  rss {_bytes(view.rss_bytes)}")
    return table


def _rows(title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> Table:
    table = Table(title=title, title_justify="left", box=None, pad_edge=False)
    for name in columns:
        table.add_column(name, justify="right" if name != columns[0] else "left", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    if not rows:
        table.add_row(_NOTHING, *[""] * (len(columns) - 1))
    return table


def top_table(view: TopView, source: str) -> Group:
    """The view for the terminal, titled with the scraped URL ``source``."""
    return Group(
        _title(view, source), _summary(view),
        _rows(f"rpc by method (top {TOP_METHODS} by rate)", ("method", "calls", "p50", "p99"),
              [(m.method, _rate(m.calls_per_s), _seconds(m.p50_s), _seconds(m.p99_s))
               for m in view.methods]),
        _rows("outbox lanes", ("lane", "queued", "dropped"),
              [(lane.lane, _count(lane.depth), _rate(lane.drops_per_s))
               for lane in view.lanes]),
        _rows("backends", ("backend", "up", "ops", "errors", "p99"),
              [(b.backend, _yes(b.up), _rate(b.ops_per_s), _rate(b.errors_per_s),
                _seconds(b.p99_s)) for b in view.backends]))
