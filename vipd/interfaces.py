"""The driver's interface registry: what vipd knows about each kernel interface it uses.

Per interface name: the ifindex it had when we last looked, whether it is usable (link state), the
VRRP raw sockets (one per address family, demultiplexed by VRID) and the AF_PACKET announcer. The
driver asks the registry for these instead of keeping them itself, so that when an interface is
deleted and re-created (a new ifindex) there is one place that rebuilds them.

The registry owns the netlink request socket and the link monitor; it tells the driver about a
link change through ``on_link(ifname, up)`` and leaves deciding what that means for an instance
(fault, priority) to the driver.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from vipd.net.announce import Announcer
from vipd.net.netlink import LinkMonitor, Netlink
from vipd.net.rawsock import VrrpSocket

log = logging.getLogger("vipd")


class Interface:
    """One interface by name; its kernel objects are made on first use."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.up: bool | None = None                   # None: not looked at yet
        self.socks: dict[int, VrrpSocket] = {}        # family -> socket
        self.demux: dict[int, dict[int, object]] = {}  # family -> VRID -> Runtime
        self.announcer: Announcer | None = None


class InterfaceRegistry:
    """Interfaces by name, and the netlink sockets that look at and change them.

    on_readable(sock, by_vrid, family) is called by the loop when a VRRP socket has data;
    on_link(ifname, up) when a link's usability changed.
    """

    def __init__(self, loop, on_readable: Callable, on_link: Callable[[str, bool], None]) -> None:
        self.loop = loop
        self._on_readable = on_readable
        self._on_link_change = on_link
        self.ifaces: dict[str, Interface] = {}
        self.nl = Netlink()
        try:
            self.linkmon = LinkMonitor()
        except BaseException:
            self.nl.close()
            raise
        loop.add_reader(self.linkmon.fileno(), self._on_link_event)

    def close(self) -> None:
        for iface in self.ifaces.values():
            self._close_kernel_objects(iface)
        self.loop.remove_reader(self.linkmon.fileno())
        self.linkmon.close()
        self.nl.close()

    def _close_kernel_objects(self, iface: Interface) -> None:
        for sock in iface.socks.values():
            self.loop.remove_reader(sock.fileno())
            sock.close()
        iface.socks.clear()
        if iface.announcer is not None:
            iface.announcer.close()
            iface.announcer = None

    def get(self, ifname: str) -> Interface:
        iface = self.ifaces.get(ifname)
        if iface is None:
            iface = self.ifaces[ifname] = Interface(ifname)
        return iface

    # ---- link state ---------------------------------------------------------------------------

    def link_up(self, ifname: str) -> bool:
        """Whether ifname is usable, as last reported; asks the kernel the first time."""
        iface = self.get(ifname)
        if iface.up is None:
            iface.up = self.nl.link_up(ifname)
        return iface.up

    def _on_link_event(self) -> None:
        try:
            changes = self.linkmon.read()
        except OSError as e:
            log.warning("link monitor: %s", e)
            return
        for ifname, up in changes:
            iface = self.get(ifname)
            if iface.up == up:
                continue
            iface.up = up
            log.info("link %s %s", ifname, "up" if up else "down")
            self._on_link_change(ifname, up)

    # ---- VRRP sockets -------------------------------------------------------------------------

    def attach(self, rt) -> None:
        """Makes rt's VRID reachable on its interface and family: opens the socket on first use."""
        iface = self.get(rt.cfg.interface)
        family = rt.cfg.family
        sock = iface.socks.get(family)
        if sock is None:
            sock = iface.socks[family] = VrrpSocket(iface.name, family)
            iface.demux[family] = {}
            self.loop.add_reader(sock.fileno(), self._on_readable, sock, iface.demux[family],
                                 family)
        if rt.multicast:
            sock.join_multicast()
        iface.demux[family][rt.cfg.vrid] = rt

    def detach(self, rt) -> None:
        """Forgets rt's VRID; closes the socket when no instance uses it any more."""
        iface = self.get(rt.cfg.interface)
        family = rt.cfg.family
        by_vrid = iface.demux.get(family)
        if by_vrid is None:
            return
        by_vrid.pop(rt.cfg.vrid, None)
        if not by_vrid:
            del iface.demux[family]
            sock = iface.socks.pop(family)
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
        return self.nl.mac(ifname)

    # ---- addresses ----------------------------------------------------------------------------

    def source_address(self, cfg) -> str | None:
        """The address an instance's adverts go out from: unicast_src when configured, else the
        interface's primary IPv4 address (not a VIP) or its IPv6 link-local address."""
        if cfg.unicast_src is not None:
            return cfg.unicast_src
        if cfg.family == 4:
            return self.nl.primary_ipv4(cfg.interface, [str(v.ip) for v in cfg.vips])
        return self.nl.link_local6(cfg.interface)
