"""The VRRP raw socket: protocol 112 on one interface and one address family.

One socket serves every VRID on an interface; the driver demultiplexes by VRID. The socket is
non-blocking and exposes fileno() so the asyncio loop can add_reader() it. Buffers and ancillary
sizes are computed once, so receiving a packet allocates only what is handed back to the caller.

Kernel behaviour this relies on (verified by tests/lab/test_net.py):
- An AF_INET SOCK_RAW socket with protocol 112 receives the whole IPv4 datagram, header included,
  for unicast and multicast alike. Multicast to 224.0.0.18 reaches it only while the interface is a
  member of the group (join_multicast()); a Linux bridge floods 224.0.0.x to every port regardless
  of IGMP snooping, so nothing else is needed on bridge-attached veths.
- An AF_INET6 raw socket receives the VRRP payload only; the destination comes from IPV6_PKTINFO and
  the hop limit from IPV6_HOPLIMIT ancillary data.
- IPv6: the VRRP checksum is not offloaded (no IPV6_CHECKSUM) because the kernel would then drop
  bad-checksum packets before we could count them; the codec computes it, so for IPv6 the caller
  must know (and pass) the source address it sends from.
"""
from __future__ import annotations

import errno
import logging
import socket
import struct
from collections.abc import Callable, Iterator

from vipd.core.packet import MalformedPacket, split_ipv4

log = logging.getLogger("vipd")

IPPROTO_VRRP = 112
VRRP_GROUP4 = "224.0.0.18"
VRRP_GROUP6 = "ff02::12"
VRRP_TTL = 255  # RFC 5798 5.1.1.3 / 5.1.2.3: sent with TTL / hop limit 255, checked on receive

# Missing from Python's socket module on 3.11; values from linux/in.h.
IP_PKTINFO = 8

_RECV_BUFSIZE = 65535  # a whole IPv4 datagram: a truncated advert would fail its length check
_IN_PKTINFO = struct.Struct("=i4s4s")    # ipi_ifindex, ipi_spec_dst, ipi_addr
_IN6_PKTINFO = struct.Struct("=16si")    # ipi6_addr, ipi6_ifindex
_IP_MREQN = struct.Struct("=4s4si")      # imr_multiaddr, imr_address, imr_ifindex
_IPV6_MREQ = struct.Struct("=16si")      # ipv6mr_multiaddr, ipv6mr_interface
_INT = struct.Struct("=i")
_ANY4 = bytes(4)
_ANC6_SIZE = socket.CMSG_SPACE(_IN6_PKTINFO.size) + socket.CMSG_SPACE(_INT.size)


SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
RCVBUF = 4 << 20


