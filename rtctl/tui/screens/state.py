"""State: one stateful room's state, live, and what its patches cost.

The room is typed in the field (``/``; the demo starts on ``drift:1``, a
built-in room that moves by itself). While this screen shows, the observer is
a member of that room (:class:`~rtctl.tui.watched_room.WatchedRoom`, over
:class:`~rtctl.client.SyncedRoom`); switching to another screen leaves it,
coming back joins it again. A room that is not stateful is refused by the
gateway before it is joined, and the screen says why.

The tree (:class:`~rtctl.tui.widgets.state_tree.StateTree`) and the numbers
are redrawn from the store's change events, at most every :data:`DRAW_GAP`
(a :class:`~rtctl.tui.pacer.Pacer`: a room ticks 20 times a second or more),
never on a timer of their own. The numbers: the room's version and tick rate;
the client's bytes per patch (mean and last), patches per second, gaps,
resyncs and stale patches (:class:`~rtctl.client.StoreStats`); the server's
encode time per patch, patches coalesced for slow members and catch-up
deltas (``state.info``, asked every :data:`INFO_EVERY` seconds and on ``r``,
in a worker; one at a time, so a slow link delays the answer, never drops it).
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.reactive import reactive
from textual.widgets import Input, Static

from rtctl.client import ClientError
from rtctl.state import StateError
from rtctl.tui.pacer import Pacer
from rtctl.tui.screens.base import LiveScreen
from rtctl.tui.session import Session
from rtctl.tui.watched_room import WatchedRoom
from rtctl.tui.widgets.state_tree import StateTree

__all__ = ["DRAW_GAP", "INFO_EVERY", "StateScreen"]

DRAW_GAP = 0.2  # seconds: the tree and the numbers are redrawn at most this often
INFO_EVERY = 1.0  # seconds between two state.info calls
_ASK = "type a stateful room's name (/ then enter), e.g. drift:1"


def _figure(value: Any, unit: str = "", spec: str = ".1f") -> str:
    """``value`` with its unit, or a dash with it until there is a value."""
    return f"{'–' if value is None else format(value, spec)}{unit}"


def _numbers(watched: WatchedRoom) -> str:
    """The room's lines above the tree: version and rate, the client's and the server's costs."""
    store, info = watched.store, watched.info or {}
    stats = store.stats
    lines = [
        f"room     {watched.name} ({info.get('type', '…')}), version "
        f"{_figure(store.version, spec='d')}, {_figure(info.get('tick_rate'), ' Hz', 'g')}, "
        f"{(watched.synced.joined or {}).get('encoding', '?')}",
        f"client   {_figure(watched.patch_rate, ' patches/s')}, "
        f"{stats.bytes_per_patch:.1f} B/patch (last {stats.last_patch_bytes} B); "
        f"gaps {stats.gaps}, resyncs {stats.resyncs}, stale {stats.stale}",
        f"server   encode {_figure(info.get('encode_us_per_patch'), ' µs')}/patch, "
        f"{_figure(info.get('bytes_per_patch'), ' B')}/patch; coalesced "
        f"{_figure(info.get('coalesced'), spec='d')}, catch-ups "
        f"{_figure(info.get('catch_ups'), spec='d')}",
    ]
    if store.needs_resync:
        lines.append(f"waiting for a snapshot: {store.resync_reason}")
    return "\n".join(lines)


