"""``rtctl tui``: the devtools app, on an embedded demo stack or a running gateway."""

from __future__ import annotations

from typing import Annotated

import typer

from rtctl.exceptions import ConfigError

__all__ = ["tui"]


def tui(
    demo: Annotated[bool, typer.Option(
        "--demo", help="Run gateway, simulator and bot players in this process.")] = False,
    gateway: Annotated[str | None, typer.Option(
        "--gateway", help="Attach to the gateway at this URL instead (ws://host:port).")] = None,
    token: Annotated[str | None, typer.Option(
        "--token", envvar="RTCTL_TOKEN", show_envvar=True,
        help="JWT for --gateway; with the claim role=admin the inspector sees the tap.")] = None,
) -> None:
    """The devtools TUI: connection, latency, online users, inspector, simulator, profiler."""
    if demo == (gateway is not None):
        raise ConfigError("give either --demo or --gateway URL")
    # Textual loads in a good fraction of a second: only this command pays for it.
    from rtctl.tui.app import DevtoolsApp, StackFactory
    from rtctl.tui.demo import start_demo
    from rtctl.tui.stack import Stack, attach

    start: StackFactory = start_demo
    if gateway is not None:
        url = gateway

        async def start_attached() -> Stack:
            return await attach(url, token)

        start = start_attached
    DevtoolsApp(start).run()