class VrrpSocket:
    """Sends and receives VRRP on one interface for one family (4 or 6).

    send() raises OSError to the caller; what Linux 6.x returns:
      ENETUNREACH      IPv4, and IPv6 without src: the interface is administratively down or
                       there is no route to a unicast peer; IPv4: src is not an address of ours
      EINVAL           IPv6 with src: src is not a usable address of the interface -- not
                       assigned, still tentative (DAD), or gone because the interface went down
                       (IPv6 drops its addresses on admin down and re-runs DAD after carrier loss)
      BlockingIOError  (EAGAIN) the socket send buffer is full; the advert is lost
      ENOBUFS          the interface queue is full
      ENODEV / ENXIO   the interface was deleted; make a new socket
    Without carrier IPv4 sends succeed and the frame is dropped by the device.
    """

    def __init__(self, ifname: str, family: int):
        if family not in (4, 6):
            raise ValueError(f"family must be 4 or 6, not {family!r}")
        self.ifname = ifname
        self.family = family
        self.ifindex = socket.if_nametoindex(ifname)
        af = socket.AF_INET if family == 4 else socket.AF_INET6
        self._sock = socket.socket(af, socket.SOCK_RAW | socket.SOCK_CLOEXEC, IPPROTO_VRRP)
        try:
            self._setup(ifname)
        except BaseException:
            self._sock.close()
            raise
        self._buf = bytearray(_RECV_BUFSIZE)
        self._view = memoryview(self._buf)
        self._joined = False
        self._src_cmsg: dict[str, list[tuple[int, int, bytes]]] = {}

    def _setup(self, ifname: str) -> None:
        s = self._sock
        s.setblocking(False)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
        # One socket carries every VRID of the interface: 200 instances at 0.1 s are 2000
        # datagrams/s, and a busy moment (start-up, an election) must not overflow the default
        # ~200 KB queue and drop adverts, which would cause spurious takeovers.
        try:
            s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
        except OSError:        # not root (tests): the ordinary limit
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        if self.family == 4:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, VRRP_TTL)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, VRRP_TTL)
            # Our own adverts must not come back to us as if from a peer.
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                         _IP_MREQN.pack(_ANY4, _ANY4, self.ifindex))
            self._group = socket.inet_pton(socket.AF_INET, VRRP_GROUP4)
        else:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, VRRP_TTL)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, VRRP_TTL)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, self.ifindex)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
            self._group = socket.inet_pton(socket.AF_INET6, VRRP_GROUP6)

    def fileno(self) -> int:
        return self._sock.fileno()

    # ---- multicast membership --------------------------------------------------------------

    def _membership(self, join: bool) -> None:
        if self.family == 4:
            opt = socket.IP_ADD_MEMBERSHIP if join else socket.IP_DROP_MEMBERSHIP
            self._sock.setsockopt(socket.IPPROTO_IP, opt,
                                  _IP_MREQN.pack(self._group, _ANY4, self.ifindex))
        else:
            opt = socket.IPV6_JOIN_GROUP if join else socket.IPV6_LEAVE_GROUP
            self._sock.setsockopt(socket.IPPROTO_IPV6, opt,
                                  _IPV6_MREQ.pack(self._group, self.ifindex))

    def join_multicast(self) -> None:
        """Joins 224.0.0.18 / ff02::12 on this interface; without it multicast adverts are not
        delivered to us at all. Idempotent."""
        if self._joined:
            return
        try:
            self._membership(True)
        except OSError as e:
            if e.errno != errno.EADDRINUSE:  # already a member through this socket
                raise
        self._joined = True

    def leave_multicast(self) -> None:
        if not self._joined:
            return
        try:
            self._membership(False)
        except OSError as e:
            # The kernel already dropped the membership (e.g. the interface was removed).
            if e.errno not in (errno.EADDRNOTAVAIL, errno.ENODEV, errno.EINVAL):
                raise
        self._joined = False

    # ---- send ----------------------------------------------------------------------------

    def _pktinfo(self, src: str) -> list[tuple[int, int, bytes]]:
        # Per-message source selection lets instances with different unicast_src share this
        # socket (RFC 5798 5.1.1.1 / 5.1.2.1: the source is the sender's primary / link-local).
        cmsg = self._src_cmsg.get(src)
        if cmsg is None:
            if self.family == 4:
                data = _IN_PKTINFO.pack(self.ifindex, socket.inet_pton(socket.AF_INET, src), _ANY4)
                cmsg = [(socket.IPPROTO_IP, IP_PKTINFO, data)]
            else:
                data = _IN6_PKTINFO.pack(socket.inet_pton(socket.AF_INET6, src), self.ifindex)
                cmsg = [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, data)]
            self._src_cmsg[src] = cmsg
        return cmsg

    def send(self, payload: bytes, dst: str, src: str | None = None) -> None:
        """Sends one VRRP message to dst (the group or a unicast peer). src picks the source
        address (IPv6 multicast: the interface's link-local address); None lets the kernel pick.
        Raises OSError (see the class docstring)."""
        addr = (dst, 0) if self.family == 4 else (dst, 0, 0, self.ifindex)
        if src is None:
            self._sock.sendto(payload, addr)
        else:
            self._sock.sendmsg((payload,), self._pktinfo(src), 0, addr)

    # ---- receive -------------------------------------------------------------------------

    def recv(self) -> tuple[str, str, int, bytes] | None:
        """Returns (src, dst, ttl_or_hop_limit, vrrp_payload) of the next datagram, or None when
        there is nothing to read. Everything is returned, our own unicast included: the caller
        decides what to discard. IPv4: MalformedPacket propagates from split_ipv4."""
        try:
            if self.family == 4:
                n = self._sock.recv_into(self._buf)
            else:
                n, anc, _flags, addr = self._sock.recvmsg_into((self._buf,), _ANC6_SIZE)
        except (BlockingIOError, InterruptedError):
            return None
        if self.family == 4:
            return split_ipv4(bytes(self._view[:n]))
        dst, hop_limit = "", 0  # absent only on ancillary truncation: fails the TTL check
        for level, kind, data in anc:
            if level != socket.IPPROTO_IPV6:
                continue
            if kind == socket.IPV6_PKTINFO:
                dst = socket.inet_ntop(socket.AF_INET6, data[:16])
            elif kind == socket.IPV6_HOPLIMIT:
                hop_limit = _INT.unpack_from(data)[0]
        src = addr[0].partition("%")[0]  # Python appends %ifname to link-local addresses
        return src, dst, hop_limit, bytes(self._view[:n])

    def recv_batch(self, limit: int,
                   on_error: Callable[[str], None]) -> Iterator[tuple[str, str, int, bytes]]:
        """Up to limit waiting datagrams as recv() returns them, so other work gets a turn. An IPv4
        datagram that cannot be split is reported to on_error by its reason and skipped; a socket
        error is reported as "socket_error" and ends the batch."""
        for _ in range(limit):
            try:
                got = self.recv()
            except MalformedPacket as e:
                on_error(e.reason.value)
                continue
            except OSError as e:
                on_error("socket_error")
                log.debug("recv on %s: %s", self.ifname, e)
                return
            if got is None:
                return
            yield got

    def close(self) -> None:
        self._sock.close()  # the kernel drops our memberships with the socket
        self._joined = False
