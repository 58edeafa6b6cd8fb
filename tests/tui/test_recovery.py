"""The connection screen's recovery lines: the words for each outcome, then on screen.

:class:`RecoveryStatus` is fed the client's own events by hand (no I/O), one
table row per story; then the screen is driven with Pilot: over an offline
stack fed the same events, and over the demo, whose observer loses its link
to a ``reset`` outage of the simulator while messages are published to its
room straight at the gateway, so it has at least those to replay.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from textual.widgets import Static

from rtctl.client import (
    Client,
    ClientState,
    Recovered,
    RoomRecovery,
    ServerError,
    StateChanged,
)
from rtctl.protocol.streams import StreamPosition
from rtctl.tap import Tap
from rtctl.tui.app import DevtoolsApp
from rtctl.tui.demo import start_demo
from rtctl.tui.recovery import RecoveryStatus
from rtctl.tui.screens import ConnectionScreen
from rtctl.tui.stack import Stack
from simulator.scenario import Outage
from tests.tui.conftest import FAST_DEMO, wait_until
from tests.tui.test_follow import offline_app

S = ClientState
AT = StreamPosition(9, "e1")
DROP = StateChanged(S.CONNECTED, S.RECONNECTING)
RESUMED = Recovered("s1", True, None, 0.125, 0)
NOT_RESUMED = Recovered("s2", False, "expired", 0.25, 0)


def recovered(room: str, replayed: int) -> RoomRecovery:
    return RoomRecovery(room, True, replayed, None, AT)


def reset(room: str, reason: str) -> RoomRecovery:
    return RoomRecovery(room, False, 0, reason, AT)


@pytest.mark.parametrize(("events", "line", "session"), [
    ([], "none needed yet", "–"),
    ([DROP], "recovering…", "–"),
    ([DROP, recovered("a", 3), recovered("b", 2), RESUMED],
     "recovered (5 replayed) in 0.12 s", "s1, resumed"),
    ([DROP, recovered("a", 3), reset("b", "too_old"), NOT_RESUMED],
     "reset (too_old: b) in 0.25 s: what was missed is gone",
     "s2, a new one (expired): not resumed"),
    ([DROP, RoomRecovery("a", False, 0, None, AT, ServerError(-32000, "no")), RESUMED],
     "reset (join failed: no: a) in 0.12 s: what was missed is gone", "s1, resumed"),
    # A second drop starts over: the first one's replays and resets are not added in.
    ([DROP, reset("a", "too_many"), RESUMED, DROP, recovered("a", 1), RESUMED],
     "recovered (1 replayed) in 0.12 s", "s1, resumed"),
    ([DROP, StateChanged(S.RECONNECTING, S.DISCONNECTED)],
     "not recovered: the client stopped reconnecting", "–"),
    # An epoch change while connected: a reset of its own, no recovery time.
    ([DROP, recovered("a", 4), RESUMED, reset("a", "epoch_changed")],
     "reset (epoch_changed: a): what was missed is gone", "s1, resumed"),
])
def test_each_outcome_in_words(events: list[Any], line: str, session: str) -> None:
    status = RecoveryStatus()
    told: list[None] = []
    status.on_change(lambda: told.append(None))
    for event in events:
        if isinstance(event, StateChanged):
            status.changed(event)
        elif isinstance(event, RoomRecovery):
            status.room_recovered(event)
        else:
            status.recovered(event)
    assert (status.line(), status.session_line()) == (line, session)
    # Told once per change of words: the drop, each link ready, a live reset, a stop.
    ready = [e for e in events if isinstance(e, Recovered | StateChanged)]
    live = events[-1:] == [reset("a", "epoch_changed")]
    assert len(told) == len(ready) + live


def text(screen: ConnectionScreen) -> str:
    return str(screen.query_one("#client", Static).render())


async def test_the_screen_shows_a_reset_as_the_events_come() -> None:
    app = offline_app(Tap())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(lambda: app.session.stack is not None, "the stack")
        stack = app.session.stack
        assert isinstance(stack, Stack)
        await pilot.press("2")
        screen = app.screen
        assert isinstance(screen, ConnectionScreen)
        assert "recovery    none needed yet" in text(screen)

        stack.recovery.changed(DROP)
        await wait_until(lambda: app.recovery == 1, "the drop to be told")
        await pilot.pause()
        assert "recovery    recovering…" in text(screen)

        stack.recovery.room_recovered(reset("lobby", "too_old"))
        stack.recovery.recovered(NOT_RESUMED)
        await wait_until(lambda: app.recovery == 2, "the recovery to be told")
        await pilot.pause()
        shown = text(screen)
        assert "recovery    reset (too_old: lobby) in 0.25 s: what was missed is gone" in shown
        assert "session     s2, a new one (expired): not resumed" in shown
        await pilot.press("q")


async def test_the_demo_observer_recovers_what_it_missed() -> None:
    app = DevtoolsApp(lambda: start_demo(FAST_DEMO), refresh=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(lambda: app.session.stack is not None, "the stack to start")
        stack = app.session.stack
        assert isinstance(stack, Stack)
        assert stack.proxy is not None
        assert stack.gateway is not None
        assert stack.room is not None
        await pilot.press("2")
        screen = app.screen
        assert isinstance(screen, ConnectionScreen)

        # The link goes down, and stays down (new connections refused) until let go.
        proxy = stack.proxy
        proxy.add_outage(Outage(proxy.elapsed(), 3600.0, "reset"))
        await wait_until(lambda: "recovery    recovering…" in text(screen), "recovering")
        publisher = Client(stack.gateway.url, token=stack.token)  # straight at the gateway
        async with publisher:
            await publisher.call("room.join", {"room": stack.room})
            for number in range(3):
                await publisher.call("room.publish", {"room": stack.room, "data": {"n": number}})
        proxy.conditions.end_outages(proxy.elapsed())

        await wait_until(lambda: "recovery    recovered (" in text(screen), "the recovery")
        shown = text(screen)
        replayed = re.search(r"recovered \((\d+) replayed\) in \d+\.\d\d s", shown)
        assert replayed is not None, shown
        assert int(replayed[1]) >= 3, shown
        assert f"session     {stack.observer.session}, resumed" in shown
        await pilot.press("q")
