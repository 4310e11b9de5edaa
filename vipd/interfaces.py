"""The driver's interface registry: what vipd knows about each kernel interface it uses.

Per interface name: its ifindex (None while it does not exist), whether it is usable (link
state), its addresses, the VRRP raw sockets (one per address family, demultiplexed by VRID) and
the AF_PACKET announcer. The driver asks the registry instead of keeping these itself.

Everything is watched, not read once: link and address events from the kernel keep the registry
current. An interface that is missing at start, deleted, or deleted and re-created (a new
ifindex) has its sockets, multicast membership and announcer closed and rebuilt here; the driver
hears ``on_change(ifname)`` and decides what that means for its instances (fault, source address,
a VIP to put back). Nothing about one interface touches another's objects.

Addresses are read with one dump per interface per burst of events (a master adding 200 VIPs
causes 200 events and one dump), so the cache is always the kernel's own order and flags.
"""
from __future__ import annotations

import logging
import socket
from collections.abc import Callable

from vipd.net.announce import Announcer
from vipd.net.netlink import Addr, Netlink, pick_link_local6, pick_primary_ipv4
from vipd.net.nlmonitor import AddrEvent, LinkEvent, NetMonitor, Overflow
from vipd.net.rawsock import VrrpSocket

log = logging.getLogger("vipd")


def _index(ifname: str) -> int | None:
    # if_nametoindex is one ioctl and leaves nothing queued on any netlink socket.
    try:
        return socket.if_nametoindex(ifname)
    except OSError:
        return None


