"""Simulator: change the embedded proxy's impairments live and watch the other screens.

A profile replaces the base settings (its time-varying phases are for
``rtctl simulate``; here the base is what a click sets). The form adds
settings on top; a per-user rule puts one player on a worse link
(:class:`simulator.scenario.Rule`). The lag switch (``l``, from any screen)
holds a blackhole outage until pressed again. Every change goes through
:class:`simulator.scenario.Conditions`, the object the control API changes;
this screen then posts :class:`SimulatorScreen.Changed` and the app moves its
``link``, which this screen and the dashboard follow (and each sample, for
the proxy's counters).
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.message import Message
from textual.widgets import Select, Static

from rtctl.exceptions import ConfigError
from rtctl.tui.screens.base import LiveScreen
from rtctl.tui.widgets.impairment_form import ImpairmentForm
from simulator.profiles import list_profiles, load_profile
from simulator.scenario import Rule

__all__ = ["SimulatorScreen"]

_CLEAN = "clean"  # the Select's choice that clears every setting


class SimulatorScreen(LiveScreen):
    """Profiles, settings for everyone, per-user rules, and what the link does now."""

    MODE = "simulator"
    FOLLOWS = ("link", "sampled")

    class Changed(Message):
        """The conditions were changed from this screen."""

    def body(self) -> ComposeResult:
        choices = [(f"{p.name}: {p.description}", p.name) for p in list_profiles()]
        yield Select([("clean link (no impairment)", _CLEAN), *choices], compact=True,
                     prompt="profile…", id="profile-select")
        yield Static("everyone (latency is each way: 200ms makes a 400 ms RTT):",
                     classes="label")
        yield ImpairmentForm(id="all")
        yield Static("one player (a rule by user):", classes="label")
        yield ImpairmentForm(per_user=True, id="rule")
        yield Static(id="conditions")

    @on(Select.Changed, "#profile-select")
    def _profile(self, event: Select.Changed) -> None:
        proxy = self.session.stack.proxy if self.session.stack else None
        if proxy is None or not isinstance(event.value, str):
            return
        settings = {} if event.value == _CLEAN else load_profile(event.value).settings
        proxy.conditions.update(settings, replace=True)
        self.post_message(self.Changed())

    @on(ImpairmentForm.Submitted)
    def _submitted(self, event: ImpairmentForm.Submitted) -> None:
        proxy = self.session.stack.proxy if self.session.stack else None
        if proxy is None:
            self.notify("no simulator in this session (use --demo)", severity="warning")
            return
        conditions = proxy.conditions
        try:
            if event.user is None:
                conditions.update(event.settings)
            else:
                others = [r for r in conditions.rules if r.user != event.user]
                mine = [Rule(settings=event.settings, user=event.user)] if event.settings else []
                conditions.set_rules([*others, *mine])
        except ConfigError as exc:
            self.notify(str(exc), severity="error")
            return  # the field keeps the focus, to be corrected
        self.set_focus(None)  # applied: the keys are commands again (1-8, q, l)
        self.post_message(self.Changed())

    def update_view(self) -> None:
        stack = self.session.stack
        proxy = stack.proxy if stack else None
        if proxy is None:
            self.query_one("#conditions", Static).update(
                "The simulator runs embedded with --demo; against a remote gateway, put "
                "`rtctl simulate` in front of it and change it with `rtctl simulate set`.")
            return
        metrics = proxy.metrics
        lines = proxy.conditions.banner()
        if self.session.lag_switch:
            lines.append("LAG SWITCH: all traffic blackholed (l to let go)")
        lines.append(f"messages up {metrics.messages['up']}, down {metrics.messages['down']}; "
                     f"dropped {sum(metrics.dropped.values())}; "
                     f"{metrics.connections_open} connections through {proxy.url}")
        self.query_one("#conditions", Static).update("\n".join(lines))
