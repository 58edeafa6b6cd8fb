"""The arena screen (8): the pure map drawing, exactly; then the screen over a live demo.

The map tests use a 64 × 36 grid, where a cell is exactly 10 × 10 world units,
so where each point lands can be worked out by hand. The screen runs over the
demo stack with its arena (the TUI's player and two bots, no chat bots), with
a recording arena room type in place of the demo's, so the test can read the
gateway's own room; every wait is on the app's or the arena's state, bounded
by ``TIMING``.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections import deque
from dataclasses import replace
from typing import ClassVar

import pytest
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.widgets import Static

from rtctl.demo.game import HEIGHT, RANGE, SPEED, WIDTH, ArenaState, Player
from rtctl.demo.room import ArenaRoom
from rtctl.demo.view import Scene
from rtctl.gateway.server import Gateway
from rtctl.tui import demo
from rtctl.tui.app import DevtoolsApp
from rtctl.tui.bots import BotConfig
from rtctl.tui.demo import PLAYER, ArenaConfig, DemoConfig, start_demo
from rtctl.tui.screens import ArenaScreen
from rtctl.tui.screens.arena import NO_ARENA
from rtctl.tui.widgets import ArenaMap
from rtctl.tui.widgets.arena_map import (
    OTHER_STYLE,
    OWN_STYLE,
    SHOT_SHOWN,
    Mark,
    cell,
    cells,
    legend,
    marks_of_state,
    marks_of_view,
)
from tests.tui.conftest import attached_app, open_screen, wait_until

COLS, ROWS = 64, 36  # 10 × 10 world units a cell
EMPTY = (" ", "")


# -- the map, as pure functions ---------------------------------------------------------

@pytest.mark.parametrize(("x", "y", "expected"), [
    (0.0, 0.0, (0, 0)),
    (9.99, 9.99, (0, 0)),
    (10.0, 10.0, (1, 1)),
    (325.0, 185.0, (32, 18)),
    (WIDTH - 0.01, HEIGHT - 0.01, (63, 35)),
    (WIDTH, HEIGHT, (63, 35)),  # the far walls are on the map's last cells
    (-50.0, -1.0, (0, 0)),  # off the map: clamped onto its edge
    (WIDTH + 100, 180.0, (63, 18)),
    (320.0, HEIGHT * 3, (32, 35)),
])
def test_a_point_lands_in_its_cell(x: float, y: float, expected: tuple[int, int]) -> None:
    assert cell(x, y, COLS, ROWS) == expected


def test_the_axes_scale_apart_to_fill_the_panel() -> None:
    assert cell(320.0, 180.0, 38, 14) == (19, 7)  # 16.8 × 25.7 units a cell


def _drawn(grid: list[list[tuple[str, str]]]) -> dict[tuple[int, int], tuple[str, str]]:
    return {(col, row): c for row, line in enumerate(grid) for col, c in enumerate(line)
            if c != EMPTY}


def test_own_and_others_with_their_aim() -> None:
    marks = [Mark("you", 325.0, 185.0, 0.0, 100, own=True),
             Mark("ivan", 105.0, 55.0, math.pi / 2, 66)]
    grid = cells(marks, COLS, ROWS)
    assert len(grid) == ROWS
    assert all(len(line) == COLS for line in grid)
    assert _drawn(grid) == {
        (32, 18): ("@", OWN_STYLE), (33, 18): ("-", OWN_STYLE),  # aiming right
        (10, 5): ("I", OTHER_STYLE), (10, 6): ("|", OTHER_STYLE),  # aiming down (y grows down)
    }


@pytest.mark.parametrize(("angle", "at", "tick"), [
    (math.pi / 4, (33, 19), "\\"),
    (-3 * math.pi / 4, (31, 17), "\\"),
    (-math.pi / 4, (33, 17), "/"),
    (3 * math.pi / 4, (31, 19), "/"),
    (-math.pi / 2, (32, 17), "|"),
    (math.pi, (31, 18), "-"),
])
def test_the_aim_tick_points_the_way(angle: float, at: tuple[int, int], tick: str) -> None:
    drawn = _drawn(cells([Mark("judy", 325.0, 185.0, angle, 100)], COLS, ROWS))
    assert drawn == {(32, 18): ("J", OTHER_STYLE), at: (tick, OTHER_STYLE)}


def test_the_own_player_is_drawn_over_another_in_its_cell() -> None:
    for order in (1, -1):
        marks = [Mark("you", 321.0, 181.0, 0.0, 100, own=True),
                 Mark("ivan", 329.0, 189.0, 0.0, 100)][::order]
        assert cells(marks, COLS, ROWS)[18][32] == ("@", OWN_STYLE)


def test_a_recent_shot_trails_along_the_aim_to_its_range() -> None:
    fired = Mark("ivan", 5.0, 185.0, 0.0, 100, fired=True)
    line = cells([fired], COLS, ROWS)[18]
    reach = math.floor((5.0 + RANGE) / 10)  # the last cell the shot reaches: 40
    assert line[0] == ("I", OTHER_STYLE)
    assert line[1] == ("-", OTHER_STYLE)  # the aim's tick over the shot
    assert line[2:reach + 1] == [("·", OTHER_STYLE)] * (reach - 1)
    assert line[reach + 1:] == [EMPTY] * (COLS - reach - 1)
    assert _drawn(cells([replace(fired, fired=False)], COLS, ROWS)) == {
        (0, 18): ("I", OTHER_STYLE), (1, 18): ("-", OTHER_STYLE)}


def test_a_shot_stops_at_the_player_in_its_way() -> None:
    marks = [Mark("ivan", 5.0, 185.0, 0.0, 100, fired=True),
             Mark("judy", 205.0, 185.0, 0.0, 100), Mark("mallory", 305.0, 185.0, 0.0, 100)]
    line = cells(marks, COLS, ROWS)[18]
    assert line[2:20] == [("·", OTHER_STYLE)] * 18  # to judy's centre, 200 units on
    assert line[20:23] == [("J", OTHER_STYLE), ("-", OTHER_STYLE), EMPTY]
    assert line[23:30] == [EMPTY] * 7  # not on past her, though RANGE would reach col 40
    assert line[30] == ("M", OTHER_STYLE)


def test_a_shot_stops_at_the_edge_of_the_map() -> None:
    line = cells([Mark("ivan", 605.0, 185.0, 0.0, 100, fired=True)], COLS, ROWS)[18]
    assert line[60:] == [("I", OTHER_STYLE), ("-", OTHER_STYLE), ("·", OTHER_STYLE),
                         ("·", OTHER_STYLE)]


def test_no_room_no_cells() -> None:
    assert cells([Mark("you", 1.0, 1.0, 0.0, 100, own=True)], 0, 5) == [[]] * 5
    assert cells([Mark("you", 1.0, 1.0, 0.0, 100, own=True)], 5, 0) == []


def test_the_legend_lists_hit_points_own_first() -> None:
    text = legend([Mark("judy", 0, 0, 0, 20), Mark("ivan", 0, 0, 0, 66),
                   Mark("you", 0, 0, 0, 100, own=True)])
    assert text.plain == "@ 100  I 66  J 20"
    colours = {text.plain[span.start:span.end].strip(): str(span.style) for span in text.spans}
    assert colours == {"@": OWN_STYLE, "100": "green", "I": OTHER_STYLE, "66": "yellow",
                       "J": OTHER_STYLE, "20": "red"}


def test_marks_of_a_state_say_who_fired_lately() -> None:
    state = ArenaState(tick=100, players={
        "you": Player(x=1.5, y=2.5, angle=0.5, hp=100, shot=100),
        "ivan": Player(x=3.0, y=4.0, angle=-1.0, hp=32, shot=100 - SHOT_SHOWN + 1),
        "judy": Player(x=5.0, y=6.0, hp=66, shot=100 - SHOT_SHOWN),
        "mallory": Player(x=7.0, y=8.0, hp=100, shot=0),
    })
    assert sorted(marks_of_state(state, PLAYER), key=lambda m: m.name) == [
        Mark("ivan", 3.0, 4.0, -1.0, 32, fired=True),
        Mark("judy", 5.0, 6.0, 0.0, 66, fired=False),
        Mark("mallory", 7.0, 8.0, 0.0, 100, fired=False),
        Mark("you", 1.5, 2.5, 0.5, 100, own=True, fired=True),
    ]


def test_marks_of_a_view_take_positions_from_it_and_shots_from_the_snapshot() -> None:
    state = ArenaState(tick=50, players={"you": Player(x=1.0, shot=49),
                                         "ivan": Player(x=2.0, shot=0)})
    own = {"x": 11.0, "y": 12.0, "angle": 0.25, "hp": 66}
    others = {"ivan": {"x": 21.0, "y": 22.0, "angle": 1.0, "hp": 100},
              "judy": {"x": 31.0, "y": 32.0, "angle": 2.0, "hp": 34}}  # not in the snapshot
    assert sorted(marks_of_view(PLAYER, own, others, state), key=lambda m: m.name) == [
        Mark("ivan", 21.0, 22.0, 1.0, 100),
        Mark("judy", 31.0, 32.0, 2.0, 34),
        Mark("you", 11.0, 12.0, 0.25, 66, own=True, fired=True),
    ]
    assert [m.name for m in marks_of_view(PLAYER, None, others, state)] == ["ivan", "judy"]


# -- the widget: only the lines that changed are repainted -------------------------------

class OneMap(App[None]):
    def compose(self) -> ComposeResult:
        yield ArenaMap()


async def test_the_map_repaints_only_the_lines_that_changed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with OneMap().run_test(size=(COLS, ROWS + 1)) as pilot:  # + 1: the legend line
        widget = pilot.app.query_one(ArenaMap)
        you = Mark("you", 325.0, 185.0, 0.0, 100, own=True)
        widget.marks = (you, Mark("ivan", 105.0, 55.0, math.pi / 2, 66))
        await pilot.pause()
        assert widget.render_line(18).text[32:34] == "@-"
        refreshed: list[tuple[Region, ...]] = []
        monkeypatch.setattr(widget, "refresh", lambda *regions: refreshed.append(regions))

        widget.marks = (replace(you, x=345.0), widget.marks[1])  # two cells right, same row
        await pilot.pause()
        assert refreshed == [(Region(0, 18, COLS, 1),)]
        assert widget.render_line(18).text[32:37] == "  @- "

        widget.marks = tuple(widget.marks)  # the same picture: nothing to repaint
        widget.note = "tick 7"
        await pilot.pause()
        assert refreshed[1:] == [(Region(0, ROWS, COLS, 1),)]  # the legend's line only
        legend_line = widget.render_line(ROWS).text
        assert legend_line.startswith("@ 100  I 66")
        assert legend_line.endswith("tick 7")


# -- the screen, over the demo ----------------------------------------------------------

class Recorded(ArenaRoom):
    """The demo's arena, remembered so the test can read the gateway's own state."""

    rooms: ClassVar[list[Recorded]] = []

    def on_create(self) -> None:
        super().on_create()
        Recorded.rooms.append(self)


ARENA_DEMO = DemoConfig(bots=BotConfig(count=0), observer_ping=0.1, call_timeout=1.0, seed=7,
                        arena=ArenaConfig(bots=2, seed=3))


def _screen_text(widget: ArenaMap, row: int) -> str:
    return widget.render_line(row).text


def _seen(scene: Scene, *, predict: bool, interpolate: bool) -> dict[str, tuple[float, float]]:
    """Where the player draws everyone in ``scene`` with the switches so set."""
    own, others = scene.visible(predict=predict, interpolate=interpolate)
    assert own is not None
    return {PLAYER: (own["x"], own["y"]), **{name: (o["x"], o["y"]) for name, o in others.items()}}


def _drew(widget: ArenaMap, scenes: deque[Scene], predict: bool, interpolate: bool) -> bool:
    """Whether ``widget`` shows one of ``scenes`` as the player sees it with the switches."""
    drawn = {m.name: (m.x, m.y) for m in widget.marks}
    return any(drawn == _seen(s, predict=predict, interpolate=interpolate) for s in scenes)


async def test_the_arena_plays_switches_and_steers(monkeypatch: pytest.MonkeyPatch) -> None:
    Recorded.rooms.clear()
    monkeypatch.setitem(demo.ROOM_TYPES, "arena", Recorded)
    app = DevtoolsApp(lambda: start_demo(ARENA_DEMO), refresh=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("8")
        screen = app.screen
        assert isinstance(screen, ArenaScreen)
        await wait_until(lambda: app.session.stack is not None, "the stack to start")
        arena = screen.arena
        assert arena is not None
        player = arena.player
        numbers = screen.query_one("#arena-numbers", Static)
        await wait_until(lambda: re.search(r"RTT \d+\.\d ms, smoothed \d+\.\d ms",
                                           str(numbers.render())) is not None
                         and re.search(r"snapshots +\d+\.\d ms old", str(numbers.render()))
                         is not None, "the numbers to fill in")
        assert player.metrics().snapshots > 0

        # The truth: the same players as the gateway's room, each drawn where it is.
        (room,) = Recorded.rooms
        truth = screen.query_one("#arena-truth", ArenaMap)
        await wait_until(lambda: {m.name for m in truth.marks} == set(room.state.players)
                         == {PLAYER, "ivan", "judy"}, "the truth to show the room's players")
        size = truth.content_size

        def drawn_where_they_are() -> bool:  # once the lines have caught up with the marks
            return all(_screen_text(truth, row)[col] in ("@", mark.glyph) for mark in truth.marks
                       for col, row in [cell(mark.x, mark.y, size.width, size.height - 1)])

        await wait_until(drawn_where_they_are, "the truth's lines to show its marks")
        legend_line = _screen_text(truth, size.height - 1)
        assert legend_line.startswith("@ ")  # the legend, own first
        assert re.search(r"tick \d+$", legend_line)  # and the server's tick

        # The switches set the player's view, and the left map then draws what it sees: one
        # of the player's latest scenes (it draws a few times a second, from the newest).
        seen = screen.query_one("#arena-seen", ArenaMap)
        scenes: deque[Scene] = deque(maxlen=30)  # the player's last second of frames
        player.on_frame.append(scenes.append)
        for keys, predict, interpolate in ((["p"], False, True), (["i"], False, False),
                                           (["n"], True, True), (["n"], False, False),
                                           (["p", "i"], True, True)):
            before = seen.marks
            await pilot.press(*keys)
            assert (player.view.predict, player.view.interpolate) == (predict, interpolate)
            assert f"prediction    {'ON ' if predict else 'off'} (p)" in str(numbers.render())
            await wait_until(
                lambda before=before, switches=(predict, interpolate):  # type: ignore[misc]
                seen.marks != before and _drew(seen, scenes, *switches),
                f"the left map to draw {keys}'s view")
            assert [m.name for m in seen.marks if m.own] == [PLAYER]

        # Steering takes over from the brain, and the server moves the player.
        start = room.state.players[PLAYER].x
        way = 1 if start < WIDTH / 2 else -1  # towards the far wall: room to move
        await pilot.press("right" if way == 1 else "left")
        assert player.brain is None
        assert (player.steer.dx, player.steer.dy) == (way, 0)
        # (A respawn may move it meanwhile; steered, it still gets there within the wait.)
        await wait_until(lambda: (room.state.players[PLAYER].x - start) * way > SPEED / 3,
                         "the server to move the player the way it is steered")
        await pilot.press("w")
        assert (player.steer.dx, player.steer.dy, player.steer.aim) == (0, -1, -math.pi / 2)
        await pilot.press("s")  # back the way it goes: stop
        assert (player.steer.dx, player.steer.dy) == (0, 0)
        await pilot.press("space")
        await wait_until(lambda: not player.steer.fire, "a frame to carry the trigger pull")
        assert "your keys" in str(seen.border_subtitle)
        await pilot.press("b")
        assert player.brain is arena.brain
        assert "brain" in str(seen.border_subtitle)
        await pilot.press("q")
    await asyncio.sleep(0)  # let cancelled tasks finish their last step
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


async def test_attached_there_is_no_arena(gateway: Gateway) -> None:
    app = attached_app(gateway)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "8")
        assert isinstance(screen, ArenaScreen)
        await pilot.press("p", "right", "b")  # nothing to switch or steer: nothing happens
        assert str(screen.query_one("#arena-numbers", Static).render()) == NO_ARENA
        assert not screen.query_one("#arena-views").display
        await pilot.press("q")
