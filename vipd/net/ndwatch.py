"""Neighbour Advertisement claims of our IPv6 VIPs by other hosts, and the Neighbour Solicitation
that asks who holds one (the IPv6 side of vipd/net/arpwatch.py, for vipd/core/claims.py).

One AF_PACKET socket per interface with IPv6 VIPs, receiving only ICMPv6 Neighbour Advertisements
(RFC 4861 4.4) whose target is one of the VIPs configured there: a classic-BPF filter drops
everything else in the kernel (an ordinary LAN's IPv6 traffic never wakes the daemon). An NA for
a VIP from another MAC is a claim: another host's unsolicited NA (a master we cannot hear), or
its answer to our probe. Frames we sent ourselves are skipped. What reaches Python is checked as
a receiving host would (RFC 4861 7.1.2): a malformed NA is dropped and counted, never trusted.

The frame is read at fixed offsets: an NA behind an IPv6 extension header does not match the
filter (next header 58 at offset 20) and goes unseen; Linux (and so keepalived) never sends one.
"""
from __future__ import annotations

import socket
import struct

from vipd.core.packet import checksum16
from vipd.net.announce import ETHERTYPE_IPV6, IPPROTO_ICMPV6, ND_NEIGHBOR_ADVERT, \
    ND_OPT_TARGET_LINKADDR, ndp_frame, solicited_node
from vipd.net.pktwatch import MAX_FILTERED, FilteredSocket, bpf

ND_NEIGHBOR_SOLICIT = 135
ND_OPT_SOURCE_LINKADDR = 1
ETH, IP6 = 14, 40           # header lengths; the ICMPv6 message starts at ETH + IP6
ICMP = ETH + IP6
NA_LEN = 24                 # type, code, checksum, flags, target (RFC 4861 4.4)
_IPV6 = struct.Struct("!IHBB16s16s")
_NS = struct.Struct("!BBHI16sBB6s")     # type, code, checksum, reserved, target, SLLA option


class MalformedNA(ValueError):
    """An NA for one of our VIPs that a host would discard; reason is the counter's name."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def na_target_filter(vips: list[str]) -> bytes:
    """ldh [12]; jne IPv6 -> drop; ldb [20]; jne ICMPv6 -> drop; ldb [54]; jne NA -> drop;
    ld [74] (the target's last word); jeq each VIP's -> accept; drop; accept. Only the last word
    is compared (one test per VIP, not four); parse_na compares the whole target."""
    n = len(vips)
    prog = [(0x28, 0, 0, 12), (0x15, 0, n + 5, ETHERTYPE_IPV6),
            (0x30, 0, 0, ETH + 6), (0x15, 0, n + 3, IPPROTO_ICMPV6),
            (0x30, 0, 0, ICMP), (0x15, 0, n + 1, ND_NEIGHBOR_ADVERT),
            (0x20, 0, 0, ICMP + 20)]
    prog += [(0x15, n - i, 0, int.from_bytes(socket.inet_pton(socket.AF_INET6, v)[12:], "big"))
             for i, v in enumerate(vips)]
    prog += [(0x06, 0, 0, 0), (0x06, 0, 0, 0xFFFF)]
    return bpf(prog)


def parse_na(frame: bytes, targets: frozenset[bytes]) -> tuple[bytes, bytes] | None:
    """(target, link-layer address) of an Ethernet frame carrying an NA whose target is in
    targets (packed addresses); None for any other frame; MalformedNA for an NA a host would
    discard (RFC 4861 7.1.2). The address is the target link-layer option's (what the NA asks
    hosts to store for the target), else the frame's source (a solicited NA may omit it)."""
    if len(frame) < ICMP + 1 or frame[12:14] != b"\x86\xdd" or frame[ETH + 6] != IPPROTO_ICMPV6 \
            or frame[ICMP] != ND_NEIGHBOR_ADVERT:
        return None
    if len(frame) < ICMP + NA_LEN:
        raise MalformedNA("nd_truncated")
    target = frame[ICMP + 8:ICMP + 24]
    if target not in targets:
        return None
    _, plen, _, hlim, src, dst = _IPV6.unpack_from(frame, ETH)
    if plen < NA_LEN or len(frame) < ICMP + plen:
        raise MalformedNA("nd_truncated")
    if hlim != 255:
        raise MalformedNA("nd_hop_limit")       # crossed a router: not from this link
    msg = frame[ICMP:ICMP + plen]
    if msg[1] != 0:
        raise MalformedNA("nd_bad_code")
    pseudo = src + dst + struct.pack("!I3xB", plen, IPPROTO_ICMPV6)
    if checksum16(pseudo + msg) != 0:          # the sum over a correct message is zero
        raise MalformedNA("nd_bad_checksum")
    mac = frame[6:12]
    off = NA_LEN
    while off < plen:
        if off + 2 > plen or msg[off + 1] == 0 or off + 8 * msg[off + 1] > plen:
            raise MalformedNA("nd_bad_option")  # a zero or overrunning length (RFC 4861 4.6)
        if msg[off] == ND_OPT_TARGET_LINKADDR and msg[off + 1] == 1:
            mac = msg[off + 2:off + 8]
        off += 8 * msg[off + 1]
    return target, mac


class NdWatch:
    """Incoming NAs whose target is one of ``vips`` (IPv6) on ``ifname``."""

    def __init__(self, ifname: str, vips: list[str]) -> None:
        self.ifname = ifname
        self.vips = sorted(vips)
        self._targets = {socket.inet_pton(socket.AF_INET6, v): v for v in self.vips}
        self._keys = frozenset(self._targets)
        self._sock = FilteredSocket(ifname, ETHERTYPE_IPV6, na_target_filter(self.vips)
                                    if len(self.vips) <= MAX_FILTERED else None)

    def fileno(self) -> int:
        return self._sock.fileno()

    def read(self, dropped) -> list[tuple[str, bytes]]:
        """(VIP, MAC) of each claim waiting, frames of our own left out; dropped(reason) for
        each malformed NA."""
        out = []
        for frame in self._sock.incoming(2048):
            try:
                claim = parse_na(frame, self._keys)
            except MalformedNA as e:
                dropped(e.reason)
                continue
            if claim is not None:
                out.append((self._targets[claim[0]], claim[1]))
        return out

    def close(self) -> None:
        self._sock.close()


def ns_probe_frame(mac: bytes, src: str, vip: str) -> bytes:
    """A Neighbour Solicitation "who has vip" (RFC 4861 4.3) to vip's solicited-node group, from
    our own address src: only a host holding vip answers (an NA for vip), and no one's entry for
    vip changes. It carries our MAC as the source link-layer option (RFC 4861 7.2.2: SHOULD), which
    only concerns src: the holder can answer at once instead of first resolving src."""
    target = socket.inet_pton(socket.AF_INET6, vip)
    icmp = _NS.pack(ND_NEIGHBOR_SOLICIT, 0, 0, 0, target, ND_OPT_SOURCE_LINKADDR, 1, mac)
    return ndp_frame(mac, socket.inet_pton(socket.AF_INET6, src),
                     socket.inet_pton(socket.AF_INET6, solicited_node(vip)), icmp)
