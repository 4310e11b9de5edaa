"""Links and addresses through rtnetlink, on bare AF_NETLINK sockets (stdlib only).

Netlink makes the few synchronous queries and changes the driver needs: one request, then its
replies up to the kernel's ack or end-of-dump, matched by sequence number. Each takes
microseconds, so the driver calls it straight from the event loop; the socket has a receive
timeout so a kernel that never answers costs at most TIMEOUT, never a hang. LinkMonitor is a
non-blocking socket subscribed to link events, read when the loop says it is readable.

pyroute2 is deliberately not used: importing it costs ~13 MB of resident memory and ~100 ms, and
its synchronous API cannot run inside an asyncio loop.

Usable ("up") means what the kernel reports as IFF_UP (administratively up), IFF_LOWER_UP (carrier)
and IFF_RUNNING (operstate UP or UNKNOWN), the same test keepalived applies.
"""
from __future__ import annotations

import errno
import ipaddress
import itertools
import os
import socket
import struct
from collections.abc import Iterable, Iterator
from typing import NamedTuple

IFF_UP = 0x1
IFF_RUNNING = 0x40
IFF_LOWER_UP = 0x10000
_USABLE = IFF_UP | IFF_RUNNING | IFF_LOWER_UP

IFA_F_SECONDARY = 0x01
IFA_F_NODAD = 0x02
IFA_F_DADFAILED = 0x08
IFA_F_TENTATIVE = 0x40
RT_SCOPE_LINK = 253

# <linux/netlink.h>, <linux/rtnetlink.h>, <linux/if_link.h>, <linux/if_addr.h>
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK, NLM_F_DUMP_INTR = 0x1, 0x2, 0x4, 0x10
NLM_F_DUMP = 0x300
NLM_F_EXCL, NLM_F_CREATE = 0x200, 0x400
NLM_F_CAPPED, NLM_F_ACK_TLVS = 0x100, 0x200   # flags of an NLMSG_ERROR reply
NLMSGERR_ATTR_MSG = 1
SOL_NETLINK = 270
NETLINK_CAP_ACK, NETLINK_EXT_ACK, NETLINK_GET_STRICT_CHK = 10, 11, 12
RTMGRP_LINK = 1
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
IFLA_ADDRESS, IFLA_IFNAME = 1, 3
IFA_ADDRESS, IFA_LOCAL, IFA_LABEL, IFA_FLAGS = 1, 2, 3, 8
IFNAMSIZ = 16

TIMEOUT = 1.0         # seconds to wait for any one reply; the kernel answers in microseconds
_DUMP_TRIES = 3       # a dump the kernel flags as interrupted (changed meanwhile) is retried
_RCVBUF = 1 << 20     # LinkMonitor: room for a burst of events (many VLANs flapping) before ENOBUFS
_BUFSIZE = 65536      # larger than any one datagram the kernel sends for links or addresses

_NLMSGHDR = struct.Struct("=IHHII")   # len, type, flags, seq, pid
_NLMSGERR = struct.Struct("=i")       # -errno, followed by the request's header
_IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
_IFADDRMSG = struct.Struct("=BBBBI")   # family, prefixlen, flags, scope, index
_RTATTR = struct.Struct("=HH")         # len, type
_U32 = struct.Struct("=I")
_NLA_TYPE_MASK = 0x3FFF                # without NLA_F_NESTED / NLA_F_NET_BYTEORDER

Interface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


def flags_usable(ifi_flags: int) -> bool:
    return ifi_flags & _USABLE == _USABLE


class NoSuchInterface(OSError, LookupError):
    """An interface that does not exist (ENODEV). Both an OSError, so the driver's error handling
    around kernel calls covers an interface that vanished, and a LookupError, as callers of
    mac() expect."""

    def __init__(self, ifname: str):
        super().__init__(errno.ENODEV, os.strerror(errno.ENODEV), ifname)


# ---- message codec ----------------------------------------------------------------------------

def _align4(n: int) -> int:
    return (n + 3) & ~3


def _attr(kind: int, payload: bytes) -> bytes:
    length = _RTATTR.size + len(payload)
    return _RTATTR.pack(length, kind) + payload + bytes(_align4(length) - length)


def _attrs(data, offset: int, end: int) -> dict[int, bytes]:
    """The route attributes in data[offset:end] by type (the first of each type wins)."""
    found: dict[int, bytes] = {}
    while offset + _RTATTR.size <= end:
        length, kind = _RTATTR.unpack_from(data, offset)
        if length < _RTATTR.size or offset + length > end:
            break
        found.setdefault(kind & _NLA_TYPE_MASK, bytes(data[offset + _RTATTR.size:offset + length]))
        offset += _align4(length)
    return found


