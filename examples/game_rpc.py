"""A game's own methods, served beside the built-in ones.

    rtctl serve --router examples.game_rpc:router
    rtctl call ws://127.0.0.1:8765 subtract '[42, 23]'
    rtctl call ws://127.0.0.1:8765 shop.buy '{"item": "sword", "qty": 2}'
"""

from __future__ import annotations

from typing import Any

from rtctl import CallContext, Router, RpcError

router = Router()

MAX_PER_PURCHASE = 10


@router.method("subtract")
def subtract(minuend: int, subtrahend: int) -> int:
    """JSON-RPC 2.0's own example: positional or named params both bind."""
    return minuend - subtrahend


@router.method("shop.buy")
async def buy(ctx: CallContext, item: str, qty: int = 1) -> dict[str, Any]:
    """An async handler with the caller's context and an application error."""
    if qty > MAX_PER_PURCHASE:
        raise RpcError(4001, "Too many at once", {"max": MAX_PER_PURCHASE})
    bought = ctx.session.setdefault("bought", [])
    bought.append(item)
    return {"user": ctx.user, "item": item, "qty": qty, "basket": len(bought)}
