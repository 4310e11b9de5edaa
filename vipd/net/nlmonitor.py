"""Link and address events from the kernel's rtnetlink multicast groups.

A non-blocking socket the event loop reads when it is readable. Each read returns the events
received since the last one, oldest first: LinkEvent for a link that appeared, changed or went
away, AddrEvent for an address added or removed (IPv4 and IPv6), and Overflow when the socket
overflowed (ENOBUFS) and events were lost. After an overflow the monitor asks the kernel for every
link, so link state is reported again; addresses the caller must read afresh itself.
"""
from __future__ import annotations

import errno
import socket
from typing import NamedTuple

from vipd.net import nlcodec as nc

_RCVBUF = 1 << 20     # room for a burst of events (many VLANs flapping, 200 VIPs) before ENOBUFS
_DUMP_LINKS = (nc.NLMSGHDR.pack(nc.NLMSGHDR.size + nc.IFINFOMSG.size, nc.RTM_GETLINK,
                                nc.NLM_F_REQUEST | nc.NLM_F_DUMP, 1, 0)
               + nc.IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0))


class LinkEvent(NamedTuple):
    name: str
    usable: bool       # see nlcodec.flags_usable; False for a deleted link
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


class NetMonitor:
    def __init__(self, rcvbuf: int = _RCVBUF, addresses: bool = True):
        groups = nc.RTMGRP_LINK
        if addresses:
            groups |= nc.RTMGRP_IPV4_IFADDR | nc.RTMGRP_IPV6_IFADDR
        self._sock = nc.rtnl_socket(groups)
        try:
            self._sock.setblocking(False)
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        except BaseException:
            self._sock.close()
            raise
        self._buf = bytearray(nc.BUFSIZE)
        self._view = memoryview(self._buf)

    def fileno(self) -> int:
        return self._sock.fileno()

    def read(self) -> list:
        """Every event received since the last call, oldest first. Never blocks."""
        events: list = []
        while True:
            try:
                n = self._sock.recv_into(self._buf)
            except (BlockingIOError, InterruptedError):
                return events
            except OSError as e:
                if e.errno != errno.ENOBUFS:
                    raise
                events.append(Overflow())
                self._sock.send(_DUMP_LINKS)
                continue
            self._parse(self._view[:n], events)

    @staticmethod
    def _parse(data: memoryview, events: list) -> None:
        for kind, _flags, _seq, body, end in nc.messages(data):
            if kind in (nc.RTM_NEWLINK, nc.RTM_DELLINK) and body + nc.IFINFOMSG.size <= end:
                _fam, _type, index, flags, _change = nc.IFINFOMSG.unpack_from(data, body)
                name = nc.string(nc.attrs(data, body + nc.IFINFOMSG.size, end).get(nc.IFLA_IFNAME))
                if name is not None:
                    deleted = kind == nc.RTM_DELLINK
                    events.append(LinkEvent(name, not deleted and nc.flags_usable(flags), index,
                                            deleted))
            elif kind in (nc.RTM_NEWADDR, nc.RTM_DELADDR) and body + nc.IFADDRMSG.size <= end:
                family, prefixlen, flags, scope, index = nc.IFADDRMSG.unpack_from(data, body)
                at = nc.attrs(data, body + nc.IFADDRMSG.size, end)
                raw = at.get(nc.IFA_LOCAL) or at.get(nc.IFA_ADDRESS)
                if raw is None or family not in (socket.AF_INET, socket.AF_INET6):
                    continue
                if nc.IFA_FLAGS in at:
                    flags = nc.U32.unpack(at[nc.IFA_FLAGS])[0]
                events.append(AddrEvent(index, family, socket.inet_ntop(family, raw), prefixlen,
                                        flags, scope, kind == nc.RTM_DELADDR))

    def close(self) -> None:
        self._sock.close()
