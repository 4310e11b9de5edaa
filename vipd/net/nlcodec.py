"""rtnetlink message codec: headers, route attributes, kernel errors (stdlib only).

Shared by the request side (netlink.py) and the event side (nlmonitor.py). Constants carry the
names of <linux/netlink.h>, <linux/rtnetlink.h>, <linux/if_link.h>, <linux/if_addr.h>,
<linux/fib_rules.h>.
"""
from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator

IFF_UP = 0x1
IFF_RUNNING = 0x40
IFF_LOWER_UP = 0x10000
USABLE = IFF_UP | IFF_RUNNING | IFF_LOWER_UP

IFA_F_SECONDARY = 0x01
IFA_F_NODAD = 0x02
IFA_F_DADFAILED = 0x08
IFA_F_TENTATIVE = 0x40
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK = 0, 253

NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK, NLM_F_DUMP_INTR = 0x1, 0x2, 0x4, 0x10
NLM_F_DUMP = 0x300
NLM_F_EXCL, NLM_F_CREATE = 0x200, 0x400
NLM_F_CAPPED, NLM_F_ACK_TLVS = 0x100, 0x200   # flags of an NLMSG_ERROR reply
NLMSGERR_ATTR_MSG = 1
SOL_NETLINK = 270
NETLINK_CAP_ACK, NETLINK_EXT_ACK, NETLINK_GET_STRICT_CHK = 10, 11, 12
RTMGRP_LINK, RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR = 0x1, 0x10, 0x100
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE = 24, 25
RTM_NEWRULE, RTM_DELRULE = 32, 33
IFLA_ADDRESS, IFLA_IFNAME, IFLA_LINK, IFLA_LINKINFO = 1, 3, 5, 18
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
IFLA_MACVLAN_MODE = 1
MACVLAN_MODE_PRIVATE, MACVLAN_MODE_VEPA, MACVLAN_MODE_BRIDGE = 1, 2, 4
IFA_ADDRESS, IFA_LOCAL, IFA_LABEL, IFA_FLAGS = 1, 2, 3, 8
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_PREFSRC, RTA_TABLE = 1, 4, 5, 6, 7, 15
FRA_DST, FRA_SRC, FRA_PRIORITY, FRA_TABLE = 1, 2, 6, 15
RTN_UNICAST, RTPROT_STATIC, RT_TABLE_MAIN, RT_TABLE_UNSPEC = 1, 4, 254, 0
FR_ACT_TO_TBL = 1
NLA_F_NESTED = 0x8000
IFNAMSIZ = 16

NLMSGHDR = struct.Struct("=IHHII")    # len, type, flags, seq, pid
NLMSGERR = struct.Struct("=i")        # -errno, followed by the request's header
IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
IFADDRMSG = struct.Struct("=BBBBI")   # family, prefixlen, flags, scope, index
RTMSG = struct.Struct("=BBBBBBBBI")   # family, dst_len, src_len, tos, table, protocol, scope,
                                      # type, flags
FIBRULEHDR = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, res1, res2,
                                          # action, flags
RTATTR = struct.Struct("=HH")         # len, type
U32 = struct.Struct("=I")
NLA_TYPE_MASK = 0x3FFF                # without NLA_F_NESTED / NLA_F_NET_BYTEORDER
BUFSIZE = 65536       # larger than any one datagram the kernel sends for links or addresses


def flags_usable(ifi_flags: int) -> bool:
    """Usable means IFF_UP (administratively up), IFF_LOWER_UP (carrier) and IFF_RUNNING
    (operstate UP or UNKNOWN), the same test keepalived applies."""
    return ifi_flags & USABLE == USABLE


def align4(n: int) -> int:
    return (n + 3) & ~3


def attr(kind: int, payload: bytes) -> bytes:
    length = RTATTR.size + len(payload)
    return RTATTR.pack(length, kind) + payload + bytes(align4(length) - length)


def attrs(data, offset: int, end: int) -> dict[int, bytes]:
    """The route attributes in data[offset:end] by type (the first of each type wins)."""
    found: dict[int, bytes] = {}
    while offset + RTATTR.size <= end:
        length, kind = RTATTR.unpack_from(data, offset)
        if length < RTATTR.size or offset + length > end:
            break
        found.setdefault(kind & NLA_TYPE_MASK, bytes(data[offset + RTATTR.size:offset + length]))
        offset += align4(length)
    return found


def string(raw: bytes | None) -> str | None:
    return None if raw is None else raw.split(b"\0", 1)[0].decode(errors="replace")


def messages(data) -> Iterator[tuple[int, int, int, int, int]]:
    """(type, flags, seq, body offset, end) of each netlink message in one datagram."""
    offset = 0
    while offset + NLMSGHDR.size <= len(data):
        length, kind, flags, seq, _pid = NLMSGHDR.unpack_from(data, offset)
        if length < NLMSGHDR.size:
            return
        yield kind, flags, seq, offset + NLMSGHDR.size, min(offset + length, len(data))
        offset += align4(length)


def kernel_error(data, flags: int, body: int, end: int) -> OSError | None:
    """The error an NLMSG_ERROR reply reports, None for an ack. With extended acks the kernel
    says why (e.g. "Invalid prefix for given prefix length"); that goes into the message."""
    code = -NLMSGERR.unpack_from(data, body)[0]
    if code == 0:
        return None
    reason = os.strerror(code)
    if flags & NLM_F_ACK_TLVS:
        request = body + NLMSGERR.size
        tlvs = request + (NLMSGHDR.size if flags & NLM_F_CAPPED
                          else NLMSGHDR.unpack_from(data, request)[0])
        detail = string(attrs(data, tlvs, end).get(NLMSGERR_ATTR_MSG))
        if detail:
            reason = f"{reason} ({detail})"
    return OSError(code, reason)


def rtnl_socket(groups: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                         socket.NETLINK_ROUTE)
    try:
        sock.bind((0, groups))
    except BaseException:
        sock.close()
        raise
    return sock
