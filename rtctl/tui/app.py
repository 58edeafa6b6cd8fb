"""The devtools app: six screens over one :class:`~rtctl.tui.session.Session`.

Start-up is a worker, so the dashboard shows at once and fills in when the
stack is up. A second worker reads the tap into the feed; one timer samples
the numbers and redraws the screen showing, a few times a second, however
busy the gateway is. ``q`` closes the stack (bots, observer, simulator,
gateway) before the app exits, so nothing is left running.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType

from rtctl.exceptions import RtctlError
from rtctl.tui.screens import (
    MODES,
    ConnectionScreen,
    DashboardScreen,
    InspectorScreen,
    LiveScreen,
    PresenceScreen,
    ProfilerScreen,
    SimulatorScreen,
)
from rtctl.tui.session import Session
from rtctl.tui.stack import Stack
from rtctl.tui.widgets.nav_bar import NavBar
from simulator.scenario import Outage

__all__ = ["DEFAULT_REFRESH", "LAG_SWITCH_HOLD", "DevtoolsApp", "StackFactory"]

DEFAULT_REFRESH = 0.5  # seconds between two redraws
LAG_SWITCH_HOLD = 24 * 3600.0  # an outage "until let go"
StackFactory = Callable[[], Awaitable[Stack]]


class DevtoolsApp(App[None]):
    """``rtctl tui``: gateway, simulator, inspector and client on one screen."""

    TITLE = "rtctl"
    CSS_PATH = "app.tcss"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "switch_mode('dashboard')", "Screens", key_display="1-6"),
        *(Binding(str(number), f"switch_mode('{mode}')", show=False)
          for number, mode in enumerate(MODES[1:], 2)),
        Binding("l", "lag_switch", "Lag"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, start: StackFactory, *, refresh: float = DEFAULT_REFRESH,
                 export_dir: Path | None = None) -> None:
        super().__init__()
        self.session = Session(period=refresh)
        self._start = start
        session = self.session
        screens: list[Callable[[], LiveScreen]] = [
            lambda: DashboardScreen(session), lambda: ConnectionScreen(session),
            lambda: PresenceScreen(session),
            lambda: InspectorScreen(session, export_dir=export_dir),
            lambda: SimulatorScreen(session), lambda: ProfilerScreen(session)]
        for mode, make in zip(MODES, screens, strict=True):
            self.add_mode(mode, make)

    async def on_mount(self) -> None:
        await self.switch_mode("dashboard")
        self.set_interval(self.session.period, self._tick)
        self._start_stack()

    @work(exclusive=True, group="stack", exit_on_error=False)
    async def _start_stack(self) -> None:
        try:
            self.session.stack = await self._start()
        except (RtctlError, OSError) as exc:
            self.session.problem = str(exc)
        else:
            self._read_tap()
        self._tick()

    @work(exclusive=True, group="tap", exit_on_error=False)
    async def _read_tap(self) -> None:
        stack = self.session.stack
        assert stack is not None
        try:
            async for events in stack.events():
                self.session.feed.add(events)
        except (RtctlError, OSError) as exc:
            self.notify(f"the tap is closed: {exc}", severity="warning", timeout=10)

    async def on_nav_bar_picked(self, event: NavBar.Picked) -> None:
        await self.switch_mode(event.mode)

    def _tick(self) -> None:
        self.session.sample()
        if isinstance(self.screen, LiveScreen):
            self.screen.update_view()

    def action_lag_switch(self) -> None:
        """Hold an outage on the simulator until pressed again."""
        stack = self.session.stack
        proxy = stack.proxy if stack is not None else None
        if proxy is None:
            self.notify("no simulator in this session (use --demo)", severity="warning")
            return
        if self.session.lag_switch:
            proxy.conditions.end_outages(proxy.elapsed())
        else:
            proxy.add_outage(Outage(proxy.elapsed(), LAG_SWITCH_HOLD))
        self.session.lag_switch = not self.session.lag_switch
        self._tick()

    async def action_quit(self) -> None:
        """Close the stack, then exit (``q``, and Textual's own ``ctrl+q``)."""
        await self._close_stack()
        self.exit()

    async def on_unmount(self) -> None:
        await self._close_stack()  # however the app ends, nothing outlives it

    async def _close_stack(self) -> None:
        self.workers.cancel_all()
        stack, self.session.stack = self.session.stack, None
        if stack is not None:
            await stack.close()