def _string(raw: bytes | None) -> str | None:
    return None if raw is None else raw.split(b"\0", 1)[0].decode(errors="replace")


def _messages(data) -> Iterator[tuple[int, int, int, int, int]]:
    """(type, flags, seq, body offset, end) of each netlink message in one datagram."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, kind, flags, seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size:
            return
        yield kind, flags, seq, offset + _NLMSGHDR.size, min(offset + length, len(data))
        offset += _align4(length)


def _kernel_error(data, flags: int, body: int, end: int) -> OSError | None:
    """The error an NLMSG_ERROR reply reports, None for an ack. With extended acks the kernel
    says why (e.g. "Invalid prefix for given prefix length"); that goes into the message."""
    code = -_NLMSGERR.unpack_from(data, body)[0]
    if code == 0:
        return None
    reason = os.strerror(code)
    if flags & NLM_F_ACK_TLVS:
        request = body + _NLMSGERR.size
        tlvs = request + (_NLMSGHDR.size if flags & NLM_F_CAPPED
                          else _NLMSGHDR.unpack_from(data, request)[0])
        detail = _string(_attrs(data, tlvs, end).get(NLMSGERR_ATTR_MSG))
        if detail:
            reason = f"{reason} ({detail})"
    return OSError(code, reason)


def _rtnl_socket(groups: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                         socket.NETLINK_ROUTE)
    try:
        sock.bind((0, groups))
    except BaseException:
        sock.close()
        raise
    return sock


# ---- requests ---------------------------------------------------------------------------------

class _Addr(NamedTuple):
    family: int
    prefixlen: int
    flags: int     # IFA_FLAGS when present: it carries the flags that do not fit in the header
    scope: int
    address: str   # IFA_LOCAL (this host's end); IFA_ADDRESS is the peer's on point-to-point links


def _parse_addr(payload: bytes) -> tuple[int, _Addr]:
    family, prefixlen, flags, scope, index = _IFADDRMSG.unpack_from(payload)
    attrs = _attrs(payload, _IFADDRMSG.size, len(payload))
    raw = attrs.get(IFA_LOCAL) or attrs[IFA_ADDRESS]
    if IFA_FLAGS in attrs:
        flags = _U32.unpack(attrs[IFA_FLAGS])[0]
    return index, _Addr(family, prefixlen, flags, scope, socket.inet_ntop(family, raw))


class Netlink:
    """Synchronous rtnetlink requests. Not thread-safe: one caller (the event loop) at a time.

    Every method raises OSError (with the kernel's errno, or ETIMEDOUT) when the kernel refuses or
    does not answer. Interface names are resolved afresh on each call, so a renamed or re-created
    interface is always the one acted on.
    """

    def __init__(self):
        self._sock = _rtnl_socket()
        try:
            for option in (NETLINK_CAP_ACK, NETLINK_EXT_ACK, NETLINK_GET_STRICT_CHK):
                try:
                    self._sock.setsockopt(SOL_NETLINK, option, 1)
                except OSError:  # older kernels: longer errors, no reasons, filtering done here
                    pass
            self._sock.settimeout(TIMEOUT)
        except BaseException:
            self._sock.close()
            raise
        self._seq = itertools.count(1)
        self._buf = bytearray(_BUFSIZE)
        self._view = memoryview(self._buf)

    def close(self) -> None:
        self._sock.close()

    def _exchange(self, kind: int, flags: int, payload: bytes
                  ) -> tuple[list[tuple[int, bytes]], bool]:
        """Sends one request; returns its replies as (type, body) up to the ack or end of dump,
        and whether the kernel vouched that a dump is consistent."""
        seq = next(self._seq) & 0xFFFFFFFF
        self._sock.send(_NLMSGHDR.pack(_NLMSGHDR.size + len(payload), kind,
                                       NLM_F_REQUEST | NLM_F_ACK | flags, seq, 0) + payload)
        replies: list[tuple[int, bytes]] = []
        consistent = True
        while True:
            try:
                n = self._sock.recv_into(self._buf, 0, socket.MSG_TRUNC)
            except TimeoutError:
                raise TimeoutError(errno.ETIMEDOUT, f"no answer from the kernel in {TIMEOUT} s"
                                   ) from None
            if n > _BUFSIZE:
                raise OSError(errno.EMSGSIZE, f"netlink reply of {n} bytes truncated")
            data = self._view[:n]
            for mkind, mflags, mseq, body, end in _messages(data):
                if mseq != seq:
                    continue    # a late answer to a request that timed out
                if mkind == NLMSG_ERROR:
                    error = _kernel_error(data, mflags, body, end)
                    if error:
                        raise error
                    return replies, consistent
                if mkind == NLMSG_DONE:   # a dump that failed part-way ends with -errno here
                    code = -_NLMSGERR.unpack_from(data, body)[0] if end - body >= 4 else 0
                    if code > 0:
                        raise OSError(code, os.strerror(code))
                    return replies, consistent
                consistent = consistent and not mflags & NLM_F_DUMP_INTR
                replies.append((mkind, bytes(data[body:end])))

    def _request(self, kind: int, flags: int, payload: bytes) -> list[tuple[int, bytes]]:
        return self._exchange(kind, flags, payload)[0]

    def _dump(self, kind: int, payload: bytes) -> list[tuple[int, bytes]]:
        for _ in range(_DUMP_TRIES):
            replies, consistent = self._exchange(kind, NLM_F_DUMP, payload)
            if consistent:
                break
        return replies

    # ---- links --------------------------------------------------------------------------------

    def _link(self, ifname: str) -> tuple[int, int, dict[int, bytes]] | None:
        """(index, flags, attributes) of the link, None if there is none by that name."""
        name = ifname.encode()
        if not 0 < len(name) < IFNAMSIZ:
            return None   # the kernel would refuse the request; no interface can be named so
        request = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + _attr(IFLA_IFNAME, name + b"\0")
        try:
            replies = self._request(RTM_GETLINK, 0, request)
        except OSError as e:
            if e.errno == errno.ENODEV:
                return None
            raise
        for kind, payload in replies:
            if kind == RTM_NEWLINK:
                _family, _type, index, flags, _change = _IFINFOMSG.unpack_from(payload)
                return index, flags, _attrs(payload, _IFINFOMSG.size, len(payload))
        return None

    def ifindex(self, ifname: str) -> int | None:
        link = self._link(ifname)
        return link[0] if link else None

    def link_up(self, ifname: str) -> bool:
        """True when the interface exists, is administratively up and has carrier."""
        link = self._link(ifname)
        return link is not None and flags_usable(link[1])

    def mac(self, ifname: str) -> bytes:
        """The interface's hardware address; NoSuchInterface (a LookupError) if there is no such
        interface."""
        link = self._link(ifname)
        if link is None:
            raise NoSuchInterface(ifname)
        address = link[2].get(IFLA_ADDRESS)
        if not address:
            raise OSError(errno.EADDRNOTAVAIL, "interface has no hardware address", ifname)
        return address

    # ---- addresses ----------------------------------------------------------------------------

    def _addrs(self, ifname: str, family: int) -> list[_Addr]:
        """The interface's addresses of family in the kernel's order; none if it is missing."""
        index = self.ifindex(ifname)
        if index is None:
            return []
        # The kernel filters by index only on strict-checking sockets; filter here as well.
        try:
            dump = self._dump(RTM_GETADDR, _IFADDRMSG.pack(family, 0, 0, 0, index))
        except OSError as e:
            if e.errno == errno.ENODEV:   # gone since the lookup (strict checking says so)
                return []
            raise
        return [addr for i, addr in (_parse_addr(p) for k, p in dump if k == RTM_NEWADDR)
                if i == index]

    def link_local6(self, ifname: str) -> str | None:
        """The interface's IPv6 link-local address, the source of IPv6 adverts (RFC 5798 5.1.2.1).
        None while it is still tentative (DAD running) or absent: it cannot be sent from yet."""
        for addr in self._addrs(ifname, socket.AF_INET6):
            if addr.scope == RT_SCOPE_LINK and not addr.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED):
                return addr.address
        return None

    def primary_ipv4(self, ifname: str, exclude: Iterable[str | ipaddress.IPv4Address] = ()
                     ) -> str | None:
        """The address IPv4 adverts are sent from (RFC 3768 5.1.1.1): the first primary address
        that is not in exclude (the VIPs). When only secondary ones are left -- a VIP added before
        the host's own address in the same subnet -- the first of those that is not a VIP."""
        skip = {ipaddress.IPv4Address(a) for a in exclude}
        fallback = None
        for addr in self._addrs(ifname, socket.AF_INET):
            if ipaddress.IPv4Address(addr.address) in skip:
                continue
            if not addr.flags & IFA_F_SECONDARY:
                return addr.address
            fallback = fallback or addr.address
        return fallback

    def addresses(self, ifname: str) -> list[Interface]:
        return [ipaddress.ip_interface(f"{a.address}/{a.prefixlen}")
                for a in self._addrs(ifname, socket.AF_UNSPEC)]

    def _change_addr(self, kind: int, flags: int, ifname: str, iface: Interface,
                     ifa_flags: int = 0, label: str | None = None) -> None:
        index = self.ifindex(ifname)
        if index is None:
            raise NoSuchInterface(ifname)
        family = socket.AF_INET if iface.version == 4 else socket.AF_INET6
        # Local and address both, as `ip addr` sends them: with IFA_ADDRESS the kernel also
        # matches the prefix length on delete, so a VIP only removes its own exact entry.
        packed = iface.ip.packed
        request = (_IFADDRMSG.pack(family, iface.network.prefixlen, ifa_flags & 0xFF, 0, index)
                   + _attr(IFA_LOCAL, packed) + _attr(IFA_ADDRESS, packed))
        if ifa_flags:
            request += _attr(IFA_FLAGS, _U32.pack(ifa_flags))
        if label:
            request += _attr(IFA_LABEL, label.encode() + b"\0")
        self._request(kind, flags, request)

    def add_vip(self, ifname: str, iface: Interface, label: str | None = None) -> bool:
        """Adds iface (address and prefix as given) to ifname; True if added, False if it was
        already there. IPv6 VIPs skip DAD (IFA_F_NODAD): they must be usable at once, and the
        backup that held the address a moment ago would make DAD fail. label (IPv4 only, at most
        15 bytes) should be "ifname:tag": the kernel takes any label, but `ip` and `ifconfig`
        treat others as foreign. NoSuchInterface if ifname is missing."""
        try:
            self._change_addr(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, ifname, iface,
                              IFA_F_NODAD if iface.version == 6 else 0, label)
        except FileExistsError:   # EEXIST
            return False
        return True

    def del_vip(self, ifname: str, iface: Interface) -> bool:
        """Removes iface from ifname; True if removed, False if it was not there (or the
        interface is gone)."""
        try:
            self._change_addr(RTM_DELADDR, 0, ifname, iface)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.EADDRNOTAVAIL, errno.ENODEV):
                return False
            raise
        return True


