"""Arena: the demo arena as the TUI's player sees it, beside the server's truth.

The demo (:mod:`rtctl.tui.demo`) plays the arena with the TUI's own player
and a few bots, all through the simulator, so the latency and loss set on the
simulator screen hit them. Above, the player's netcode numbers
(:meth:`~rtctl.demo.player.ArenaPlayer.metrics`); below, two maps
(:class:`~rtctl.tui.widgets.arena_map.ArenaMap`): on the left what the player
draws (its own body predicted, the others interpolated, or, with those
switched off, what a client without them draws:
:meth:`~rtctl.demo.view.Scene.visible`), on the right the server's truth (a
client straight to the gateway). ``p``, ``i`` and ``n`` switch prediction,
interpolation or both on the player's view (without interpolation, its shots
are judged on the newest snapshot's tick). The arrows (or WASD) and space steer
and fire, taking over from the player's brain; ``b`` gives it back
(:class:`~rtctl.tui.stack.Arena`).

The maps are an animation, so they need a frame clock: the player's own frame
loop is that clock (30 Hz, on a schedule that does not drift). Each frame
posts :class:`ArenaScreen.Framed` while this screen shows, and a
:class:`~rtctl.tui.pacer.Pacer` redraws at most every :data:`DRAW_GAP`, as the
state screen paces a room's patches: every step of a player from one cell to
the next is drawn, with no timer of the screen's own. The players share this
event loop, so what a redraw paints is kept small: the maps repaint only the
lines that changed, the server's tick is on the truth's last line (a border
title repaints the whole widget), and the numbers, of fixed height, are
repainted without a layout and only when they read differently. The numbers
follow the app's samples (``sampled``), as the dashboard's do: read a few times
a second, not at the frame rate. The RTT is shown twice: the last ping's, which
follows a change of the link at once, and the smoothed one (RFC 6298 §2, a gain
of 1/8 per ping), which takes a few seconds more.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Static

from rtctl.client.netcode import RECENT, NetcodeSnapshot
from rtctl.demo.view import PlayerView, Scene
from rtctl.tui.pacer import Pacer
from rtctl.tui.screens.base import LiveScreen, milliseconds
from rtctl.tui.session import Session
from rtctl.tui.stack import Arena
from rtctl.tui.widgets.arena_map import ArenaMap, marks_of_state, marks_of_view

__all__ = ["DRAW_GAP", "NO_ARENA", "ArenaScreen"]

# Seconds: the maps are redrawn at most 10 times a second. A cell is 17 × 24 world units
# at 80 × 24, which a player crosses in 110-160 ms: faster redraws would mostly paint the
# same picture again, on the event loop the players themselves run on.
DRAW_GAP = 0.1
NO_ARENA = ("No arena here: it plays in the demo stack (rtctl tui --demo), whose gateway "
            "registers the arena room type.")


def _on(switch: bool) -> str:
    return "ON " if switch else "off"


def _numbers(metrics: NetcodeSnapshot, rtt: float | None, view: PlayerView) -> str:
    """Four lines (each within 78 columns: the panel at 80): the link, the snapshots,
    and what each switch is doing; ``rtt`` is the last ping's, ``metrics.rtt`` smoothed."""
    return "\n".join([
        f"network       RTT {milliseconds(rtt)}, smoothed {milliseconds(metrics.rtt)}; "
        f"in {metrics.bytes_in_per_s / 1000:.1f} kB/s, out {metrics.bytes_out_per_s / 1000:.1f}"
        " kB/s",
        f"snapshots     {milliseconds(metrics.snapshot_age)} old, jitter "
        f"{milliseconds(metrics.jitter)}; last {RECENT:g} s: {metrics.snapshot_loss:.1%} lost, "
        f"inputs {metrics.input_loss:.1%}",
        f"prediction    {_on(view.predict)} (p)  {metrics.inputs_unacked} inputs unacked, "
        f"{metrics.corrections} corrections, last {metrics.last_correction:.1f} units",
        f"interpolation {_on(view.interpolate)} (i)  delay {milliseconds(metrics.delay)}, "
        f"buffer {metrics.buffer_depth} deep, extrapolated {metrics.extrapolated_ratio:.1%}",
    ])


