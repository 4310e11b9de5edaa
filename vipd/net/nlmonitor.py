"""Link and address events from the kernel's rtnetlink multicast groups, through pyroute2.

A task on the event loop reads pyroute2's event socket and hands each datagram's events, oldest
first, to ``on_events(list)``: LinkEvent for a link that appeared, changed or went away,
AddrEvent for an address added or removed (IPv4 and IPv6), and Overflow when events were lost.

Once its receive buffer has overflowed (ENOBUFS), a pyroute2 socket raises that error on every
later read, forever (pyroute2 0.9.7): the monitor then closes it, opens a new one and reports
Overflow, and the caller reads afresh whatever it cached from earlier events. The new socket is
opened in the network namespace the process is in (for the daemon, always its own).
"""
from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable
from typing import NamedTuple

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR, RTMGRP_LINK

from vipd.net.netlink import addr_of, flags_usable

log = logging.getLogger("vipd")
_RCVBUF = 1 << 20     # room for a burst of events (many VLANs flapping, 200 VIPs) before ENOBUFS
_REOPEN_DELAY = 1.0   # seconds between attempts when a new socket cannot be opened (EMFILE...)


class LinkEvent(NamedTuple):
    name: str
    usable: bool       # see netlink.flags_usable; False for a deleted link
    index: int
    deleted: bool      # RTM_DELLINK: the interface is gone (its index will not come back)


class AddrEvent(NamedTuple):
    index: int
    family: int        # socket.AF_INET or AF_INET6
    address: str
    prefixlen: int
    flags: int         # IFA_F_* (IFA_FLAGS when present)
    scope: int
    deleted: bool


class Overflow(NamedTuple):
    """Events were lost: anything cached from earlier events must be read again."""


def event_of(msg) -> LinkEvent | AddrEvent | None:
    """vipd's event for one pyroute2 message; None for anything else."""
    kind = msg.get("event")
    if kind in ("RTM_NEWLINK", "RTM_DELLINK"):
        name = msg.get("IFLA_IFNAME")
        if name is None:
            return None
        deleted = kind == "RTM_DELLINK"
        return LinkEvent(name, not deleted and flags_usable(msg["flags"]), msg["index"], deleted)
    if kind in ("RTM_NEWADDR", "RTM_DELADDR") and msg["family"] in (socket.AF_INET,
                                                                   socket.AF_INET6):
        addr = addr_of(msg)
        if addr is None:
            return None
        return AddrEvent(msg["index"], addr.family, addr.address, addr.prefixlen, addr.flags,
                         addr.scope, kind == "RTM_DELADDR")
    return None


class NetMonitor:
    def __init__(self, on_events: Callable[[list], None], rcvbuf: int = _RCVBUF,
                 addresses: bool = True) -> None:
        self._on_events = on_events
        self.rcvbuf = rcvbuf     # of the sockets opened from now on
        self._groups = RTMGRP_LINK | (RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR if addresses else 0)
        self._sock: AsyncIPRoute | None = None
        self._task: asyncio.Task | None = None
        self.reopened = 0      # how many times an overflowed socket was replaced

    async def start(self) -> None:
        """Subscribes now (events from this moment on are delivered) and starts reading."""
        self._sock = await self._open()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _open(self) -> AsyncIPRoute:
        sock = AsyncIPRoute(rcvbuf=self.rcvbuf)
        try:
            await sock.bind(groups=self._groups)
        except BaseException:
            sock.close()
            raise
        return sock

    async def _run(self) -> None:
        while True:
            try:
                msgs = [m async for m in self._sock.get()]
                if not msgs:     # pyroute2's end-of-stream: the socket was closed under us
                    raise OSError(errno.ECONNRESET, "event socket closed")
                events = [ev for ev in map(event_of, msgs) if ev is not None]
            except (OSError, NetlinkError) as e:
                log.warning("netlink events: %s; opening a new event socket", e)
                await self._reopen()
                events = [Overflow()]
            if events:
                self._on_events(events)

    async def _reopen(self) -> None:
        self._sock.close()
        while True:
            try:
                self._sock = await self._open()
                self.reopened += 1
                return
            except OSError as e:
                log.error("netlink events: cannot open a new socket: %s", e)
                await asyncio.sleep(_REOPEN_DELAY)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._sock is not None:
            self._sock.close()
