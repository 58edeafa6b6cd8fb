"""Export tap events as a pcap that Wireshark and tshark decode as WebSocket.

The tap sees messages, not packets, so the capture is synthesised (with
scapy): per connection one TCP flow between the client's and the gateway's
address as the tap reported them, over Ethernet and IPv4 or IPv6. Each flow
opens with the three-way handshake (RFC 9293 §3.5) and the HTTP upgrade
(RFC 6455 §4.1-§4.2, with a real ``Sec-WebSocket-Accept``), so Wireshark's
HTTP dissector hands the stream to its WebSocket dissector, which shows the
JSON text. Every message becomes one final frame (RFC 6455 §5.2), text or
binary (opcode 2, ``rtctl.v1.binary``) as it was sent, masked from client to
server with a key from the seeded ``rng`` (§5.3), cut into segments of at
most :data:`MSS` bytes; sequence and acknowledgement numbers run on
consistently, and the receiver acknowledges every second full segment as
TCP does, so Wireshark's TCP analysis finds nothing wrong. A disconnect
sends the close frames (§5.5.1; none for 1005/1006/1015, which are never
sent, §7.4.1) and then FIN both ways. The upgrade carries no token:
recordings never hold one.

Packet times are the events' microseconds. A frame of a connection that the
recording never saw open (the listener joined later) gets a flow on the spot.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os
import random
from dataclasses import dataclass

from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from scapy.utils import EDecimal, PcapWriter

from rtctl.exceptions import ConfigError
from rtctl.protocol.tap import IN, Connected, Disconnected, FrameSeen, TapEvent
from rtctl.protocol.websocket import BINARY, TEXT

__all__ = ["MSS", "PcapExporter", "accept_key", "apply_mask", "ws_frame"]

MSS = 1460  # bytes of payload per segment, as on Ethernet
WINDOW = 65535
CLOSE = 0x8  # opcode, RFC 6455 §5.2
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
_UNSENDABLE = frozenset({1005, 1006, 1015})  # close codes never put in a frame (§7.4.1)
_MAC = {"client": "02:00:00:00:00:01", "server": "02:00:00:00:00:02"}  # locally administered
_FALLBACK_SERVER = "127.0.0.1:8765"
_FALLBACK_CLIENT_PORT = 40000


def apply_mask(data: bytes, mask: bytes) -> bytes:
    """XOR octet *i* with ``mask[i % 4]`` (RFC 6455 §5.3); masking twice unmasks."""
    if not data:
        return b""
    key = (mask * (len(data) // 4 + 1))[: len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(len(data), "big")


def ws_frame(payload: bytes, *, opcode: int = TEXT, mask: bytes | None = None) -> bytes:
    """One final frame (FIN set, RFC 6455 §5.2): 7-, 16- or 64-bit length, masked if ``mask``."""
    size = len(payload)
    mask_bit = 0x80 if mask is not None else 0
    head = bytearray([0x80 | opcode])
    if size < 126:
        head.append(mask_bit | size)
    elif size < 1 << 16:
        head += bytes([mask_bit | 126]) + size.to_bytes(2, "big")
    else:
        head += bytes([mask_bit | 127]) + size.to_bytes(8, "big")
    if mask is None:
        return bytes(head) + payload
    return bytes(head) + mask + apply_mask(payload, mask)


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key`` (RFC 6455 §4.2.2 step 5.4)."""
    return base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()


