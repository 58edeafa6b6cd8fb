"""The demo arena from above, in terminal cells: pure drawing functions and their widget.

:func:`cells` maps the arena's :data:`~rtctl.demo.game.WIDTH` ×
:data:`~rtctl.demo.game.HEIGHT` world units onto ``cols`` × ``rows`` cells
(each axis scaled on its own, so the arena fills the panel; a position off the
map is drawn on its edge). Each player is a :class:`Mark`: the own one
:data:`OWN_GLYPH` in :data:`OWN_STYLE`, the others their name's initial in
:data:`OTHER_STYLE`; beside each, a tick in the cell its aim points to, and a
player that fired within :data:`SHOT_SHOWN` ticks trails its shot along the aim
to the first player in its way (:func:`~rtctl.demo.game.hit`, on the positions
drawn), or else to :data:`~rtctl.demo.game.RANGE`. :func:`legend` lists their hit points.

The marks come from either picture of the arena: :func:`marks_of_state` from a
state (the server's truth, or the newest snapshot), :func:`marks_of_view` from
what a player draws (:meth:`~rtctl.demo.view.Scene.visible`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter
from typing import Any

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from rtctl.demo.game import HEIGHT, MAX_HP, RANGE, RELOAD_TICKS, WIDTH, ArenaState, hit

__all__ = [
    "OTHER_STYLE",
    "OWN_GLYPH",
    "OWN_STYLE",
    "SHOT_SHOWN",
    "ArenaMap",
    "Mark",
    "cell",
    "cells",
    "legend",
    "marks_of_state",
    "marks_of_view",
]

OWN_GLYPH = "@"
OWN_STYLE = "bold yellow"
OTHER_STYLE = "bold cyan"
SHOT_SHOWN = RELOAD_TICKS // 2  # ticks a shot stays drawn: 5 at 30 Hz, a sixth of a second
_SHOT = "·"
_EMPTY = (" ", "")
# The aim's tick by the direction of the next cell along it: (sign dx, sign dy), y down.
_AIM = {(1, 0): "-", (-1, 0): "-", (0, 1): "|", (0, -1): "|",
        (1, 1): "\\", (-1, -1): "\\", (1, -1): "/", (-1, 1): "/"}

Cell = tuple[str, str]  # (character, rich style)


@dataclass(frozen=True, slots=True)
class Mark:
    """One player to draw: where, aiming where, its health, and whether it just fired."""

    name: str
    x: float
    y: float
    angle: float
    hp: int
    own: bool = False
    fired: bool = False

    @property
    def glyph(self) -> str:
        return OWN_GLYPH if self.own else (self.name[:1].upper() or "?")

    @property
    def style(self) -> str:
        return OWN_STYLE if self.own else OTHER_STYLE


def cell(x: float, y: float, cols: int, rows: int) -> tuple[int, int]:
    """The (column, row) of world point (x, y), clamped onto the map."""
    col = math.floor(x / WIDTH * cols)
    row = math.floor(y / HEIGHT * rows)
    return min(max(col, 0), cols - 1), min(max(row, 0), rows - 1)


def _ray(mark: Mark, cols: int, rows: int, reach: float) -> list[tuple[int, int]]:
    """The cells along the mark's aim, nearest first, to ``reach`` or the map's edge."""
    width, height = WIDTH / cols, HEIGHT / rows
    step = min(width, height) / 2  # half a cell: no cell on the way is skipped
    ux, uy = math.cos(mark.angle), math.sin(mark.angle)
    start = cell(mark.x, mark.y, cols, rows)
    found: list[tuple[int, int]] = []
    for n in range(1, math.floor(min(reach, RANGE) / step) + 1):
        x, y = mark.x + ux * n * step, mark.y + uy * n * step
        if not (0 <= x < WIDTH and 0 <= y < HEIGHT):
            break
        here = cell(x, y, cols, rows)
        if here != start and (not found or found[-1] != here):
            found.append(here)
    return found


def _reach(shooter: Mark, marks: Iterable[Mark]) -> float:
    """How far the shot goes: to the first player in its way (as drawn), else RANGE."""
    targets = {m.name: (m.x, m.y) for m in marks if m is not shooter}
    origin = (shooter.x, shooter.y)
    victim = hit(origin, shooter.angle, [(name, *at) for name, at in targets.items()])
    return RANGE if victim is None else math.dist(origin, targets[victim])


def cells(marks: Iterable[Mark], cols: int, rows: int) -> list[list[Cell]]:
    """The map as ``rows`` lists of ``cols`` cells: shots first, then aims, then bodies
    (the own one last: on top of anyone in the same cell)."""
    grid = [[_EMPTY] * cols for _ in range(rows)]
    if cols <= 0 or rows <= 0:
        return grid
    ordered = sorted(marks, key=lambda m: (m.own, m.name))
    # Any line leaves a cell within its diagonal (and a step): the aim's tick is there.
    near = math.hypot(WIDTH / cols, HEIGHT / rows) * 1.5
    for mark in ordered:
        if mark.fired:
            for col, row in _ray(mark, cols, rows, _reach(mark, ordered)):
                grid[row][col] = (_SHOT, mark.style)
    for mark in ordered:
        ray = _ray(mark, cols, rows, near)
        if ray:
            (col, row), (col0, row0) = ray[0], cell(mark.x, mark.y, cols, rows)
            direction = ((col > col0) - (col < col0), (row > row0) - (row < row0))
            grid[row][col] = (_AIM[direction], mark.style)
    for mark in ordered:
        col, row = cell(mark.x, mark.y, cols, rows)
        grid[row][col] = (mark.glyph, mark.style)
    return grid


def _health(hp: int) -> str:
    return "green" if hp > MAX_HP * 2 // 3 else ("yellow" if hp > MAX_HP // 3 else "red")


def legend(marks: Iterable[Mark]) -> Text:
    """``@ 100  I 66 …``: each glyph with its hit points, the own one first."""
    text = Text(no_wrap=True, overflow="ellipsis")
    for mark in sorted(marks, key=lambda m: (not m.own, m.name)):
        if text:
            text.append("  ")
        text.append(mark.glyph, mark.style)
        text.append(f" {mark.hp}", _health(mark.hp))
    return text


def _fired(shot: int, tick: int) -> bool:
    return shot != 0 and 0 <= tick - shot < SHOT_SHOWN


def marks_of_state(state: ArenaState, own: str) -> list[Mark]:
    """Every player of ``state``, ``own`` marked as such."""
    return [Mark(name, p.x, p.y, p.angle, p.hp, own=name == own, fired=_fired(p.shot, state.tick))
            for name, p in state.players.items()]


def marks_of_view(own_name: str, own: Mapping[str, Any] | None,
                  others: Mapping[str, Mapping[str, Any]], state: ArenaState) -> list[Mark]:
    """What a player draws (fields x, y, angle, hp per player); its newest snapshot,
    ``state``, says who fired lately."""
    drawn = {**others, **({own_name: own} if own is not None else {})}
    marks = []
    for name, fields in drawn.items():
        player = state.players.get(name)
        marks.append(Mark(name, fields["x"], fields["y"], fields["angle"], fields["hp"],
                          own=name == own_name,
                          fired=player is not None and _fired(player.shot, state.tick)))
    return marks


class ArenaMap(Widget):
    """The map, and the legend on its last line; redrawn when :attr:`marks` changes.

    It draws line by line (Textual's line API) from :func:`cells`: a frame
    costs a few segments a line, not the parsing of a styled text, which
    matters at animation rates (``rtctl tui`` shares its event loop with the
    players it shows).
    """

    marks: reactive[tuple[Mark, ...]] = reactive(())

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._drawn: tuple[tuple[tuple[Mark, ...], Size], list[Strip]] | None = None

    def render_line(self, y: int) -> Strip:
        key = (self.marks, self.content_size)
        if self._drawn is None or self._drawn[0] != key:
            self._drawn = key, self._strips(*key)
        strips = self._drawn[1]
        return strips[y] if 0 <= y < len(strips) else Strip.blank(self.content_size.width)

    def _strips(self, marks: tuple[Mark, ...], size: Size) -> list[Strip]:
        base = self.rich_style
        rows = [[Segment("".join(char for char, _ in run), base + Style.parse(style))
                 for style, run in groupby(line, key=itemgetter(1))]
                for line in cells(marks, size.width, size.height - 1)]
        rows.append(list(legend(marks).render(self.app.console)))
        return [Strip(segments).crop_extend(0, size.width, base) for segments in rows]
