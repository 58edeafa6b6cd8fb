"""The client half of rtctl: what a game, a bot or a tool embeds."""

from rtctl.client.endpoint import endpoint_url
from rtctl.client.oneshot import call_once

__all__ = ["call_once", "endpoint_url"]