def _endpoint(address: str | None, fallback: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` → (host, port); unparsable or missing → ``fallback``."""
    for text in (address, fallback):
        if text:
            host, _, port = text.rpartition(":")
            try:
                return str(ipaddress.ip_address(host.strip("[]"))), int(port)
            except ValueError:
                continue
    raise ValueError(f"no usable address in {address!r} or {fallback!r}")


@dataclass
class _Flow:
    """One synthetic TCP connection: its endpoints and each side's next sequence number."""

    client: tuple[str, int]
    server: tuple[str, int]
    seq: dict[str, int]
    unacked: dict[str, int]  # bytes each side received and has not acknowledged yet

    def packet(self, sender: str, flags: str, t_us: int, payload: bytes = b"") -> Packet:
        receiver = "server" if sender == "client" else "client"
        (src, sport), (dst, dport) = (
            (self.client, self.server) if sender == "client" else (self.server, self.client))
        layer = IPv6(src=src, dst=dst) if ":" in src else IP(src=src, dst=dst)
        ack = self.seq[receiver] if "A" in flags else 0
        tcp = TCP(sport=sport, dport=dport, seq=self.seq[sender], ack=ack, flags=flags,
                  window=WINDOW)
        packet = Ether(src=_MAC[sender], dst=_MAC[receiver]) / layer / tcp
        if payload:
            packet = packet / Raw(payload)
        packet.time = EDecimal(t_us) / 1_000_000  # exact µs; a float rounds
        step = len(payload) + (1 if "S" in flags or "F" in flags else 0)
        self.seq[sender] = (self.seq[sender] + step) % (1 << 32)
        if "A" in flags:
            self.unacked[sender] = 0
        self.unacked[receiver] += len(payload)
        return packet

    def send(self, sender: str, data: bytes, t_us: int) -> list[Packet]:
        """``data`` in segments of at most :data:`MSS`, ACKed every second full one."""
        receiver = "server" if sender == "client" else "client"
        packets = []
        for start in range(0, len(data), MSS):
            packets.append(self.packet(sender, "PA", t_us, data[start:start + MSS]))
            if self.unacked[receiver] >= 2 * MSS:
                packets.append(self.packet(receiver, "A", t_us))
        return packets


class PcapExporter:
    """Writes packets for tap events to ``path`` as they come (a sink for ``rtctl inspect``)."""

    def __init__(self, path: str | os.PathLike[str], *, rng: random.Random | None = None) -> None:
        self.path = os.fspath(path)
        self.packets = 0
        self._rng = rng or random.Random(0)
        self._flows: dict[str, _Flow] = {}
        self._server = _FALLBACK_SERVER
        try:
            self._writer = PcapWriter(self.path, linktype=1, sync=False)  # 1: Ethernet
        except OSError as exc:
            raise ConfigError(f"cannot write the pcap {self.path}: {exc.strerror}") from None

    def write(self, event: TapEvent) -> None:
        """Add the packets ``event`` stands for; other events than these three add none."""
        if isinstance(event, Connected):
            self._server = event.local or self._server
            self._open(event.conn, event.t_us, event.remote, event.local, event.path,
                       event.subprotocol)
        elif isinstance(event, FrameSeen):
            flow = self._flows.get(event.conn) or self._open(event.conn, event.t_us)
            payload, opcode = event.data, BINARY if event.binary else TEXT
            if event.direction == IN:
                frame = ws_frame(payload, opcode=opcode, mask=self._mask())
                self._emit(flow.send("client", frame, event.t_us))
            else:
                self._emit(flow.send("server", ws_frame(payload, opcode=opcode), event.t_us))
        elif isinstance(event, Disconnected) and event.conn in self._flows:
            self._close(self._flows.pop(event.conn), event.code, event.reason, event.t_us)

    def close(self) -> None:
        """Flush and close the file; flows still open stay open, as in a live capture."""
        self._writer.close()

    def _mask(self) -> bytes:
        return self._rng.randbytes(4)

    def _emit(self, packets: list[Packet]) -> None:
        for packet in packets:
            self._writer.write(packet)
        self.packets += len(packets)

    def _open(self, conn: str, t_us: int, remote: str | None = None, local: str | None = None,
              path: str = "/ws", subprotocol: str | None = None) -> _Flow:
        server = _endpoint(local, self._server)
        fallback_client = ("::1" if ":" in server[0] else "127.0.0.1",
                           _FALLBACK_CLIENT_PORT + len(self._flows))
        client = _endpoint(remote, f"[{fallback_client[0]}]:{fallback_client[1]}")
        if (":" in client[0]) != (":" in server[0]):  # one flow, one IP version
            client = fallback_client
        rng = self._rng
        flow = _Flow(client, server, {"client": rng.getrandbits(32), "server": rng.getrandbits(32)},
                     {"client": 0, "server": 0})
        self._flows[conn] = flow
        host = f"[{server[0]}]:{server[1]}" if ":" in server[0] else f"{server[0]}:{server[1]}"
        key = base64.b64encode(rng.randbytes(16)).decode()
        protocol = f"Sec-WebSocket-Protocol: {subprotocol}\r\n" if subprotocol else ""
        request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                   f"Sec-WebSocket-Version: 13\r\n{protocol}"
                   "User-Agent: rtctl-inspect (synthesised from the tap)\r\n\r\n")
        response = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept_key(key)}\r\n"
                    f"{protocol}\r\n")
        self._emit([flow.packet("client", "S", t_us), flow.packet("server", "SA", t_us),
                    flow.packet("client", "A", t_us),
                    *flow.send("client", request.encode(), t_us),
                    *flow.send("server", response.encode(), t_us)])
        return flow

    def _close(self, flow: _Flow, code: int, reason: str, t_us: int) -> None:
        packets: list[Packet] = []
        if code not in (1006, 1015):
            body = b"" if code in _UNSENDABLE else code.to_bytes(2, "big") + _cut(reason)
            packets += flow.send("server", ws_frame(body, opcode=CLOSE), t_us)
            packets += flow.send("client", ws_frame(body[:2], opcode=CLOSE, mask=self._mask()),
                                 t_us)
        packets += [flow.packet("server", "FA", t_us), flow.packet("client", "FA", t_us),
                    flow.packet("server", "A", t_us)]
        self._emit(packets)


def _cut(reason: str) -> bytes:
    """The reason as UTF-8, cut to the 123 bytes a close frame can carry (§5.5)."""
    return reason.encode()[:123].decode("utf-8", "ignore").encode()
