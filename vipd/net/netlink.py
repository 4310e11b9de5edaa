"""Links and addresses through rtnetlink, on bare AF_NETLINK sockets (stdlib only).

Netlink makes the few synchronous queries and changes the driver needs: one request, then its
replies up to the kernel's ack or end-of-dump, matched by sequence number. Each takes
microseconds, so the driver calls it straight from the event loop; the socket has a receive
timeout so a kernel that never answers costs at most TIMEOUT, never a hang. Events (links and
addresses changing) are read by nlmonitor.NetMonitor; the message codec is nlcodec.

pyroute2 is deliberately not used: importing it costs ~10-14 MB of resident memory and ~100-280 ms,
its synchronous API cannot run inside an asyncio loop, and its asyncio API would make every VIP
change a coroutine where this is a microsecond call (see docs/benchmarks.md, issue 9).

Besides addresses: macvlan links (VMAC), routes and policy rules, for virtual_routes /
virtual_rules / use_vmac.
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

from vipd.net import nlcodec as nc
from vipd.net.nlcodec import (  # noqa: F401  (public names callers import from here)
    IFA_F_DADFAILED, IFA_F_NODAD, IFA_F_SECONDARY, IFA_F_TENTATIVE, RT_SCOPE_LINK, flags_usable,
)

TIMEOUT = 1.0         # seconds to wait for any one reply; the kernel answers in microseconds
_DUMP_TRIES = 3       # a dump the kernel flags as interrupted (changed meanwhile) is retried

Interface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


class NoSuchInterface(OSError, LookupError):
    """An interface that does not exist (ENODEV). Both an OSError, so the driver's error handling
    around kernel calls covers an interface that vanished, and a LookupError, as callers of
    mac() expect."""

    def __init__(self, ifname: str):
        super().__init__(errno.ENODEV, os.strerror(errno.ENODEV), ifname)


# ---- requests ---------------------------------------------------------------------------------

class Addr(NamedTuple):
    family: int
    prefixlen: int
    flags: int     # nc.IFA_FLAGS when present: it carries the flags that do not fit in the header
    scope: int
    address: str   # nc.IFA_LOCAL (this host's end); nc.IFA_ADDRESS is the peer's on point-to-point links


def _parse_addr(payload: bytes) -> tuple[int, Addr]:
    family, prefixlen, flags, scope, index = nc.IFADDRMSG.unpack_from(payload)
    attrs = nc.attrs(payload, nc.IFADDRMSG.size, len(payload))
    raw = attrs.get(nc.IFA_LOCAL) or attrs[nc.IFA_ADDRESS]
    if nc.IFA_FLAGS in attrs:
        flags = nc.U32.unpack(attrs[nc.IFA_FLAGS])[0]
    return index, Addr(family, prefixlen, flags, scope, socket.inet_ntop(family, raw))


def pick_link_local6(addrs: Iterable[Addr]) -> str | None:
    """The IPv6 link-local address, the source of IPv6 adverts (RFC 5798 5.1.2.1). None while it
    is still tentative (DAD running), failed DAD or is absent: it cannot be sent from yet."""
    for addr in addrs:
        if (addr.family == socket.AF_INET6 and addr.scope == nc.RT_SCOPE_LINK
                and not addr.flags & (nc.IFA_F_TENTATIVE | nc.IFA_F_DADFAILED)):
            return addr.address
    return None


def pick_primary_ipv4(addrs: Iterable[Addr], exclude: Iterable[str | ipaddress.IPv4Address] = ()
                      ) -> str | None:
    """The address IPv4 adverts are sent from (RFC 3768 5.1.1.1): the first primary address that
    is not in exclude (the VIPs), in the kernel's order. When only secondary ones are left -- a
    VIP added before the host's own address in the same subnet -- the first of those that is not
    a VIP."""
    skip = {str(a) for a in exclude}     # inet_ntop and ipaddress both print IPv4 canonically
    fallback = None
    for addr in addrs:
        if addr.family != socket.AF_INET or addr.address in skip:
            continue
        if not addr.flags & nc.IFA_F_SECONDARY:
            return addr.address
        fallback = fallback or addr.address
    return fallback


class Netlink:
    """Synchronous rtnetlink requests. Not thread-safe: one caller (the event loop) at a time.

    Every method raises OSError (with the kernel's errno, or ETIMEDOUT) when the kernel refuses or
    does not answer. Interface names are resolved afresh on each call, so a renamed or re-created
    interface is always the one acted on.
    """

    def __init__(self):
        self._sock = nc.rtnl_socket()
        try:
            for option in (nc.NETLINK_CAP_ACK, nc.NETLINK_EXT_ACK, nc.NETLINK_GET_STRICT_CHK):
                try:
                    self._sock.setsockopt(nc.SOL_NETLINK, option, 1)
                except OSError:  # older kernels: longer errors, no reasons, filtering done here
                    pass
            self._sock.settimeout(TIMEOUT)
        except BaseException:
            self._sock.close()
            raise
        self._seq = itertools.count(1)
        self._buf = bytearray(nc.BUFSIZE)
        self._view = memoryview(self._buf)

    def close(self) -> None:
        self._sock.close()

    def _exchange(self, kind: int, flags: int, payload: bytes
                  ) -> tuple[list[tuple[int, bytes]], bool]:
        """Sends one request; returns its replies as (type, body) up to the ack or end of dump,
        and whether the kernel vouched that a dump is consistent."""
        seq = next(self._seq) & 0xFFFFFFFF
        self._sock.send(nc.NLMSGHDR.pack(nc.NLMSGHDR.size + len(payload), kind,
                                       nc.NLM_F_REQUEST | nc.NLM_F_ACK | flags, seq, 0) + payload)
        replies: list[tuple[int, bytes]] = []
        consistent = True
        while True:
            try:
                n = self._sock.recv_into(self._buf, 0, socket.MSG_TRUNC)
            except TimeoutError:
                raise TimeoutError(errno.ETIMEDOUT, f"no answer from the kernel in {TIMEOUT} s"
                                   ) from None
            if n > nc.BUFSIZE:
                raise OSError(errno.EMSGSIZE, f"netlink reply of {n} bytes truncated")
            data = self._view[:n]
            for mkind, mflags, mseq, body, end in nc.messages(data):
                if mseq != seq:
                    continue    # a late answer to a request that timed out
                if mkind == nc.NLMSG_ERROR:
                    error = nc.kernel_error(data, mflags, body, end)
                    if error:
                        raise error
                    return replies, consistent
                if mkind == nc.NLMSG_DONE:   # a dump that failed part-way ends with -errno here
                    code = -nc.NLMSGERR.unpack_from(data, body)[0] if end - body >= 4 else 0
                    if code > 0:
                        raise OSError(code, os.strerror(code))
                    return replies, consistent
                consistent = consistent and not mflags & nc.NLM_F_DUMP_INTR
                replies.append((mkind, bytes(data[body:end])))

    def _request(self, kind: int, flags: int, payload: bytes) -> list[tuple[int, bytes]]:
        return self._exchange(kind, flags, payload)[0]

    def _dump(self, kind: int, payload: bytes) -> list[tuple[int, bytes]]:
        for _ in range(_DUMP_TRIES):
            replies, consistent = self._exchange(kind, nc.NLM_F_DUMP, payload)
            if consistent:
                break
        return replies

    # ---- links --------------------------------------------------------------------------------

    def _link(self, ifname: str) -> tuple[int, int, dict[int, bytes]] | None:
        """(index, flags, attributes) of the link, None if there is none by that name."""
        name = ifname.encode()
        if not 0 < len(name) < nc.IFNAMSIZ:
            return None   # the kernel would refuse the request; no interface can be named so
        request = nc.IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + nc.attr(nc.IFLA_IFNAME, name + b"\0")
        try:
            replies = self._request(nc.RTM_GETLINK, 0, request)
        except OSError as e:
            if e.errno == errno.ENODEV:
                return None
            raise
        for kind, payload in replies:
            if kind == nc.RTM_NEWLINK:
                _family, _type, index, flags, _change = nc.IFINFOMSG.unpack_from(payload)
                return index, flags, nc.attrs(payload, nc.IFINFOMSG.size, len(payload))
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
        address = link[2].get(nc.IFLA_ADDRESS)
        if not address:
            raise OSError(errno.EADDRNOTAVAIL, "interface has no hardware address", ifname)
        return address

    # ---- addresses ----------------------------------------------------------------------------

    def addrs(self, ifname: str, family: int) -> list[Addr]:
        """The interface's addresses of family in the kernel's order; none if it is missing."""
        index = self.ifindex(ifname)
        if index is None:
            return []
        # The kernel filters by index only on strict-checking sockets; filter here as well.
        try:
            dump = self._dump(nc.RTM_GETADDR, nc.IFADDRMSG.pack(family, 0, 0, 0, index))
        except OSError as e:
            if e.errno == errno.ENODEV:   # gone since the lookup (strict checking says so)
                return []
            raise
        return [addr for i, addr in (_parse_addr(p) for k, p in dump if k == nc.RTM_NEWADDR)
                if i == index]

    def link_local6(self, ifname: str) -> str | None:
        """The interface's usable IPv6 link-local address (see pick_link_local6)."""
        return pick_link_local6(self.addrs(ifname, socket.AF_INET6))

    def primary_ipv4(self, ifname: str, exclude: Iterable[str | ipaddress.IPv4Address] = ()
                     ) -> str | None:
        """The interface's IPv4 advert source (see pick_primary_ipv4)."""
        return pick_primary_ipv4(self.addrs(ifname, socket.AF_INET), exclude)

    def addresses(self, ifname: str) -> list[Interface]:
        return [ipaddress.ip_interface(f"{a.address}/{a.prefixlen}")
                for a in self.addrs(ifname, socket.AF_UNSPEC)]

    def _change_addr(self, kind: int, flags: int, ifname: str, iface: Interface,
                     ifa_flags: int = 0, label: str | None = None) -> None:
        index = self.ifindex(ifname)
        if index is None:
            raise NoSuchInterface(ifname)
        family = socket.AF_INET if iface.version == 4 else socket.AF_INET6
        # Local and address both, as `ip addr` sends them: with nc.IFA_ADDRESS the kernel also
        # matches the prefix length on delete, so a VIP only removes its own exact entry.
        packed = iface.ip.packed
        request = (nc.IFADDRMSG.pack(family, iface.network.prefixlen, ifa_flags & 0xFF, 0, index)
                   + nc.attr(nc.IFA_LOCAL, packed) + nc.attr(nc.IFA_ADDRESS, packed))
        if ifa_flags:
            request += nc.attr(nc.IFA_FLAGS, nc.U32.pack(ifa_flags))
        if label:
            request += nc.attr(nc.IFA_LABEL, label.encode() + b"\0")
        self._request(kind, flags, request)

    def add_vip(self, ifname: str, iface: Interface, label: str | None = None) -> bool:
        """Adds iface (address and prefix as given) to ifname; True if added, False if it was
        already there. IPv6 VIPs skip DAD (IFA_F_NODAD): they must be usable at once, and the
        backup that held the address a moment ago would make DAD fail. label (IPv4 only, at most
        15 bytes) should be "ifname:tag": the kernel takes any label, but `ip` and `ifconfig`
        treat others as foreign. NoSuchInterface if ifname is missing."""
        try:
            self._change_addr(nc.RTM_NEWADDR, nc.NLM_F_CREATE | nc.NLM_F_EXCL, ifname, iface,
                              IFA_F_NODAD if iface.version == 6 else 0, label)
        except FileExistsError:   # EEXIST
            return False
        return True

    def del_vip(self, ifname: str, iface: Interface) -> bool:
        """Removes iface from ifname; True if removed, False if it was not there (or the
        interface is gone)."""
        try:
            self._change_addr(nc.RTM_DELADDR, 0, ifname, iface)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.EADDRNOTAVAIL, errno.ENODEV):
                return False
            raise
        return True

    # ---- links: macvlan (VMAC) ----------------------------------------------------------------

    def add_macvlan(self, name: str, parent: str, mac: bytes | None = None,
                    mode: int = nc.MACVLAN_MODE_PRIVATE, up: bool = True) -> bool:
        """Creates macvlan `name` on `parent` (with this MAC, e.g. the VRRP virtual MAC
        00:00:5e:00:01:VRID, RFC 5798 7.3), administratively up unless told otherwise. True if
        made, False if a link of that name already exists. NoSuchInterface if parent is missing."""
        parent_index = self.ifindex(parent)
        if parent_index is None:
            raise NoSuchInterface(parent)
        flag = nc.IFF_UP if up else 0
        info = (nc.attr(nc.IFLA_INFO_KIND, b"macvlan")
                + nc.attr(nc.IFLA_INFO_DATA | nc.NLA_F_NESTED,
                          nc.attr(nc.IFLA_MACVLAN_MODE, nc.U32.pack(mode))))
        request = (nc.IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, flag, flag)
                   + nc.attr(nc.IFLA_IFNAME, name.encode() + b"\0")
                   + nc.attr(nc.IFLA_LINK, nc.U32.pack(parent_index))
                   + nc.attr(nc.IFLA_LINKINFO | nc.NLA_F_NESTED, info))
        if mac is not None:
            request += nc.attr(nc.IFLA_ADDRESS, mac)
        try:
            self._request(nc.RTM_NEWLINK, nc.NLM_F_CREATE | nc.NLM_F_EXCL, request)
        except FileExistsError:
            return False
        return True

    def del_link(self, name: str) -> bool:
        """Deletes link `name`; True if deleted, False if there was none."""
        index = self.ifindex(name)
        if index is None:
            return False
        try:
            self._request(nc.RTM_DELLINK, 0, nc.IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, 0, 0))
        except OSError as e:
            if e.errno == errno.ENODEV:
                return False
            raise
        return True

    # ---- routes and policy rules --------------------------------------------------------------

    def _route(self, kind: int, flags: int, to: str, via: str | None, dev: str | None,
               table: int | None, metric: int | None, src: str | None) -> None:
        dst = ipaddress.ip_network(to, strict=False)
        family = socket.AF_INET if dst.version == 4 else socket.AF_INET6
        table = nc.RT_TABLE_MAIN if table is None else table
        adding = kind == nc.RTM_NEWROUTE
        # A route with a gateway is universe scope; a device route is link scope (as `ip route`
        # picks them). Delete matches any scope (RT_SCOPE_NOWHERE) and any protocol.
        scope = (nc.RT_SCOPE_UNIVERSE if via else nc.RT_SCOPE_LINK) if adding else 255
        request = nc.RTMSG.pack(family, dst.prefixlen, 0, 0, table if table < 256 else 0,
                                nc.RTPROT_STATIC if adding else 0, scope, nc.RTN_UNICAST, 0)
        request += nc.attr(nc.RTA_TABLE, nc.U32.pack(table))
        if dst.prefixlen:
            request += nc.attr(nc.RTA_DST, dst.network_address.packed)
        if via:
            request += nc.attr(nc.RTA_GATEWAY, ipaddress.ip_address(via).packed)
        if src:
            request += nc.attr(nc.RTA_PREFSRC, ipaddress.ip_address(src).packed)
        if metric is not None:
            request += nc.attr(nc.RTA_PRIORITY, nc.U32.pack(metric))
        if dev:
            index = self.ifindex(dev)
            if index is None:
                raise NoSuchInterface(dev)
            request += nc.attr(nc.RTA_OIF, nc.U32.pack(index))
        self._request(kind, flags, request)

    def add_route(self, to: str, via: str | None = None, dev: str | None = None,
                  table: int | None = None, metric: int | None = None,
                  src: str | None = None) -> bool:
        """Adds a unicast route to `to` (a network, "default" not accepted: say 0.0.0.0/0);
        True if added, False if the same route was already there."""
        try:
            self._route(nc.RTM_NEWROUTE, nc.NLM_F_CREATE | nc.NLM_F_EXCL, to, via, dev, table,
                        metric, src)
        except FileExistsError:
            return False
        return True

    def del_route(self, to: str, via: str | None = None, dev: str | None = None,
                  table: int | None = None, metric: int | None = None) -> bool:
        """Removes the route; True if removed, False if there was none (or dev is gone)."""
        try:
            self._route(nc.RTM_DELROUTE, 0, to, via, dev, table, metric, None)
        except OSError as e:
            if e.errno in (errno.ESRCH, errno.ENOENT, errno.ENODEV):
                return False
            raise
        return True

    def _rule(self, kind: int, flags: int, table: int, src: str | None, dst: str | None,
              priority: int | None, family: int | None) -> None:
        src_net = ipaddress.ip_network(src, strict=False) if src else None
        dst_net = ipaddress.ip_network(dst, strict=False) if dst else None
        version = (src_net or dst_net).version if (src_net or dst_net) else (family or 4)
        request = nc.FIBRULEHDR.pack(socket.AF_INET if version == 4 else socket.AF_INET6,
                                     dst_net.prefixlen if dst_net else 0,
                                     src_net.prefixlen if src_net else 0, 0,
                                     table if table < 256 else 0, 0, 0, nc.FR_ACT_TO_TBL, 0)
        request += nc.attr(nc.FRA_TABLE, nc.U32.pack(table))
        if src_net:
            request += nc.attr(nc.FRA_SRC, src_net.network_address.packed)
        if dst_net:
            request += nc.attr(nc.FRA_DST, dst_net.network_address.packed)
        if priority is not None:
            request += nc.attr(nc.FRA_PRIORITY, nc.U32.pack(priority))
        self._request(kind, flags, request)

    def add_rule(self, table: int, src: str | None = None, dst: str | None = None,
                 priority: int | None = None, family: int | None = None) -> bool:
        """Adds a policy rule "from src to dst lookup table" (family 4 or 6 when neither src
        nor dst says); True if added, False if the same rule was already there."""
        try:
            self._rule(nc.RTM_NEWRULE, nc.NLM_F_CREATE | nc.NLM_F_EXCL, table, src, dst,
                       priority, family)
        except FileExistsError:
            return False
        return True

    def del_rule(self, table: int, src: str | None = None, dst: str | None = None,
                 priority: int | None = None, family: int | None = None) -> bool:
        """Removes the rule; True if removed, False if there was none."""
        try:
            self._rule(nc.RTM_DELRULE, 0, table, src, dst, priority, family)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ESRCH):
                return False
            raise
        return True
