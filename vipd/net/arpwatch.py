"""ARP claims of our VIPs by other hosts, and the probe that asks who holds a VIP (kernel side of
vipd/core/claims.py).

One AF_PACKET socket per interface, receiving only ARP whose sender address is one of the VIPs
configured there: a classic-BPF filter drops everything else in the kernel, so an ordinary LAN's
ARP traffic never wakes the daemon. Frames we sent ourselves are skipped.
"""
from __future__ import annotations

import socket
import struct

from vipd.net.announce import ARPHRD_ETHER, ARPOP_REQUEST, ETH_BROADCAST, ETHERTYPE_ARP, \
    ETHERTYPE_IPV4
from vipd.net.pktwatch import MAX_FILTERED, FilteredSocket, bpf

_ARP = struct.Struct("!HHBBH6s4s6s4s")


def arp_sender_filter(vips: list[str]) -> bytes:
    """ldh [12]; jne ARP -> drop; ld [28] (sender IP); jeq each VIP -> accept; drop; accept."""
    n = len(vips)
    prog = [(0x28, 0, 0, 12), (0x15, 0, n + 1, ETHERTYPE_ARP), (0x20, 0, 0, 28)]
    prog += [(0x15, n - i, 0, int.from_bytes(socket.inet_aton(v), "big"))
             for i, v in enumerate(vips)]
    prog += [(0x06, 0, 0, 0), (0x06, 0, 0, 0xFFFF)]
    return bpf(prog)


class ArpWatch:
    """Incoming ARP frames whose sender address is one of ``vips`` on ``ifname``."""

    def __init__(self, ifname: str, vips: list[str]) -> None:
        self.ifname = ifname
        self.vips = sorted(vips)
        self._sock = FilteredSocket(ifname, ETHERTYPE_ARP, arp_sender_filter(self.vips)
                                    if len(self.vips) <= MAX_FILTERED else None)

    def fileno(self) -> int:
        return self._sock.fileno()

    def read(self, dropped) -> list[tuple[str, bytes]]:
        """(VIP, sender MAC) of each claim waiting, frames of our own left out; dropped(reason)
        for each frame too short to hold an ARP packet."""
        out = []
        for frame in self._sock.incoming(128):
            if len(frame) < 14 + _ARP.size:
                dropped("arp_truncated")
                continue
            _, _, _, _, _, mac, ip, _, _ = _ARP.unpack_from(frame, 14)
            vip = socket.inet_ntoa(ip)
            if vip in self.vips:
                out.append((vip, mac))
        return out

    def close(self) -> None:
        self._sock.close()


def probe_frame(mac: bytes, src: str, vip: str) -> bytes:
    """A broadcast ARP request "who has vip, tell src": only the host holding vip answers, and
    no one's entry for vip changes (the sender address is our own, not the VIP)."""
    arp = _ARP.pack(ARPHRD_ETHER, ETHERTYPE_IPV4, 6, 4, ARPOP_REQUEST, mac,
                    socket.inet_aton(src), b"\0" * 6, socket.inet_aton(vip))
    return ETH_BROADCAST + mac + ETHERTYPE_ARP.to_bytes(2, "big") + arp
