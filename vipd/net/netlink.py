"""Links, addresses, macvlan links, routes and rules through rtnetlink, on pyroute2's asyncio API.

vipd's own small netlink interface: the driver awaits these from its event loop, with no worker
thread. pyroute2 (0.9, ``AsyncIPRoute``) encodes and decodes; this module keeps its traps out of
the driver (docs/benchmarks.md, "pyroute2"):

- names are looked up with ``socket.if_nametoindex`` (one ioctl), never ``link_lookup`` or
  ``link('get')``: each of those leaves its ack in an unbounded queue (20,000 lookups: +33 MB);
- dumps are always read to their end, so nothing is left queued for a later request;
- pyroute2 requests have no timeout of their own: each one here is bounded by TIMEOUT and a
  kernel that does not answer is an OSError (ETIMEDOUT), never a hang;
- an answer that comes after its request timed out or was cancelled lands in a queue nobody
  reads: it is dropped before the next request (Netlink._drop_late_replies);
- pyroute2's NetlinkError becomes OSError with the kernel's errno and its extended-ack reason,
  so callers handle a refusal as any other system error.

Events (links and addresses changing) are read by nlmonitor.NetMonitor.
"""
from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import socket
from collections.abc import Iterable
from typing import NamedTuple

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError

TIMEOUT = 1.0         # seconds for any one request; the kernel answers in microseconds

IFF_UP, IFF_RUNNING, IFF_LOWER_UP = 0x1, 0x40, 0x10000
IFA_F_SECONDARY, IFA_F_NODAD, IFA_F_DADFAILED, IFA_F_TENTATIVE = 0x01, 0x02, 0x08, 0x40
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK = 0, 253
MACVLAN_MODE_PRIVATE = 1
_GONE = (errno.ENODEV, errno.ENOENT, errno.EADDRNOTAVAIL, errno.ESRCH)

Interface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


def flags_usable(ifi_flags: int) -> bool:
    """Up, running and with carrier (IFF_LOWER_UP): a link VRRP can use."""
    usable = IFF_UP | IFF_RUNNING | IFF_LOWER_UP
    return ifi_flags & usable == usable


class NoSuchInterface(OSError, LookupError):
    """An interface that does not exist (ENODEV). Both an OSError, so the driver's error handling
    around kernel calls covers an interface that vanished, and a LookupError, as callers of
    mac() expect."""

    def __init__(self, ifname: str):
        super().__init__(errno.ENODEV, os.strerror(errno.ENODEV), ifname)


def ifindex(ifname: str) -> int | None:
    """The interface's index, None if there is none by that name (an ioctl: see the module)."""
    try:
        return socket.if_nametoindex(ifname)
    except (OSError, ValueError):
        return None


def _index_of(ifname: str) -> int:
    index = ifindex(ifname)
    if index is None:
        raise NoSuchInterface(ifname)
    return index


class Addr(NamedTuple):
    family: int
    prefixlen: int
    flags: int     # IFA_FLAGS when present: it carries the flags that do not fit in the header
    scope: int
    address: str   # IFA_LOCAL (this host's end); IFA_ADDRESS is the peer's on point-to-point links


class Link(NamedTuple):
    index: int
    usable: bool   # see flags_usable
    mac: bytes | None


def addr_of(msg) -> Addr | None:
    """An Addr from pyroute2's ifaddrmsg (a dump reply or an event); None without an address."""
    address = msg.get("IFA_LOCAL") or msg.get("IFA_ADDRESS")
    if address is None:
        return None
    flags = msg.get("IFA_FLAGS")
    return Addr(msg["family"], msg["prefixlen"], msg["flags"] if flags is None else flags,
                msg["scope"], address)


def pick_link_local6(addrs: Iterable[Addr]) -> str | None:
    """The IPv6 link-local address, the source of IPv6 adverts (RFC 5798 5.1.2.1). None while it
    is still tentative (DAD running), failed DAD or is absent: it cannot be sent from yet."""
    for addr in addrs:
        if (addr.family == socket.AF_INET6 and addr.scope == RT_SCOPE_LINK
                and not addr.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED)):
            return addr.address
    return None


