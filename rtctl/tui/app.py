"""The devtools app: eight screens over one :class:`~rtctl.tui.session.Session`.

Start-up is a worker, so the dashboard shows at once and fills in when the
stack is up. The screens repaint when their data changes, never on a timer
of their own: they follow the app's reactives (:attr:`LiveScreen.FOLLOWS`),
which move as the data arrives. A second worker reads the tap into the feed
and moves ``tapped``, paced (:class:`~rtctl.tui.pacer.Pacer`) to at most once
every :data:`TAP_GAP`, so a busy gateway costs a few redraws a second, not
one per batch (a redrawn table is the most expensive thing the app paints).
The observer's state changes move ``status``, its recoveries ``recovery``;
every change the TUI makes to the simulator moves ``link``. The one periodic timer left samples the
numbers that have no event (the frame rate, the RTT, the counters) into
sparklines, and ``sampled`` follows it. The arena's maps move with its
player's frames, paced the same way (:mod:`~rtctl.tui.screens.arena`). ``q``
closes the stack (arena, bots, observer, simulator, gateway) before the app
exits, so nothing is left running.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.reactive import var

from rtctl.client import StateChanged
from rtctl.exceptions import RtctlError
from rtctl.tui.pacer import Pacer
from rtctl.tui.screens import (
    MODES,
    ArenaScreen,
    ConnectionScreen,
    DashboardScreen,
    InspectorScreen,
    LiveScreen,
    PresenceScreen,
    ProfilerScreen,
    SimulatorScreen,
    StateScreen,
)
from rtctl.tui.session import Session
from rtctl.tui.stack import Stack
from rtctl.tui.widgets.nav_bar import NavBar
from simulator.scenario import Outage

__all__ = ["DEFAULT_REFRESH", "LAG_SWITCH_HOLD", "TAP_GAP", "DevtoolsApp", "StackFactory"]

DEFAULT_REFRESH = 0.5  # seconds between two samples of the rate and the RTT
TAP_GAP = 0.2  # seconds: ``tapped`` moves at most this often
LAG_SWITCH_HOLD = 24 * 3600.0  # an outage "until let go"
StackFactory = Callable[[], Awaitable[Stack]]


class DevtoolsApp(App[None]):
    """``rtctl tui``: gateway, simulator, inspector and client on one screen."""

    TITLE = "rtctl"
    CSS_PATH = "app.tcss"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "switch_mode('dashboard')", "Screens", key_display="1-8"),
        *(Binding(str(number), f"switch_mode('{mode}')", show=False)
          for number, mode in enumerate(MODES[1:], 2)),
        Binding("l", "lag_switch", "Lag"),
        Binding("q", "quit", "Quit"),
    ]

    # What the screens follow; each moves when its part of the session changes. A `var`, not
    # a `reactive`: the screens' watchers repaint what changed, where a repainting reactive
    # would repaint the whole screen at every tap batch and sample.
    status: var[str] = var("starting…", init=False)  # Session.status
    tapped: var[int] = var(0, init=False)  # Feed.added, at most every TAP_GAP s
    sampled: var[int] = var(0, init=False)  # samples taken (Session.sample)
    link: var[int] = var(0, init=False)  # the simulator's Conditions.version
    recovery: var[int] = var(0, init=False)  # the observer's recovery status changed

    def __init__(self, start: StackFactory, *, refresh: float = DEFAULT_REFRESH,
                 export_dir: Path | None = None) -> None:
        super().__init__()
        self.session = Session(period=refresh)
        self._start = start
        self._tap = Pacer(self, TAP_GAP, self._show_tap)
        session = self.session
        screens: list[Callable[[], LiveScreen]] = [
            lambda: DashboardScreen(session), lambda: ConnectionScreen(session),
            lambda: PresenceScreen(session),
            lambda: InspectorScreen(session, export_dir=export_dir),
            lambda: SimulatorScreen(session), lambda: ProfilerScreen(session),
            lambda: StateScreen(session), lambda: ArenaScreen(session)]
        for mode, make in zip(MODES, screens, strict=True):
            self.add_mode(mode, make)

    async def on_mount(self) -> None:
        await self.switch_mode("dashboard")
        self._start_stack()

    @work(exclusive=True, group="stack", exit_on_error=False)
    async def _start_stack(self) -> None:
        try:
            stack = self.session.stack = await self._start()
        except (RtctlError, OSError) as exc:
            self.session.problem = str(exc)
        else:
            stack.observer.on_state_change(self._observer_changed)
            stack.recovery.on_change(self._recovery_moved)
            self.set_interval(self.session.period, self._sample)
            self._read_tap()
        self.status = self.session.status

    def _observer_changed(self, event: StateChanged) -> None:
        self.status = self.session.status

    def _recovery_moved(self) -> None:
        self.recovery += 1

    @work(exclusive=True, group="tap", exit_on_error=False)
    async def _read_tap(self) -> None:
        stack = self.session.stack
        assert stack is not None
        feed = self.session.feed
        try:
            async for events in stack.events():
                feed.add(events)
                self._tap.poke()
        except (RtctlError, OSError) as exc:
            self.notify(f"the tap is closed: {exc}", severity="warning", timeout=10)

    def _show_tap(self) -> None:
        self.tapped = self.session.feed.added

    def _sample(self) -> None:
        self.session.sample()
        self.sampled += 1

    async def on_nav_bar_picked(self, event: NavBar.Picked) -> None:
        await self.switch_mode(event.mode)

    def on_simulator_screen_changed(self) -> None:
        self._link_moved()

    def _link_moved(self) -> None:
        stack = self.session.stack
        if stack is not None and stack.proxy is not None:
            self.link = stack.proxy.conditions.version

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
        self._link_moved()

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