class Interface:
    """One interface by name; its kernel objects are made while it exists and is used."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.index: int | None = None                 # None: the interface does not exist
        self.up = False
        self.addrs: list[Addr] = []
        self.addr_set: frozenset[str] = frozenset()
        self.mac: bytes | None = None
        self.socks: dict[int, VrrpSocket] = {}        # family -> socket
        self.demux: dict[int, dict[int, object]] = {}  # family -> VRID -> Runtime
        self.announcer: Announcer | None = None

    def set_addrs(self, addrs: list[Addr]) -> None:
        self.addrs = addrs
        self.addr_set = frozenset(a.address for a in addrs)


class InterfaceRegistry:
    """Interfaces by name, and the netlink sockets that look at and change them.

    on_readable(sock, by_vrid, family) is called by the loop when a VRRP socket has data;
    on_change(ifname) when an interface appeared, went, changed link state or addresses.
    """

    def __init__(self, loop, on_readable: Callable, on_change: Callable[[str], None]) -> None:
        self.loop = loop
        self._on_readable = on_readable
        self._on_change = on_change
        self.ifaces: dict[str, Interface] = {}
        self._by_index: dict[int, Interface] = {}
        self._dirty: set[str] = set()       # interfaces whose addresses must be read again
        self.nl = Netlink()
        try:
            self.monitor = NetMonitor()
        except BaseException:
            self.nl.close()
            raise
        loop.add_reader(self.monitor.fileno(), self._on_events)

    def close(self) -> None:
        for iface in self.ifaces.values():
            self._close_kernel_objects(iface)
        self.loop.remove_reader(self.monitor.fileno())
        self.monitor.close()
        self.nl.close()

    def get(self, ifname: str) -> Interface:
        """The interface by name, read from the kernel the first time it is asked for."""
        iface = self.ifaces.get(ifname)
        if iface is None:
            iface = self.ifaces[ifname] = Interface(ifname)
            self._read(iface)
        return iface

    # ---- reading the kernel -------------------------------------------------------------------

    def _read(self, iface: Interface) -> bool:
        """Reads index, link state, MAC and addresses afresh; True if anything changed. A new
        index (the interface was created or re-created) rebuilds its sockets and announcer."""
        before = (iface.index, iface.up, iface.addrs, iface.mac)
        index = _index(iface.name)
        if index != iface.index:
            self._set_index(iface, index)
        try:
            iface.up = index is not None and self.nl.link_up(iface.name)
            iface.set_addrs(self.nl.addrs(iface.name, socket.AF_UNSPEC) if index else [])
            iface.mac = self.nl.mac(iface.name) if index else None
        except OSError as e:     # deleted meanwhile: its DELLINK event follows
            log.debug("reading %s: %s", iface.name, e)
        return (iface.index, iface.up, iface.addrs, iface.mac) != before

    def _set_index(self, iface: Interface, index: int | None) -> None:
        if iface.index is not None:
            self._by_index.pop(iface.index, None)
            self._close_kernel_objects(iface)
            log.info("interface %s (index %d) %s", iface.name, iface.index,
                     "gone" if index is None else f"replaced by index {index}")
        elif index is not None and iface.demux:
            log.info("interface %s appeared (index %d)", iface.name, index)
        iface.index = index
        if index is None:
            iface.up, iface.mac = False, None
            iface.set_addrs([])
            return
        self._by_index[index] = iface
        for family in iface.demux:
            self._open_socket(iface, family)

    def _on_events(self) -> None:
        try:
            events = self.monitor.read()
        except OSError as e:
            log.warning("netlink monitor: %s", e)
            return
        changed: dict[str, None] = {}       # ordered set
        for ev in events:
            t = type(ev)
            if t is AddrEvent:
                iface = self._by_index.get(ev.index)
                if iface is not None:
                    self._dirty.add(iface.name)
            elif t is LinkEvent:
                self._link_event(ev, changed)
            elif t is Overflow:
                log.warning("netlink monitor overflowed: reading every interface again")
                self._dirty.update(self.ifaces)
        for name in sorted(self._dirty):
            if self._read(self.ifaces[name]):
                changed[name] = None
        self._dirty.clear()
        for name in changed:
            self._on_change(name)

    def _link_event(self, ev: LinkEvent, changed: dict) -> None:
        iface = self.ifaces.get(ev.name)
        old = self._by_index.get(ev.index)
        if old is not None and old is not iface and not ev.deleted:
            # Renamed: the index we knew under another name now has this name.
            self._set_index(old, None)
            changed[old.name] = None
        if iface is None:
            return
        if ev.deleted:
            if iface.index == ev.index:
                self._set_index(iface, None)
                changed[iface.name] = None
        elif ev.index != iface.index:
            self._dirty.add(iface.name)      # created or re-created: read it whole
        elif ev.usable != iface.up:
            iface.up = ev.usable
            log.info("link %s %s", iface.name, "up" if ev.usable else "down")
            changed[iface.name] = None

    # ---- link state ---------------------------------------------------------------------------

    def link_up(self, ifname: str) -> bool:
        """Whether ifname exists and is usable (up, carrier, running)."""
        return self.get(ifname).up

    def exists(self, ifname: str) -> bool:
        return self.get(ifname).index is not None

    # ---- VRRP sockets -------------------------------------------------------------------------

    def _open_socket(self, iface: Interface, family: int) -> None:
        by_vrid = iface.demux[family]
        try:
            sock = VrrpSocket(iface.name, family)
        except OSError as e:     # gone again already: its events will tell
            log.warning("cannot open the VRRP socket on %s: %s", iface.name, e)
            return
        try:
            if any(rt.multicast for rt in by_vrid.values()):
                sock.join_multicast()
        except OSError as e:
            log.warning("cannot join the VRRP group on %s: %s", iface.name, e)
        iface.socks[family] = sock
        self.loop.add_reader(sock.fileno(), self._on_readable, sock, by_vrid, family)

    def _close_kernel_objects(self, iface: Interface) -> None:
        for sock in iface.socks.values():
            self.loop.remove_reader(sock.fileno())
            sock.close()
        iface.socks.clear()
        if iface.announcer is not None:
            iface.announcer.close()
            iface.announcer = None

    def attach(self, rt) -> None:
        """Makes rt's VRID reachable on its interface and family: opens the socket on first use
        (or once the interface exists)."""
        iface = self.get(rt.vrrp_ifname)     # the instance's interface, or its VMAC
        family = rt.cfg.family
        by_vrid = iface.demux.setdefault(family, {})
        by_vrid[rt.cfg.vrid] = rt
        sock = iface.socks.get(family)
        if sock is None:
            if iface.index is not None:
                self._open_socket(iface, family)
        elif rt.multicast:
            sock.join_multicast()

    def detach(self, rt) -> None:
        """Forgets rt's VRID; closes the socket when no instance uses it any more."""
        iface = self.get(rt.vrrp_ifname)     # the instance's interface, or its VMAC
        family = rt.cfg.family
        by_vrid = iface.demux.get(family)
        if by_vrid is None:
            return
        by_vrid.pop(rt.cfg.vrid, None)
        if not by_vrid:
            del iface.demux[family]
            sock = iface.socks.pop(family, None)
            if sock is not None:
                self.loop.remove_reader(sock.fileno())
                sock.close()

    def socket(self, ifname: str, family: int) -> VrrpSocket | None:
        iface = self.ifaces.get(ifname)
        return None if iface is None else iface.socks.get(family)

    # ---- announcing ---------------------------------------------------------------------------

    def announcer(self, ifname: str) -> Announcer:
        """The AF_PACKET socket GARP/NA frames go out on; OSError if it cannot be made."""
        iface = self.get(ifname)
        if iface.announcer is None:
            iface.announcer = Announcer(ifname)
        return iface.announcer

    def mac(self, ifname: str) -> bytes:
        mac = self.get(ifname).mac
        return mac if mac is not None else self.nl.mac(ifname)

    # ---- addresses ----------------------------------------------------------------------------

    def source_address(self, cfg) -> str | None:
        """The address an instance's adverts go out from: unicast_src when configured, else the
        interface's primary IPv4 address (not a VIP) or its usable IPv6 link-local address; None
        while there is none (no address yet, tentative, deleted, no interface)."""
        if cfg.unicast_src is not None:
            return cfg.unicast_src
        addrs = self.get(cfg.interface).addrs
        if cfg.family == 4:
            return pick_primary_ipv4(addrs, [str(v.ip) for v in cfg.vips])
        return pick_link_local6(addrs)

    def has_address(self, ifname: str, address: str) -> bool:
        """Whether ifname carries address (canonical text, no prefix length)."""
        return address in self.get(ifname).addr_set
