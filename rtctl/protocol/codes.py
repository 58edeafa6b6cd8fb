"""Every error code and close code rtctl uses, in one table.

JSON-RPC 2.0 §5.1 reserves -32768..-32000; -32700..-32600 are the spec's own,
-32000..-32099 are "implementation-defined server errors" and are rtctl's.
WebSocket close codes 1000-2999 are RFC 6455 §7.4.1's; 4000-4999 are private
use (RFC 6455 §7.4.2) and rtctl's are listed here. ``docs/api.md`` is checked
against this table by the tests.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["CLOSE_DESCRIPTIONS", "ERROR_DESCRIPTIONS", "CloseCode", "ErrorCode"]


class ErrorCode(IntEnum):
    """JSON-RPC 2.0 error codes the gateway answers with."""

    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602
    INTERNAL_ERROR = -32603
    # rtctl's own, in the implementation-defined range -32000..-32099.
    UNAUTHORIZED = -32001
    FORBIDDEN = -32003
    CONFLICT = -32009
    WRONG_NODE = -32010
    RATE_LIMITED = -32029
    BACKEND_UNAVAILABLE = -32050


ERROR_DESCRIPTIONS: dict[ErrorCode, str] = {
    ErrorCode.PARSE_ERROR: "The message is not valid JSON. The id is null; the connection stays open.",
    ErrorCode.INVALID_REQUEST: "The JSON is not a valid JSON-RPC 2.0 request object, the batch is empty or over `max_batch`, a string holds a lone surrogate, or arrays and objects nest more than 128 deep.",
    ErrorCode.METHOD_NOT_FOUND: "No such method, or a reserved `rpc.*` name.",
    ErrorCode.INVALID_PARAMS: "The params do not bind to the method's signature; the message names the parameter.",
    ErrorCode.INTERNAL_ERROR: "The handler failed. `data.correlation_id` finds the traceback in the gateway log.",
    ErrorCode.UNAUTHORIZED: "The token offered to `session.refresh` was refused; `data.reason` says why.",
    ErrorCode.FORBIDDEN: "Not allowed: a room you are not in, a server-only state field (`data.field`), or, from your handlers, what the caller's token does not allow.",
    ErrorCode.CONFLICT: "A compare-and-set `state.update` lost: the entity changed since `expect_version`. `data` has the current `version` and `value`; read, decide, retry.",
    ErrorCode.WRONG_NODE: "The stateful room lives on another gateway node, `data.node` (its owner). Reach that node (the load balancer's room affinity), or retry after the node TTL if that node died.",
    ErrorCode.RATE_LIMITED: "Rate limited: the connection sent more calls than `inbound_rate` allows. The call did not run; `data.retry_after_ms` says when one will. The connection stays open.",
    ErrorCode.BACKEND_UNAVAILABLE: "The call needs Redis or NATS and the gateway cannot reach it; `data.backend` names which. Retry with backoff.",
}


class CloseCode(IntEnum):
    """WebSocket close codes the gateway sends (RFC 6455 §7.4)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS = 1005  # never sent: a close without a code, or seen by a proxy that did not read it
    ABNORMAL_CLOSURE = 1006  # never sent: the TCP connection ended without a close frame
    INVALID_PAYLOAD = 1007
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013
    # rtctl's own, in the private range 4000-4999.
    TOKEN_EXPIRED = 4001
    KICKED = 4003
    SLOW_CONSUMER = 4008
    SESSION_RESUMED = 4009


CLOSE_DESCRIPTIONS: dict[CloseCode, str] = {
    CloseCode.NORMAL: "Normal closure.",
    CloseCode.GOING_AWAY: "The gateway is shutting down (after its drain period); reconnect elsewhere.",
    CloseCode.PROTOCOL_ERROR: "The peer broke the WebSocket protocol.",
    CloseCode.UNSUPPORTED_DATA: "A binary frame arrived from the client: clients send JSON-RPC in text frames on every subprotocol (rtctl.v1.binary's binary frames go server to client only).",
    CloseCode.NO_STATUS: "Reported, never sent: the close carried no code.",
    CloseCode.ABNORMAL_CLOSURE: "Reported, never sent: the connection dropped without a closing handshake.",
    CloseCode.INVALID_PAYLOAD: "A text frame was not valid UTF-8.",
    CloseCode.MESSAGE_TOO_BIG: "A message exceeded the gateway's size limit (default 64 KiB).",
    CloseCode.INTERNAL_ERROR: "The peer stopped answering pings (heartbeat timeout) or the gateway failed.",
    CloseCode.TRY_AGAIN_LATER: "The gateway is at a connection limit; retry with backoff.",
    CloseCode.TOKEN_EXPIRED: "The token expired and was not refreshed with `session.refresh`; reconnect with a new token.",
    CloseCode.KICKED: "The game's own code or an operator closed this connection for good (handlers: `ctx.peer.close(4003, reason)`).",
    CloseCode.SLOW_CONSUMER: "The client read too slowly: its outbound queue passed its hard bound (at once), stayed over its pressure mark for `slow_consumer_grace` after shedding, or its socket took nothing for `write_timeout`.",
    CloseCode.SESSION_RESUMED: "The session was resumed on a newer connection (a recovery token at its upgrade): this older one is closed, and must not reconnect.",
}
