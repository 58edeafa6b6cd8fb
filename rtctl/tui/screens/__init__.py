"""The TUI's screens, one per module; each redraws from the shared session as it changes."""

from rtctl.tui.screens.arena import ArenaScreen
from rtctl.tui.screens.base import MODES, LiveScreen
from rtctl.tui.screens.connection import ConnectionScreen
from rtctl.tui.screens.dashboard import DashboardScreen
from rtctl.tui.screens.inspector import InspectorScreen
from rtctl.tui.screens.presence import PresenceScreen
from rtctl.tui.screens.profiler import ProfilerScreen
from rtctl.tui.screens.simulator import SimulatorScreen
from rtctl.tui.screens.state import StateScreen

__all__ = [
    "MODES",
    "ArenaScreen",
    "ConnectionScreen",
    "DashboardScreen",
    "InspectorScreen",
    "LiveScreen",
    "PresenceScreen",
    "ProfilerScreen",
    "SimulatorScreen",
    "StateScreen",
]