class StateScreen(LiveScreen):
    """A stateful room's state as a tree, with its bytes per patch."""

    MODE = "state"
    BINDINGS: ClassVar[list[BindingType]] = [
        ("slash", "focus_room", "Room"), ("r", "refresh", "Refresh")]

    # always_update: entering the same name again retries a join that failed.
    room: reactive[str] = reactive("", init=False, always_update=True)  # the room asked for
    watched: reactive[WatchedRoom | None] = reactive(None, init=False)  # the room joined
    # What stands instead of the numbers; always_update: the same failure again is shown again.
    note: reactive[str] = reactive(_ASK, init=False, always_update=True)

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self._pacer = Pacer(self, DRAW_GAP, self._draw_changes)
        self._settling = asyncio.Lock()  # one join or leave at a time, in order
        self._showing = False
        self._asking = False  # a state.info call is on its way (a slow link: let it finish)
        self._offered = False  # the stack's own room type was offered as the room

    def body(self) -> ComposeResult:
        yield Input(placeholder="room (/), e.g. drift:1", id="state-room")
        yield Static(_ASK, id="state-numbers", markup=False)  # error texts hold brackets
        yield StateTree(id="state-tree")

    def on_mount(self) -> None:
        self.query_one(StateTree).focus()
        self.watch(self.app, "status", self._stack_moved)
        self.set_interval(INFO_EVERY, self.action_refresh)

    def on_screen_resume(self) -> None:
        self._showing = True
        self._settle()

    def on_screen_suspend(self) -> None:
        self._showing = False
        self._settle()

    def _stack_moved(self) -> None:
        """The observer moved (the stack came up, a reconnect): be where asked. The first
        time, on a stack with room types of its own (the demo), start in one of them."""
        stack = self.session.stack
        if stack is not None and stack.schemas and not self._offered:
            self._offered = True
            if not self.room:
                self.room = f"{next(iter(stack.schemas))}:1"  # watch_room settles
                return
        self._settle()

    def watch_room(self, room: str) -> None:
        self.query_one("#state-room", Input).value = room
        self._settle()

    @on(Input.Submitted, "#state-room")
    def _entered(self, event: Input.Submitted) -> None:
        self.room = event.value.strip()
        self.query_one(StateTree).focus()

    def action_focus_room(self) -> None:
        self.query_one("#state-room", Input).focus()

    @work(group="state-room")
    async def _settle(self) -> None:
        """Be in the room asked for while showing, in none otherwise; leave before joining."""
        async with self._settling:
            stack = self.session.stack
            wanted = self.room if self._showing and stack is not None else ""
            watched = self.watched
            if watched is not None and watched.name == wanted:
                return
            if watched is not None:
                try:
                    await watched.leave()  # its changes stop coming at once
                except ClientError as exc:
                    self.notify(f"leaving {watched.name}: {exc}", severity="warning")
                self.watched = None
            if not wanted or stack is None:
                self.note = _ASK if stack is not None else self.session.status
                return
            self.note = f"joining {wanted}…"
            try:
                self.watched = await WatchedRoom.join(stack.observer, wanted, stack.schemas,
                                                      self._pacer.poke)
            except (ClientError, StateError) as exc:
                self.note = f"cannot show {wanted}: {exc}"
                return
            self.action_refresh()

    def watch_watched(self, watched: WatchedRoom | None) -> None:
        tree = self.query_one(StateTree)
        if watched is None:
            tree.show(None, "no room")
            return
        watched.take_changes()  # the state is drawn whole here
        tree.show(watched.store.state, watched.name)
        self._draw_numbers()

    def watch_note(self, note: str) -> None:
        self.query_one("#state-numbers", Static).update(note, layout=False)

    def _draw_changes(self) -> None:
        watched = self.watched
        if watched is None:
            return  # the first snapshot, arriving before the join returns: drawn whole then
        changes = watched.take_changes()
        if changes:
            self.query_one(StateTree).apply(watched.store.state, changes)
        self._draw_numbers()

    def _draw_numbers(self) -> None:
        if self.watched is not None:
            self.query_one("#state-numbers", Static).update(_numbers(self.watched), layout=False)

    def action_refresh(self) -> None:
        if self._showing and self.watched is not None and not self._asking:
            self._asking = True
            self._ask_info(self.watched)

    @work(group="state-info")
    async def _ask_info(self, watched: WatchedRoom) -> None:
        try:
            await watched.refresh()
        except ClientError as exc:
            if watched is self.watched:  # else: an answer about a room left meanwhile
                self.notify(f"state.info {watched.name}: {exc}", severity="warning")
            return
        finally:
            self._asking = False
        if watched is self.watched:
            self._draw_numbers()
