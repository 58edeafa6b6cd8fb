"""Widgets of the TUI, one per module; they report upward with nested Message classes."""

from rtctl.tui.widgets.arena_map import ArenaMap
from rtctl.tui.widgets.frame_table import FrameTable
from rtctl.tui.widgets.impairment_form import ImpairmentForm
from rtctl.tui.widgets.nav_bar import NavBar
from rtctl.tui.widgets.state_tree import StateTree

__all__ = ["ArenaMap", "FrameTable", "ImpairmentForm", "NavBar", "StateTree"]
