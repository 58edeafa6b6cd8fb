"""rtctl: run, break and measure a real-time multiplayer networking stack.

What game code imports::

    from rtctl import CallContext, Router, RpcError

and what embedding the gateway in a Python program needs::

    from rtctl import AuthConfig, Gateway, GatewayConfig

Every name here is loaded on first use (PEP 562: module ``__getattr__`` and
``__dir__``), so ``import rtctl.client`` -- which runs this file first --
loads no gateway, JWT or metrics code. The ``TYPE_CHECKING`` imports give
type checkers the same names eagerly.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rtctl.config import GatewayConfig, Heartbeat, Limits
    from rtctl.exceptions import ErrorDecl, RpcError, RtctlError
    from rtctl.gateway.auth import AuthConfig
    from rtctl.gateway.server import Gateway
    from rtctl.protocol.codes import CloseCode, ErrorCode
    from rtctl.router import CallContext, Router

__all__ = [
    "AuthConfig",
    "CallContext",
    "CloseCode",
    "ErrorCode",
    "ErrorDecl",
    "Gateway",
    "GatewayConfig",
    "Heartbeat",
    "Limits",
    "Router",
    "RpcError",
    "RtctlError",
    "__version__",
]

__version__ = "0.1.0"

# Each lazy name and the module defining it: the TYPE_CHECKING block's imports, which
# tests/test_layering.py holds this table to.
_LAZY = {
    "AuthConfig": "rtctl.gateway.auth",
    "CallContext": "rtctl.router",
    "CloseCode": "rtctl.protocol.codes",
    "ErrorCode": "rtctl.protocol.codes",
    "ErrorDecl": "rtctl.exceptions",
    "Gateway": "rtctl.gateway.server",
    "GatewayConfig": "rtctl.config",
    "Heartbeat": "rtctl.config",
    "Limits": "rtctl.config",
    "Router": "rtctl.router",
    "RpcError": "rtctl.exceptions",
    "RtctlError": "rtctl.exceptions",
}


def __getattr__(name: str) -> object:
    """Import the module that defines ``name`` on first use, and keep the value (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The lazy names too, so ``dir(rtctl)`` and completion show them (PEP 562)."""
    return sorted({*globals(), *_LAZY})