def pick_primary_ipv4(addrs: Iterable[Addr], exclude: Iterable[str | ipaddress.IPv4Address] = ()
                      ) -> str | None:
    """The address IPv4 adverts are sent from (RFC 3768 5.1.1.1): the first primary address that
    is not in exclude (the VIPs), in the kernel's order. When only secondary ones are left -- a
    VIP added before the host's own address in the same subnet -- the first of those that is not
    a VIP."""
    skip = {str(a) for a in exclude}     # the kernel and ipaddress both print IPv4 canonically
    fallback = None
    for addr in addrs:
        if addr.family != socket.AF_INET or addr.address in skip:
            continue
        if not addr.flags & IFA_F_SECONDARY:
            return addr.address
        fallback = fallback or addr.address
    return fallback


class Netlink:
    """rtnetlink requests as coroutines. Make it (or call ``open``) inside the event loop and the
    network namespace it is to act in: pyroute2 binds its socket to both on first use.

    Every coroutine raises OSError (with the kernel's errno, or ETIMEDOUT) when the kernel refuses
    or does not answer. Interface names are resolved afresh on each call, so a renamed or
    re-created interface is always the one acted on.
    """

    def __init__(self) -> None:
        self._ipr = AsyncIPRoute(ext_ack=True, strict_check=True)
        self.late_replies = 0   # answers that came after their request was given up on

    async def open(self) -> Netlink:
        """Opens the socket now (in this namespace) instead of on the first request."""
        await self._call(self._ipr.setup_endpoint())
        return self

    def close(self) -> None:
        self._ipr.close()

    def _drop_late_replies(self) -> None:
        """Empties pyroute2's queue 0 of answers to requests vipd gave up on.

        pyroute2 (0.9.7, netlink/nlsocket.py NetlinkRequest) registers a queue per request
        sequence number before sending (``prepare`` -> ``msg_queue.ensure_tag``) and releases it
        when the response generator ends, also when a timeout or cancel is thrown into it
        (``response``'s finally -> ``cleanup`` -> ``free_tag``). So the request's own queue never
        leaks; its answer does: a reply that arrives after that finds no queue for its sequence
        number and ``CoreMessageQueue.put_nowait`` files it under tag 0 (``root``), which only a
        reader of multicast groups empties. This socket joins none, so nothing reads it: every
        message there is an orphan. Emptying it before each request bounds it by the requests
        given up since the last one, instead of letting a sick kernel grow it for good."""
        queue = getattr(self._ipr.local, "msg_queue", None)   # made with the socket
        if queue is None:
            return
        root = queue.root
        while not root.empty():
            root.get_nowait()
            root.task_done()
            self.late_replies += 1

    async def _call(self, awaitable):
        self._drop_late_replies()
        try:
            return await asyncio.wait_for(awaitable, TIMEOUT)
        except NetlinkError as e:
            raise OSError(e.code, e.args[1] if len(e.args) > 1 else os.strerror(e.code)) from None
        except (asyncio.TimeoutError, TimeoutError):
            raise TimeoutError(errno.ETIMEDOUT, f"no answer from the kernel in {TIMEOUT} s"
                               ) from None

    async def _dump(self, kind: str, **kwarg) -> list:
        async def read():     # to the end: see the module
            return [m async for m in await getattr(self._ipr, kind)("dump", **kwarg)]
        return await self._call(read())

    # ---- links --------------------------------------------------------------------------------

    ifindex = staticmethod(ifindex)

    async def link(self, ifname: str) -> Link | None:
        """Index, usability and MAC of the link, None if there is none by that name."""
        index = ifindex(ifname)
        if index is None:
            return None
        try:
            links = await self._dump("link", index=index)
        except OSError as e:
            if e.errno in _GONE:
                return None
            raise
        for msg in links:
            if msg["index"] == index:
                mac = msg.get("IFLA_ADDRESS")
                return Link(index, flags_usable(msg["flags"]),
                            bytes.fromhex(mac.replace(":", "")) if mac else None)
        return None

    async def link_up(self, ifname: str) -> bool:
        """True when the interface exists, is administratively up and has carrier."""
        link = await self.link(ifname)
        return link is not None and link.usable

    async def mac(self, ifname: str) -> bytes:
        """The interface's hardware address; NoSuchInterface (a LookupError) if there is none."""
        link = await self.link(ifname)
        if link is None:
            raise NoSuchInterface(ifname)
        if not link.mac:
            raise OSError(errno.EADDRNOTAVAIL, "interface has no hardware address", ifname)
        return link.mac

    # ---- addresses ----------------------------------------------------------------------------

    async def addrs(self, ifname: str, family: int = socket.AF_UNSPEC) -> list[Addr]:
        """The interface's addresses of family in the kernel's order; none if it is missing."""
        index = ifindex(ifname)
        if index is None:
            return []
        try:
            dump = await self._dump("addr", index=index, family=family)
        except OSError as e:
            if e.errno in _GONE:   # gone since the lookup
                return []
            raise
        found = (addr_of(m) for m in dump if m["index"] == index)
        return [a for a in found if a is not None and family in (socket.AF_UNSPEC, a.family)]

    async def link_local6(self, ifname: str) -> str | None:
        """The interface's usable IPv6 link-local address (see pick_link_local6)."""
        return pick_link_local6(await self.addrs(ifname, socket.AF_INET6))

    async def primary_ipv4(self, ifname: str,
                           exclude: Iterable[str | ipaddress.IPv4Address] = ()) -> str | None:
        """The interface's IPv4 advert source (see pick_primary_ipv4)."""
        return pick_primary_ipv4(await self.addrs(ifname, socket.AF_INET), exclude)

    async def addresses(self, ifname: str) -> list[Interface]:
        return [ipaddress.ip_interface(f"{a.address}/{a.prefixlen}")
                for a in await self.addrs(ifname)]

    def _addr_args(self, ifname: str, iface: Interface) -> dict:
        # Local and address both, as `ip addr` sends them: with IFA_ADDRESS the kernel also
        # matches the prefix length on delete, so a VIP only removes its own exact entry.
        address = str(iface.ip)
        return {"index": _index_of(ifname), "address": address, "local": address,
                "prefixlen": iface.network.prefixlen,
                "family": socket.AF_INET if iface.version == 4 else socket.AF_INET6}

    async def add_vip(self, ifname: str, iface: Interface, label: str | None = None) -> bool:
        """Adds iface (address and prefix as given) to ifname; True if added, False if it was
        already there. IPv6 VIPs skip DAD (IFA_F_NODAD): they must be usable at once, and the
        backup that held the address a moment ago would make DAD fail. label (IPv4 only, at most
        15 bytes) should be "ifname:tag": the kernel takes any label, but `ip` and `ifconfig`
        treat others as foreign. NoSuchInterface if ifname is missing."""
        args = self._addr_args(ifname, iface)
        if iface.version == 6:
            args["flags"] = IFA_F_NODAD
        if label:
            args["label"] = label
        try:
            await self._call(self._ipr.addr("add", **args))
        except FileExistsError:   # EEXIST
            return False
        return True

    async def del_vip(self, ifname: str, iface: Interface) -> bool:
        """Removes iface from ifname; True if removed, False if it was not there (or the
        interface is gone)."""
        try:
            await self._call(self._ipr.addr("del", **self._addr_args(ifname, iface)))
        except OSError as e:
            if e.errno in _GONE:
                return False
            raise
        return True

    # ---- links: macvlan (VMAC) ----------------------------------------------------------------

    async def add_macvlan(self, name: str, parent: str, mac: bytes | None = None,
                          mode: int = MACVLAN_MODE_PRIVATE, up: bool = True) -> bool:
        """Creates macvlan `name` on `parent` (with this MAC, e.g. the VRRP virtual MAC
        00:00:5e:00:01:VRID, RFC 5798 7.3), administratively up unless told otherwise. True if
        made, False if a link of that name already exists. NoSuchInterface if parent is missing."""
        args = {"ifname": name, "kind": "macvlan", "link": _index_of(parent),
                "macvlan_mode": {1: "private", 2: "vepa", 4: "bridge", 8: "passthru"}[mode],
                "state": "up" if up else "down"}
        if mac is not None:
            args["address"] = mac.hex(":")
        try:
            await self._call(self._ipr.link("add", **args))
        except FileExistsError:
            return False
        return True

    async def del_link(self, name: str) -> bool:
        """Deletes link `name`; True if deleted, False if there was none."""
        index = ifindex(name)
        if index is None:
            return False
        try:
            await self._call(self._ipr.link("del", index=index))
        except OSError as e:
            if e.errno in _GONE:
                return False
            raise
        return True

    # ---- routes and policy rules --------------------------------------------------------------

    async def _change(self, kind: str, command: str, args: dict) -> bool:
        """One add or del: False where the kernel says it already exists (add) or is absent
        (del), as `ip` would report "File exists" / "No such process"."""
        try:
            await self._call(getattr(self._ipr, kind)(command, **args))
        except FileExistsError:
            if command == "add":
                return False
            raise
        except OSError as e:
            if command == "del" and e.errno in _GONE:
                return False
            raise
        return True

    def _route_args(self, adding: bool, to: str, via: str | None, dev: str | None,
                    table: int | None, metric: int | None, src: str | None) -> dict:
        dst = ipaddress.ip_network(to, strict=False)
        args: dict = {"family": socket.AF_INET if dst.version == 4 else socket.AF_INET6,
                      "dst_len": dst.prefixlen, "table": 254 if table is None else table}
        if dst.prefixlen:
            args["dst"] = str(dst.network_address)
        # A route with a gateway is universe scope, a device route link scope (as `ip route`
        # picks them); delete matches any scope (RT_SCOPE_NOWHERE) and protocol.
        args.update(scope=(RT_SCOPE_UNIVERSE if via else RT_SCOPE_LINK) if adding else 255,
                    proto="static" if adding else 0, type="unicast")
        if via:
            args["gateway"] = via
        if src:
            args["prefsrc"] = src
        if metric is not None:
            args["priority"] = metric
        if dev:
            args["oif"] = _index_of(dev)
        return args

    async def add_route(self, to: str, via: str | None = None, dev: str | None = None,
                        table: int | None = None, metric: int | None = None,
                        src: str | None = None) -> bool:
        """Adds a unicast route to `to` (a network, "default" not accepted: say 0.0.0.0/0);
        True if added, False if the same route was already there."""
        return await self._change("route", "add",
                                  self._route_args(True, to, via, dev, table, metric, src))

    async def del_route(self, to: str, via: str | None = None, dev: str | None = None,
                        table: int | None = None, metric: int | None = None) -> bool:
        """Removes the route; True if removed, False if there was none (or dev is gone)."""
        try:
            args = self._route_args(False, to, via, dev, table, metric, None)
        except NoSuchInterface:
            return False
        return await self._change("route", "del", args)

    @staticmethod
    def _rule_args(table: int, src: str | None, dst: str | None, priority: int | None,
                   family: int | None) -> dict:
        src_net = ipaddress.ip_network(src, strict=False) if src else None
        dst_net = ipaddress.ip_network(dst, strict=False) if dst else None
        version = (src_net or dst_net).version if (src_net or dst_net) else (family or 4)
        args: dict = {"table": table, "action": "FR_ACT_TO_TBL",
                      "family": socket.AF_INET if version == 4 else socket.AF_INET6}
        if src_net:
            args.update(src=str(src_net.network_address), src_len=src_net.prefixlen)
        if dst_net:
            args.update(dst=str(dst_net.network_address), dst_len=dst_net.prefixlen)
        if priority is not None:
            args["priority"] = priority
        return args

    async def add_rule(self, table: int, src: str | None = None, dst: str | None = None,
                       priority: int | None = None, family: int | None = None) -> bool:
        """Adds a policy rule "from src to dst lookup table" (family 4 or 6 when neither src
        nor dst says); True if added, False if the same rule was already there."""
        return await self._change("rule", "add",
                                  self._rule_args(table, src, dst, priority, family))

    async def del_rule(self, table: int, src: str | None = None, dst: str | None = None,
                       priority: int | None = None, family: int | None = None) -> bool:
        """Removes the rule; True if removed, False if there was none."""
        return await self._change("rule", "del",
                                  self._rule_args(table, src, dst, priority, family))
