"""The driver's interface registry: what vipd knows about each kernel interface it uses.

Per interface name: its ifindex (None while it does not exist), whether it is usable (link
state), its addresses, the VRRP raw sockets (one per address family, demultiplexed by VRID) and
the AF_PACKET announcer. The driver asks the registry instead of keeping these itself.

Everything is watched, not read once: link and address events from the kernel keep the registry
current. An interface that is missing at start, deleted, or deleted and re-created (a new
ifindex) has its sockets, multicast membership and announcer closed and rebuilt here; the driver
hears ``on_change(ifname)`` and decides what that means for its instances (fault, source address,
a VIP to put back). Nothing about one interface touches another's objects.

Addresses are read with a dump when an interface is first used, appears, is re-created or events
were lost (overflow); in between, each address event is applied to the cache as it comes. Reads
are netlink requests, awaited in one task; the driver reads every interface its config names
(``prime``) before it starts instances on them, so an instance starts from the kernel's facts.
"""
from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Callable, Iterable

from vipd.net.announce import Announcer
from vipd.net.netlink import (
    Addr, Netlink, NoSuchInterface, ifindex, pick_link_local6, pick_primary_ipv4,
)
from vipd.net.nlmonitor import AddrEvent, LinkEvent, NetMonitor, Overflow
from vipd.net.rawsock import VrrpSocket

log = logging.getLogger("vipd")
ADDR_SETTLE = 0.01    # seconds an address change waits for the rest of its burst


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
        self.reading = False        # a dump is in flight: events meanwhile call for another

    def set_addrs(self, addrs: list[Addr]) -> None:
        self.addrs = addrs
        self.addr_set = frozenset(a.address for a in addrs)

    def apply(self, ev: AddrEvent) -> bool:
        """One address event applied to the cache; True if it changed it. An address is its
        text and prefix length (the kernel keeps 198.51.100.1/24 and /25 apart). A changed one
        (DAD done, promoted to primary) keeps its place; a new one goes last, as the kernel
        lists it among its kind -- the picks above look at primaries and secondaries apart."""
        key = (ev.address, ev.prefixlen)
        at = next((i for i, a in enumerate(self.addrs) if (a.address, a.prefixlen) == key), None)
        addrs = list(self.addrs)
        if ev.deleted:
            if at is None:
                return False
            del addrs[at]
        else:
            new = Addr(ev.family, ev.prefixlen, ev.flags, ev.scope, ev.address)
            if at is None:
                addrs.append(new)
            elif addrs[at] == new:
                return False
            else:
                addrs[at] = new
        self.set_addrs(addrs)
        return True


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
        self._reader: asyncio.Task | None = None
        self._changed: dict[str, None] = {}   # ordered set: names to report
        self._report_at: asyncio.Handle | None = None
        self.nl = Netlink()
        self.monitor = NetMonitor(self._on_events)

    async def start(self) -> None:
        """Opens the netlink sockets; events from here on are seen."""
        await self.nl.open()
        await self.monitor.start()

    def close(self) -> None:
        for iface in self.ifaces.values():
            self._close_kernel_objects(iface)
        if self._reader is not None:
            self._reader.cancel()
        if self._report_at is not None:
            self._report_at.cancel()
        self.monitor.close()
        self.nl.close()

    async def prime(self, names: Iterable[str]) -> None:
        """Reads these interfaces from the kernel now, if not known yet."""
        for name in dict.fromkeys(names):
            if name not in self.ifaces:
                self.ifaces[name] = Interface(name)
                await self._read(self.ifaces[name])

    def get(self, ifname: str) -> Interface:
        """The interface by name. One not primed is read in the background: until then it has
        its index but no addresses, and ``on_change`` follows the read."""
        iface = self.ifaces.get(ifname)
        if iface is None:
            iface = self.ifaces[ifname] = Interface(ifname)
            self._set_index(iface, ifindex(ifname))
            self._read_later(ifname)
        return iface

    # ---- reading the kernel -------------------------------------------------------------------

    async def _read(self, iface: Interface) -> bool:
        """Reads index, link state, MAC and addresses afresh; True if anything changed. A new
        index (the interface was created or re-created) rebuilds its sockets and announcer."""
        before = (iface.index, iface.up, iface.addrs, iface.mac)
        index = ifindex(iface.name)
        if index != iface.index:
            self._set_index(iface, index)
        if index is not None:
            iface.reading = True
            try:
                link = await self.nl.link(iface.name)
                addrs = await self.nl.addrs(iface.name)
            except OSError as e:
                log.warning("reading %s: %s", iface.name, e)   # its events will ask again
            else:
                if link is not None and link.index == iface.index:
                    iface.up, iface.mac = link.usable, link.mac
                    iface.set_addrs(addrs)
                # else: deleted or re-created meanwhile, its events follow
            finally:
                iface.reading = False
        return (iface.index, iface.up, iface.addrs, iface.mac) != before

    def _read_later(self, name: str) -> None:
        self._dirty.add(name)
        if self._reader is None:
            self._reader = self.loop.create_task(self._read_dirty())

    async def _read_dirty(self) -> None:
        """Reads the interfaces events marked, a burst at a time, and reports those changed."""
        try:
            while self._dirty:
                names = sorted(self._dirty)
                self._dirty.clear()
                changed = [n for n in names if await self._read(self.ifaces[n])]
                for name in changed:
                    self._on_change(name)
        finally:
            self._reader = None

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

    def _on_events(self, events: list) -> None:
        changed: dict[str, None] = {}       # ordered set
        link_changed = False
        for ev in events:
            t = type(ev)
            if t is AddrEvent:
                # Applied as it comes: a master adding 200 VIPs must not cause 200 dumps of a
                # list 200 long. A dump in flight may predate the event: read once more after.
                iface = self._by_index.get(ev.index)
                if iface is not None:
                    if iface.apply(ev):
                        changed[iface.name] = None
                    if iface.reading:
                        self._read_later(iface.name)
            elif t is LinkEvent:
                n = len(changed)
                self._link_event(ev, changed)
                link_changed = link_changed or len(changed) > n
            elif t is Overflow:
                log.warning("netlink monitor overflowed: reading every interface again")
                for name in self.ifaces:
                    self._read_later(name)
        self._changed.update(changed)
        if not self._changed or (self._report_at is not None and not link_changed):
            return
        # A link change is reported on the next loop turn (after every datagram already
        # received); address changes wait ADDR_SETTLE for the rest of their burst: 100 masters
        # adding a VIP each, one await after another, are one report instead of 100 (each
        # report looks at every instance on the interface).
        if self._report_at is not None:
            self._report_at.cancel()
        self._report_at = (self.loop.call_soon(self._report) if link_changed
                           else self.loop.call_later(ADDR_SETTLE, self._report))

    def _report(self) -> None:
        self._report_at = None
        changed, self._changed = self._changed, {}
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
            self._read_later(iface.name)     # created or re-created: read it whole
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
        if by_vrid is None or by_vrid.get(rt.cfg.vrid) is not rt:
            return     # (an instance re-added under this VRID since: it is not ours to close)
        del by_vrid[rt.cfg.vrid]
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
        """The interface's MAC as last read; NoSuchInterface (a LookupError) while it is missing,
        OSError while it has none (not read yet, or a link without one)."""
        iface = self.get(ifname)
        if iface.mac is None:
            if iface.index is None:
                raise NoSuchInterface(ifname)
            raise OSError(errno.EADDRNOTAVAIL, "no hardware address known yet", ifname)
        return iface.mac

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
