"""Links and addresses through rtnetlink.

Netlink wraps pyroute2's IPRoute for the few synchronous queries and changes the driver makes (each
takes microseconds, so they run on the event loop). LinkMonitor is a bare non-blocking rtnetlink
socket subscribed to link events, read when the loop says it is readable; it parses the two fields
it needs by hand because pyroute2's synchronous reader would block.

Usable ("up") means what the kernel reports as IFF_UP (administratively up), IFF_LOWER_UP (carrier)
and IFF_RUNNING (operstate UP or UNKNOWN), the same test keepalived applies.
"""
from __future__ import annotations

import errno
import ipaddress
import socket
import struct
from collections.abc import Iterable

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

IFF_UP = 0x1
IFF_RUNNING = 0x40
IFF_LOWER_UP = 0x10000
_USABLE = IFF_UP | IFF_RUNNING | IFF_LOWER_UP

IFA_F_SECONDARY = 0x01
IFA_F_NODAD = 0x02
IFA_F_DADFAILED = 0x08
IFA_F_TENTATIVE = 0x40
RT_SCOPE_LINK = 253

Interface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


def flags_usable(ifi_flags: int) -> bool:
    return ifi_flags & _USABLE == _USABLE


class Netlink:
    def __init__(self):
        self._ipr = IPRoute()

    def close(self) -> None:
        self._ipr.close()

    def ifindex(self, ifname: str) -> int | None:
        found = self._ipr.link_lookup(ifname=ifname)
        return found[0] if found else None

    def _index(self, ifname: str) -> int:
        index = self.ifindex(ifname)
        if index is None:
            raise LookupError(f"no interface named {ifname!r}")
        return index

    def _link(self, ifname: str):
        links = self._ipr.get_links(ifname=ifname)
        if not links:
            raise LookupError(f"no interface named {ifname!r}")
        return links[0]

    def link_up(self, ifname: str) -> bool:
        """True when the interface exists, is administratively up and has carrier."""
        try:
            return flags_usable(self._link(ifname)["flags"])
        except LookupError:
            return False

    def mac(self, ifname: str) -> bytes:
        """The interface's 6-byte hardware address; LookupError if there is no such interface."""
        return bytes.fromhex(self._link(ifname).get_attr("IFLA_ADDRESS").replace(":", ""))

    def _addr_msgs(self, ifname: str, family: int):
        index = self.ifindex(ifname)
        if index is None:
            return ()
        return self._ipr.get_addr(family=family, index=index)

    @staticmethod
    def _flags(msg) -> int:
        # IFA_FLAGS carries the flags that do not fit in the 8-bit header field.
        flags = msg.get_attr("IFA_FLAGS")
        return msg["flags"] if flags is None else flags

    @staticmethod
    def _address(msg) -> str:
        # IFA_LOCAL is this host's address; IFA_ADDRESS is the peer's on point-to-point links.
        return msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")

    def link_local6(self, ifname: str) -> str | None:
        """The interface's IPv6 link-local address, the source of IPv6 adverts (RFC 5798 5.1.2.1).
        None while it is still tentative (DAD running) or absent: it cannot be sent from yet."""
        for msg in self._addr_msgs(ifname, socket.AF_INET6):
            if msg["scope"] != RT_SCOPE_LINK:
                continue
            if self._flags(msg) & (IFA_F_TENTATIVE | IFA_F_DADFAILED):
                continue
            return self._address(msg)
        return None

    def primary_ipv4(self, ifname: str, exclude: Iterable[str | ipaddress.IPv4Address] = ()
                     ) -> str | None:
        """The address IPv4 adverts are sent from (RFC 3768 5.1.1.1): the first primary address
        that is not in exclude (the VIPs). When only secondary ones are left -- a VIP added before
        the host's own address in the same subnet -- the first of those that is not a VIP."""
        skip = {ipaddress.IPv4Address(a) for a in exclude}
        fallback = None
        for msg in self._addr_msgs(ifname, socket.AF_INET):
            addr = self._address(msg)
            if ipaddress.IPv4Address(addr) in skip:
                continue
            if not self._flags(msg) & IFA_F_SECONDARY:
                return addr
            fallback = fallback or addr
        return fallback

    def addresses(self, ifname: str) -> list[Interface]:
        return [ipaddress.ip_interface(f"{self._address(m)}/{m['prefixlen']}")
                for m in self._addr_msgs(ifname, socket.AF_UNSPEC)]

    def _change_addr(self, command: str, ifname: str, iface: Interface, **extra) -> None:
        self._ipr.addr(command, index=self._index(ifname), address=str(iface.ip),
                       prefixlen=iface.network.prefixlen, **extra)

    def add_vip(self, ifname: str, iface: Interface, label: str | None = None) -> bool:
        """Adds iface (address and prefix as given) to ifname; True if added, False if it was
        already there. IPv6 VIPs skip DAD (IFA_F_NODAD): they must be usable at once, and the
        backup that held the address a moment ago would make DAD fail. label (IPv4 only) must
        start with ifname, as the kernel requires."""
        extra = {"label": label} if label else {}
        if iface.version == 6:
            extra["flags"] = IFA_F_NODAD
        try:
            self._change_addr("add", ifname, iface, **extra)
        except NetlinkError as e:
            if e.code == errno.EEXIST:
                return False
            raise
        return True

    def del_vip(self, ifname: str, iface: Interface) -> bool:
        """Removes iface from ifname; True if removed, False if it was not there (or the
        interface is gone)."""
        try:
            self._change_addr("del", ifname, iface)
        except LookupError:
            return False
        except NetlinkError as e:
            if e.code == errno.EADDRNOTAVAIL:
                return False
            raise
        return True


