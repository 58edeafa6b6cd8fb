"""What users of Textual apps expect: typed keys are text, placeholders are examples.

These run without a stack (its start fails at once), so they are quick and
see no traffic: only the widgets and the bindings are under test.
"""

from __future__ import annotations

from textual.widgets import Input, Static

from rtctl.exceptions import ConfigError
from rtctl.tui.app import DevtoolsApp
from rtctl.tui.screens import DashboardScreen, InspectorScreen, SimulatorScreen
from rtctl.tui.stack import Stack

NAVIGATION = ("1", "2", "3", "4", "5", "6", "l", "q")  # the app's own one-key bindings


async def _no_stack() -> Stack:
    raise ConfigError("habits test: nothing started")


def _app() -> DevtoolsApp:
    return DevtoolsApp(_no_stack, refresh=3600)


async def test_navigation_keys_typed_into_a_field_are_text() -> None:
    app = _app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("5")
        user = app.screen.query_one("#rule Input.user", Input)
        user.focus()
        await pilot.press(*NAVIGATION)
        assert user.value == "123456lq"
        assert isinstance(app.screen, SimulatorScreen)
        assert not app.session.lag_switch
        await pilot.press("escape", "4", "slash", *NAVIGATION)  # the inspector's filter
        assert isinstance(app.screen, InspectorScreen)
        assert app.screen.query_one("#filter", Input).value == "123456lq"
        await pilot.press("escape", "1")
        assert isinstance(app.screen, DashboardScreen)
        await pilot.press("q")
    assert app.return_code == 0


async def test_a_number_field_refuses_keys_that_cannot_belong_to_its_value() -> None:
    app = _app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("5")
        latency = app.screen.query_one("#all Input.latency", Input)
        latency.focus()
        await pilot.press(*"200ms1")  # "1" meant for the dashboard
        assert latency.value == "200ms"
        assert isinstance(app.screen, SimulatorScreen)
        loss = app.screen.query_one("#all Input.loss", Input)
        loss.focus()
        await pilot.press(*"q2.5%3")
        assert loss.value == "2.5%"
        await pilot.press("escape", "q")


async def test_escape_is_offered_only_while_a_field_has_the_keys() -> None:
    app = _app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("5")
        assert "escape" not in app.screen.active_bindings
        app.screen.query_one("#all Input.jitter", Input).focus()
        await pilot.pause()
        assert "escape" in app.screen.active_bindings
        assert "1" not in app.screen.active_bindings  # the field takes it: no command
        await pilot.press("escape")
        assert app.focused is None
        assert "1" in app.screen.active_bindings
        await pilot.press("q")


async def test_placeholders_are_dimmed_examples() -> None:
    app = _app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("5")
        fields = list(app.screen.query(Input))
        await pilot.press("4")
        fields += list(app.screen.query(Input))
        assert len(fields) == 10  # 4 + 5 impairment fields, the filter
        for field in fields:
            assert "e.g. " in field.placeholder, field
            style = field.get_component_rich_style("input--placeholder")
            assert style.dim, field
            assert style.italic, field
        await pilot.press("q")


async def test_latency_is_said_to_be_one_way_where_it_is_set() -> None:
    app = _app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("5")
        labels = " ".join(str(s.render()) for s in app.screen.query(Static))
        assert "latency is each way: 200ms makes a 400 ms RTT" in labels
        await pilot.press("q")