class ArenaScreen(LiveScreen):
    """The arena through the simulator and as the server has it, with the netcode numbers."""

    MODE = "arena"
    FOLLOWS = ("status", "sampled")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("p", "predict", "Predict"),
        Binding("i", "interpolate", "Interp"),
        Binding("n", "netcode", "Both"),
        Binding("up,w", "steer(0, -1)", "Steer", key_display="↑←↓→"),
        Binding("left,a", "steer(-1, 0)", show=False),
        Binding("down,s", "steer(0, 1)", show=False),
        Binding("right,d", "steer(1, 0)", show=False),
        Binding("space", "fire", "Fire"),
        Binding("b", "autopilot", "Brain"),
    ]

    class Framed(Message):
        """The player rendered a frame: the maps may be redrawn."""

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self._pacer = Pacer(self, DRAW_GAP, self.draw_maps)
        self._hooked: Arena | None = None  # the arena whose frames this screen follows

    def body(self) -> ComposeResult:
        yield Static(id="arena-numbers", markup=False)
        with Horizontal(id="arena-views"):
            yield ArenaMap(id="arena-seen")
            yield ArenaMap(id="arena-truth")

    def on_mount(self) -> None:
        self.query_one("#arena-seen", ArenaMap).border_title = "what you see"
        self.query_one("#arena-truth", ArenaMap).border_title = "server truth"

    @property
    def arena(self) -> Arena | None:
        stack = self.session.stack
        return stack.arena if stack is not None else None

    def on_screen_suspend(self) -> None:
        if self._hooked is not None:
            self._hooked.player.on_frame.remove(self._framed)
            self._hooked = None

    def _framed(self, scene: Scene) -> None:
        """Called in the player's frame loop: hand over to this screen's own messages."""
        self.post_message(self.Framed())

    def on_arena_screen_framed(self) -> None:
        self._pacer.poke()

    def update_view(self) -> None:
        """Follow the arena's frames while showing (once the stack is up), and redraw the
        numbers; without an arena, say so in their place."""
        arena = self.arena
        self.query_one("#arena-views").display = arena is not None
        numbers = self.query_one("#arena-numbers", Static)
        if arena is None:
            numbers.update(NO_ARENA if self.session.stack is not None else self.session.status)
            return
        if self._hooked is None and self.is_current:
            arena.player.on_frame.append(self._framed)
            self._hooked = arena
        player = arena.player
        text = _numbers(player.metrics(), player.client.netstats().rtt, player.view)
        if text != numbers.content:
            numbers.update(text, layout=False)
        seen = self.query_one("#arena-seen", ArenaMap)
        subtitle = (f"{'predicted' if player.view.predict else 'as received'}, "
                    f"{'interpolated' if player.view.interpolate else 'latest'}; "
                    f"{'brain' if player.brain is not None else 'your keys'}")
        if subtitle != seen.border_subtitle:  # setting it repaints the whole map
            seen.border_subtitle = subtitle

    def draw_maps(self) -> None:
        """Redraw both maps from the player's scene and the truth, as they are now."""
        arena = self.arena
        if arena is None:
            return
        player, truth = arena.player, arena.truth.store.state
        scene = player.scene
        if scene is not None and player.room is not None:
            own, others = scene.visible(predict=player.view.predict,
                                        interpolate=player.view.interpolate)
            self.query_one("#arena-seen", ArenaMap).marks = tuple(
                marks_of_view(player.name, own, others, player.room.store.state))
        shown = self.query_one("#arena-truth", ArenaMap)
        shown.marks = tuple(marks_of_state(truth, player.name))
        shown.note = f"tick {truth.tick}"

    def _switched(self) -> None:
        self.update_view()
        self.draw_maps()

    def action_predict(self) -> None:
        if (arena := self.arena) is not None:
            arena.player.view.predict = not arena.player.view.predict
            self._switched()

    def action_interpolate(self) -> None:
        if (arena := self.arena) is not None:
            arena.player.view.interpolate = not arena.player.view.interpolate
            self._switched()

    def action_netcode(self) -> None:
        """Both on, unless both are on already: then both off."""
        if (arena := self.arena) is not None:
            view = arena.player.view
            view.predict = view.interpolate = not (view.predict and view.interpolate)
            self._switched()

    def action_steer(self, dx: int, dy: int) -> None:
        if (arena := self.arena) is not None:
            arena.steer(dx, dy)
            self.update_view()

    def action_fire(self) -> None:
        if (arena := self.arena) is not None:
            arena.fire()
            self.update_view()

    def action_autopilot(self) -> None:
        if (arena := self.arena) is not None:
            arena.autopilot()
            self.update_view()
