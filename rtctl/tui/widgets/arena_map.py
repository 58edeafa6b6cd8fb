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
from textual.geometry import Region, Size
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
    """The map, and the legend on its last line (:attr:`note` at its right end); redrawn
    when :attr:`marks` or :attr:`note` changes, only the lines that changed.

    It draws line by line (Textual's line API) from :func:`cells`, and keeps
    each line's cells to compare with the next picture: a frame moves a few
    players by a cell or so, so lines without a player or a shot on them stay
    as they were and are not painted again (``rtctl tui`` shares its event loop
    with the players it shows, and a whole 200 × 60 screen takes tens of ms).
    """

    marks: reactive[tuple[Mark, ...]] = reactive((), repaint=False)
    note: reactive[str] = reactive("", repaint=False)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._drawn_size: Size | None = None  # the content size the lines below are drawn for
        self._lines: list[tuple[Cell, ...] | Text] = []  # the map's rows, then the legend
        self._strips: list[Strip] = []
        self._repaint_queued = False

    def watch_marks(self) -> None:
        self._queue_repaint()

    def watch_note(self) -> None:
        self._queue_repaint()

    def _queue_repaint(self) -> None:
        """Once for what is set together (a frame's marks and note)."""
        if not self._repaint_queued:
            self._repaint_queued = self.call_later(self._repaint)

    def _repaint(self) -> None:
        self._repaint_queued = False
        size = self.content_size
        if size != self._drawn_size:
            return  # resized: Textual repaints it all, and render_line redraws it all
        changed = self._draw(size)
        if changed:
            self.refresh(*(Region(0, y, size.width, 1) for y in changed))

    def render_line(self, y: int) -> Strip:
        if self.content_size != self._drawn_size:
            self._draw(self.content_size)
        return self._strips[y] if 0 <= y < len(self._strips) else Strip.blank(
            self.content_size.width)

    def _draw(self, size: Size) -> list[int]:
        """Bring the lines up to date with the marks, the note and ``size``; return the
        numbers of those that changed."""
        lines: list[tuple[Cell, ...] | Text] = [
            tuple(row) for row in cells(self.marks, size.width, size.height - 1)]
        lines.append(self._legend_line(size.width))
        if size == self._drawn_size:
            changed = [y for y, (old, new) in enumerate(zip(self._lines, lines, strict=True))
                       if old != new]
        else:
            self._drawn_size, self._strips = size, [Strip([])] * len(lines)
            changed = list(range(len(lines)))
        base = self.rich_style  # not cheap: Textual works it out from every ancestor's
        for y in changed:
            self._strips[y] = self._strip(lines[y], size.width, base)
        self._lines = lines
        return changed

    def _legend_line(self, width: int) -> Text:
        text = legend(self.marks)
        if self.note:
            text.append(" " * max(2, width - text.cell_len - len(self.note)))
            text.append(self.note, "dim")
        return text

    def _strip(self, line: tuple[Cell, ...] | Text, width: int, base: Style) -> Strip:
        if isinstance(line, Text):
            return Strip(line.render(self.app.console)).crop_extend(0, width, base)
        # A map row is exactly `width` cells of one column each: no cropping to do.
        return Strip([Segment("".join(map(itemgetter(0), run)), base + Style.parse(style))
                      for style, run in groupby(line, key=itemgetter(1))], width)