# ---- link events --------------------------------------------------------------------------

RTMGRP_LINK = 1
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
IFLA_IFNAME = 3

_NLMSGHDR = struct.Struct("=IHHII")   # len, type, flags, seq, pid
_IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
_RTATTR = struct.Struct("=HH")         # len, type
_DUMP_LINKS = (_NLMSGHDR.pack(_NLMSGHDR.size + _IFINFOMSG.size, RTM_GETLINK,
                              NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
               + _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0))
_RCVBUF = 1 << 20  # room for a burst of events (many VLANs flapping) before ENOBUFS


def _align4(n: int) -> int:
    return (n + 3) & ~3


def _ifname(msg: memoryview, offset: int, end: int) -> str | None:
    while offset + _RTATTR.size <= end:
        length, kind = _RTATTR.unpack_from(msg, offset)
        if length < _RTATTR.size:
            return None
        if kind == IFLA_IFNAME:
            raw = bytes(msg[offset + _RTATTR.size:offset + length])
            return raw.split(b"\0", 1)[0].decode()
        offset += _align4(length)
    return None


class LinkMonitor:
    """Reports link changes from the kernel's RTNLGRP_LINK multicast group.

    If events are lost because the socket overflowed (ENOBUFS), it asks the kernel for every link
    and reports all of them, so the caller never misses a state it would otherwise never hear about.
    """

    def __init__(self, rcvbuf: int = _RCVBUF):
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                   socket.NETLINK_ROUTE)
        try:
            self._sock.setblocking(False)
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self._sock.bind((0, RTMGRP_LINK))
        except BaseException:
            self._sock.close()
            raise
        self._buf = bytearray(65536)
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
        offset = 0
        while offset + _NLMSGHDR.size <= len(data):
            length, kind = _NLMSGHDR.unpack_from(data, offset)[:2]
            if length < _NLMSGHDR.size:
                return
            end = min(offset + length, len(data))
            body = offset + _NLMSGHDR.size
            if kind in (RTM_NEWLINK, RTM_DELLINK) and body + _IFINFOMSG.size <= end:
                flags = _IFINFOMSG.unpack_from(data, body)[3]
                name = _ifname(data, body + _IFINFOMSG.size, end)
                if name is not None:
                    events.append((name, kind == RTM_NEWLINK and flags_usable(flags)))
            offset += _align4(length)

    def close(self) -> None:
        self._sock.close()


class NetlinkThread:
    """Netlink for code running inside an asyncio loop.

    pyroute2's synchronous API drives an event loop of its own with run_until_complete, which
    asyncio forbids in a thread whose loop is running. So the Netlink object lives in one worker
    thread and each call waits for its answer: the calls take microseconds and happen on
    transitions, not per packet, so blocking the loop for them is harmless and keeps actions in
    order (a VIP is on the interface before the announcement that follows it).
    """

    def __init__(self) -> None:
        import concurrent.futures
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="netlink")
        self._nl = self._pool.submit(Netlink).result()

    def __getattr__(self, name: str):
        method = getattr(self._nl, name)

        def call(*args, **kwargs):
            return self._pool.submit(method, *args, **kwargs).result()
        return call

    def close(self) -> None:
        self._pool.submit(self._nl.close).result()
        self._pool.shutdown()
