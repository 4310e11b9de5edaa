"""Gratuitous ARP and unsolicited Neighbour Advertisements, sent as whole Ethernet frames.

A frame depends only on the interface's MAC and the VIP, so the driver builds it once per
(interface, VIP) and re-sends the same bytes for every burst and refresh.

The frames copy keepalived 2.2.7 byte for byte (checked against a capture of keepalived itself, see
tests/lab/test_net.py), so switches and hosts that cope with keepalived cope with vipd:
- GARP: an ARP *request* to the broadcast address with sender IP = target IP = VIP and target
  hardware address ff:ff:ff:ff:ff:ff (keepalived's choice; RFC 5227 would use zeros, and Linux
  updates its neighbour entries either way).
- NA: from the VIP itself (keepalived's vrrp_ndisc.c uses the VIP, not the link-local address) to
  ff02::1, hop limit 255, Override set, Solicited clear, Router set when the interface forwards
  IPv6 (keepalived reads net.ipv6.conf.IF.forwarding), with a target link-layer address option.
"""
from __future__ import annotations

import socket
import struct

from vipd.core.packet import checksum16

ETH_BROADCAST = b"\xff" * 6
ETHERTYPE_IPV4, ETHERTYPE_ARP, ETHERTYPE_IPV6 = 0x0800, 0x0806, 0x86DD
ARPHRD_ETHER, ARPOP_REQUEST = 1, 1
IPPROTO_ICMPV6 = 58
ND_NEIGHBOR_ADVERT = 136
ND_OPT_TARGET_LINKADDR = 2
NA_ROUTER, NA_SOLICITED, NA_OVERRIDE = 0x80000000, 0x40000000, 0x20000000
ALL_NODES6 = socket.inet_pton(socket.AF_INET6, "ff02::1")
SOLICITED_NODE_PREFIX = socket.inet_pton(socket.AF_INET6, "ff02::1:ff00:0")[:13]

_ARP = struct.Struct("!HHBBH6s4s6s4s")
_IPV6 = struct.Struct("!IHBB16s16s")
_NA = struct.Struct("!BBHI16sBB6s")  # type, code, checksum, flags, target, option type/len, mac


def _eth(dst: bytes, mac: bytes, ethertype: int) -> bytes:
    if len(mac) != 6:
        raise ValueError(f"a MAC address has 6 bytes, not {len(mac)}")
    return dst + mac + ethertype.to_bytes(2, "big")


def garp_frame(mac: bytes, vip: str) -> bytes:
    """Broadcast gratuitous ARP request announcing that vip is at mac."""
    ip = socket.inet_pton(socket.AF_INET, vip)
    arp = _ARP.pack(ARPHRD_ETHER, ETHERTYPE_IPV4, 6, 4, ARPOP_REQUEST, mac, ip, ETH_BROADCAST, ip)
    return _eth(ETH_BROADCAST, mac, ETHERTYPE_ARP) + arp


def solicited_node(address: str) -> str:
    """The solicited-node group of an IPv6 address (RFC 4291 2.7.1): ff02::1:ff00:0/104 with the
    address's low 24 bits; where Neighbour Solicitations for it are sent."""
    low = socket.inet_pton(socket.AF_INET6, address)[13:]
    return socket.inet_ntop(socket.AF_INET6, SOLICITED_NODE_PREFIX + low)


def ndp_frame(mac: bytes, source: bytes, group: bytes, icmp: bytes) -> bytes:
    """An NDP message (icmp, its checksum zero) from source to the multicast group (both packed),
    as a whole Ethernet frame from mac: checksum filled in, hop limit 255 (receivers discard NDP
    that crossed a router, RFC 4861 7.1.2), to the group's Ethernet address (RFC 2464 7)."""
    pseudo = source + group + struct.pack("!I3xB", len(icmp), IPPROTO_ICMPV6)
    icmp = icmp[:2] + checksum16(pseudo + icmp).to_bytes(2, "big") + icmp[4:]
    ipv6 = _IPV6.pack(6 << 28, len(icmp), IPPROTO_ICMPV6, 255, source, group)
    return _eth(b"\x33\x33" + group[12:], mac, ETHERTYPE_IPV6) + ipv6 + icmp


def unsolicited_na_frame(mac: bytes, vip: str, src: str | None = None,
                         router: bool = False) -> bytes:
    """Unsolicited Neighbour Advertisement (RFC 4861 7.2.6) telling every node on the link that
    vip is now at mac; Override makes them replace an existing entry. src defaults to the VIP,
    as keepalived sends it. router: pass ipv6_forwarding(ifname), as keepalived does, so hosts
    keep (or drop) the VIP as a default router correctly."""
    target = socket.inet_pton(socket.AF_INET6, vip)
    source = target if src is None else socket.inet_pton(socket.AF_INET6, src)
    flags = NA_OVERRIDE | (NA_ROUTER if router else 0)
    icmp = _NA.pack(ND_NEIGHBOR_ADVERT, 0, 0, flags, target, ND_OPT_TARGET_LINKADDR, 1, mac)
    return ndp_frame(mac, source, ALL_NODES6, icmp)


def ipv6_forwarding(ifname: str) -> bool:
    """Whether ifname forwards IPv6 (the NA Router flag), read in the caller's namespace."""
    try:
        with open(f"/proc/sys/net/ipv6/conf/{ifname}/forwarding") as f:
            return f.read().strip() == "1"
    except FileNotFoundError:
        return False


class Announcer:
    """A send-only AF_PACKET socket on one interface for prebuilt frames.

    Bound with protocol 0 so the kernel hands it no incoming frames. Bound by index at creation:
    if the interface is deleted and re-created, make a new Announcer.
    """

    def __init__(self, ifname: str):
        self.ifname = ifname
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)
        try:
            self._sock.setblocking(False)
            self._sock.bind((ifname, 0))
        except BaseException:
            self._sock.close()
            raise

    def fileno(self) -> int:
        return self._sock.fileno()

    def send(self, frame: bytes) -> None:
        """Sends one frame; OSError on failure (ENETDOWN when the interface is down, ENOBUFS or
        BlockingIOError when its queue is full, ENXIO/ENODEV when it is gone)."""
        self._sock.send(frame)

    def close(self) -> None:
        self._sock.close()
