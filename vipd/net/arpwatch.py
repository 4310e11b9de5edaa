"""ARP claims of our VIPs by other hosts, and the probe that asks who holds a VIP (kernel side of
vipd/core/claims.py).

One AF_PACKET socket per interface, receiving only ARP whose sender address is one of the VIPs
configured there: a classic-BPF filter drops everything else in the kernel, so an ordinary LAN's
ARP traffic never wakes the daemon. Frames we sent ourselves are skipped.
"""
from __future__ import annotations

import ctypes
import socket
import struct

from vipd.net.announce import ARPHRD_ETHER, ARPOP_REQUEST, ETH_BROADCAST, ETHERTYPE_ARP, \
    ETHERTYPE_IPV4

SO_ATTACH_FILTER = 26
PACKET_OUTGOING = 4
MAX_FILTERED = 200          # more VIPs than this on one interface: accept all ARP (jump offsets)
_INSN = struct.Struct("HBBI")
_ARP = struct.Struct("!HHBBH6s4s6s4s")


def arp_sender_filter(vips: list[str]) -> bytes:
    """ldh [12]; jne ARP -> drop; ld [28] (sender IP); jeq each VIP -> accept; drop; accept."""
    n = len(vips)
    prog = [(0x28, 0, 0, 12), (0x15, 0, n + 1, ETHERTYPE_ARP), (0x20, 0, 0, 28)]
    prog += [(0x15, n - i, 0, int.from_bytes(socket.inet_aton(v), "big"))
             for i, v in enumerate(vips)]
    prog += [(0x06, 0, 0, 0), (0x06, 0, 0, 0xFFFF)]
    return b"".join(_INSN.pack(*insn) for insn in prog)


class ArpWatch:
    """Incoming ARP frames whose sender address is one of ``vips`` on ``ifname``."""

    def __init__(self, ifname: str, vips: list[str]) -> None:
        self.ifname = ifname
        self.vips = sorted(vips)
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                   socket.htons(ETHERTYPE_ARP))
        try:
            if len(self.vips) <= MAX_FILTERED:
                self._prog = ctypes.create_string_buffer(arp_sender_filter(self.vips))
                fprog = struct.pack("HL", len(self._prog.raw) // _INSN.size,
                                    ctypes.addressof(self._prog))
                self._sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
            self._sock.setblocking(False)
            self._sock.bind((ifname, ETHERTYPE_ARP))
        except BaseException:
            self._sock.close()
            raise

    def fileno(self) -> int:
        return self._sock.fileno()

    def read(self) -> list[tuple[str, bytes]]:
        """(VIP, sender MAC) of each claim waiting, frames of our own left out."""
        out = []
        while True:
            try:
                frame, addr = self._sock.recvfrom(128)
            except (BlockingIOError, InterruptedError):
                return out
            if addr[2] == PACKET_OUTGOING or len(frame) < 14 + _ARP.size:
                continue
            _, _, _, _, _, mac, ip, _, _ = _ARP.unpack_from(frame, 14)
            vip = socket.inet_ntoa(ip)
            if vip in self.vips:
                out.append((vip, mac))

    def close(self) -> None:
        self._sock.close()


def probe_frame(mac: bytes, src: str, vip: str) -> bytes:
    """A broadcast ARP request "who has vip, tell src": only the host holding vip answers, and
    no one's entry for vip changes (the sender address is our own, not the VIP)."""
    arp = _ARP.pack(ARPHRD_ETHER, ETHERTYPE_IPV4, 6, 4, ARPOP_REQUEST, mac,
                    socket.inet_aton(src), b"\0" * 6, socket.inet_aton(vip))
    return ETH_BROADCAST + mac + ETHERTYPE_ARP.to_bytes(2, "big") + arp


class ArpWatchers:
    """One ArpWatch per interface with IPv4 VIPs, rebuilt when that interface's VIP set changes;
    on_claim(ifname, vip, mac) for each claim read."""

    def __init__(self, loop, on_claim) -> None:
        self.loop = loop
        self.on_claim = on_claim
        self.watches: dict[str, ArpWatch] = {}

    def sync(self, wanted: dict[str, set[str]]) -> list[str]:
        """Watch exactly these interfaces for these VIPs; returns the errors of those that
        could not be watched (claims there go unseen; nothing else depends on them)."""
        errors = []
        for ifname, w in list(self.watches.items()):
            if w.vips != sorted(wanted.get(ifname, ())):
                self._close(ifname)
        for ifname, vips in wanted.items():
            if ifname in self.watches or not vips:
                continue
            try:
                w = self.watches[ifname] = ArpWatch(ifname, sorted(vips))
            except OSError as e:
                errors.append(f"cannot watch ARP on {ifname}: {e.strerror or e}")
                continue
            self.loop.add_reader(w.fileno(), self._readable, w)
        return errors

    def _readable(self, w: ArpWatch) -> None:
        try:
            claims = w.read()
        except OSError:
            return
        for vip, mac in claims:
            self.on_claim(w.ifname, vip, mac)

    def _close(self, ifname: str) -> None:
        w = self.watches.pop(ifname)
        self.loop.remove_reader(w.fileno())
        w.close()

    def close(self) -> None:
        for ifname in list(self.watches):
            self._close(ifname)