# The driver used to need pyroute2 moved to a worker thread; Netlink now runs on the loop itself.
# Kept until vipd/daemon.py imports Netlink.


# ---- link events ------------------------------------------------------------------------------

_DUMP_LINKS = (_NLMSGHDR.pack(_NLMSGHDR.size + _IFINFOMSG.size, RTM_GETLINK,
                              NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
               + _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0))


class LinkMonitor:
    """Reports link changes from the kernel's RTNLGRP_LINK multicast group.

    If events are lost because the socket overflowed (ENOBUFS), it asks the kernel for every link
    and reports all of them, so the caller never misses a state it would otherwise never hear about.
    """

    def __init__(self, rcvbuf: int = _RCVBUF):
        self._sock = _rtnl_socket(RTMGRP_LINK)
        try:
            self._sock.setblocking(False)
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        except BaseException:
            self._sock.close()
            raise
        self._buf = bytearray(_BUFSIZE)
        self._view = memoryview(self._buf)

    def fileno(self) -> int:
        return self._sock.fileno()

    def read(self) -> list[tuple[str, bool]]:
        """(ifname, usable) for each link message received since the last call, oldest first; a
        removed link is reported as not usable. Never blocks."""
        events: list[tuple[str, bool]] = []
        while True:
            try:
                n = self._sock.recv_into(self._buf)
            except (BlockingIOError, InterruptedError):
                return events
            except OSError as e:
                if e.errno != errno.ENOBUFS:
                    raise
                self._sock.send(_DUMP_LINKS)
                continue
            self._parse(self._view[:n], events)

    @staticmethod
    def _parse(data: memoryview, events: list[tuple[str, bool]]) -> None:
        for kind, _flags, _seq, body, end in _messages(data):
            if kind in (RTM_NEWLINK, RTM_DELLINK) and body + _IFINFOMSG.size <= end:
                flags = _IFINFOMSG.unpack_from(data, body)[3]
                name = _string(_attrs(data, body + _IFINFOMSG.size, end).get(IFLA_IFNAME))
                if name is not None:
                    events.append((name, kind == RTM_NEWLINK and flags_usable(flags)))

    def close(self) -> None:
        self._sock.close()
