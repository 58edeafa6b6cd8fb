"""rtctl: run, break and measure a real-time multiplayer networking stack.

What game code imports::

    from rtctl import CallContext, Router, RpcError
"""

from rtctl.exceptions import RpcError, RtctlError
from rtctl.router import CallContext, Router

__all__ = ["CallContext", "Router", "RpcError", "RtctlError", "__version__"]

__version__ = "0.1.0"
