"""permessage-deflate (RFC 7692) for the ``websockets`` driver, with a size threshold.

``websockets``' :class:`~websockets.extensions.permessage_deflate.PerMessageDeflate`
compresses every data frame it sends. A small JSON-RPC message gains little or
nothing from deflate (the sync flush alone adds bytes, RFC 7692 §7.2.1) and
costs a compressor call, so :class:`ThresholdDeflate` sends messages smaller
than ``threshold`` bytes as they are, RSV1 clear: RFC 7692 §6.1 lets a sender
leave any message uncompressed once the extension is negotiated, and every
receiver reads RSV1 per message (§6.2). What arrives is decompressed as
``websockets`` always does, whatever the threshold.

Each connection that negotiates the extension holds a compressor for as long
as it lives (context takeover, §7.1.1: later messages refer back to earlier
ones, the point on repetitive JSON). zlib sizes it as ``2^(wbits+2) +
2^(memLevel+9)`` bytes, plus a decompressor of ``2^wbits`` (zlib's
``zconf.h``): :data:`WINDOW_BITS` 12 and :data:`MEMORY_LEVEL` 5 make that
16 KiB + 16 KiB + 4 KiB (``websockets``' own defaults), where zlib's 15 and 8
would take 256 KiB + 32 KiB; measured, a connection grows by 48 KiB
(docs/performance.md, Compression). The window bounds both directions: ours through
``server_max_window_bits`` and the client's through ``client_max_window_bits``
when it offers that parameter (§7.1.2; browsers do).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from websockets.extensions.base import Extension, ServerExtensionFactory
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import CONT, CTRL_OPCODES, Frame
from websockets.typing import ExtensionParameter

from rtctl.config import Routing

__all__ = ["MEMORY_LEVEL", "WINDOW_BITS", "ThresholdDeflate", "deflate_extensions"]

WINDOW_BITS = 12  # a 4 KiB LZ77 window: one or two 2 KB state patches, a dozen chat lines
MEMORY_LEVEL = 5  # zlib's hash table at 16 KiB instead of 128 KiB


class ThresholdDeflate(PerMessageDeflate):
    """:class:`PerMessageDeflate` that leaves messages under ``threshold`` bytes uncompressed.

    A fragmented message is judged by its first frame; its continuation frames
    follow that choice (RFC 7692 §6.1: RSV1 is set on the first frame only).
    """

    def __init__(self, *args: Any, threshold: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.threshold = threshold
        self._plain_message = False  # the message being sent goes out as it is

    def encode(self, frame: Frame) -> Frame:
        if frame.opcode in CTRL_OPCODES:
            return frame
        if frame.opcode is not CONT:
            self._plain_message = len(frame.data) < self.threshold
        return frame if self._plain_message else super().encode(frame)


class _ThresholdFactory(ServerPerMessageDeflateFactory):
    """Negotiates as ``websockets`` does; the extension it makes has the threshold."""

    def __init__(self, *, threshold: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.threshold = threshold

    def process_request_params(
        self, params: Sequence[ExtensionParameter], accepted_extensions: Sequence[Extension],
    ) -> tuple[list[ExtensionParameter], PerMessageDeflate]:
        answer, agreed = super().process_request_params(params, accepted_extensions)
        return answer, ThresholdDeflate(
            agreed.remote_no_context_takeover, agreed.local_no_context_takeover,
            agreed.remote_max_window_bits, agreed.local_max_window_bits,
            agreed.compress_settings, threshold=self.threshold)


def deflate_extensions(routing: Routing) -> list[ServerExtensionFactory]:
    """What the gateway accepts of a client's offer (RFC 7692 §5, §7.1): nothing unless
    ``routing.compression``; then deflate at ``compression_level`` from
    ``compression_threshold`` bytes."""
    if not routing.compression:
        return []
    return [_ThresholdFactory(
        threshold=routing.compression_threshold, server_max_window_bits=WINDOW_BITS,
        client_max_window_bits=WINDOW_BITS,
        compress_settings={"level": routing.compression_level, "memLevel": MEMORY_LEVEL})]
