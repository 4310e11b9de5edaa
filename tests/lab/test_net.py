"""vipd/net against real kernels: two network namespaces joined by a veth pair (or by a bridge in
a third namespace), built and torn down per test with names unique to this run.

Objects under test are created inside a namespace (setns) and keep working from the test process
after it returns there: sockets stay bound to the namespace they were made in.
"""
from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import ipaddress
import itertools
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6
from scapy.layers.l2 import ARP, Ether

from vipd.net.announce import Announcer, garp_frame, ipv6_forwarding, unsolicited_na_frame
from vipd.net.netlink import TIMEOUT, LinkMonitor, Netlink
from vipd.net.rawsock import VrrpSocket

pytestmark = pytest.mark.lab

A4, B4, A6, B6 = "198.51.100.1", "198.51.100.2", "2001:db8::1", "2001:db8::2"
GROUP4, GROUP6 = "224.0.0.18", "ff02::12"
VIP4, VIP6 = "198.51.100.100", "2001:db8::100"
WRONG_MAC = "02:00:00:00:00:99"
_seq = itertools.count()
_libc = ctypes.CDLL(None, use_errno=True)


def sh(*argv: str, input: str | None = None) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True, input=input).stdout


def _setns(fd: int) -> None:
    if _libc.setns(fd, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def in_ns(ns: str):
    """Runs the block with this thread in network namespace ns, then moves it back."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(f"/run/netns/{ns}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(home)


def wait_for(predicate, timeout: float = 3.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


def recv_wait(sock, timeout: float = 2.0):
    """The next datagram from a non-blocking VrrpSocket, waiting on its fileno like the driver."""
    deadline = time.monotonic() + timeout
    while True:
        got = sock.recv()
        left = deadline - time.monotonic()
        if got is not None or left <= 0:
            return got
        select.select([sock], [], [], left)


@dataclass
class Host:
    ns: str
    ifname: str

    def ip(self, *args: str) -> str:
        return sh("ip", "-n", self.ns, *args)

    def sysctl(self, *settings: str) -> None:
        sh("ip", "netns", "exec", self.ns, "sysctl", "-qw", *settings)

    def mac(self) -> bytes:
        link = json.loads(self.ip("-j", "link", "show", "dev", self.ifname))[0]
        return bytes.fromhex(link["address"].replace(":", ""))

    def neigh_mac(self, addr: str) -> str | None:
        entries = json.loads(self.ip("-j", "neigh", "show", addr, "dev", self.ifname))
        return entries[0].get("lladdr") if entries else None


@dataclass
class Lab:
    a: Host
    b: Host
    namespaces: list[str]
    opened: list = field(default_factory=list)

    def make(self, host: Host, factory, *args):
        """factory(*args) created inside host's namespace, closed at teardown."""
        with in_ns(host.ns):
            obj = factory(*args)
        self.opened.append(obj)
        return obj

    def link_local(self, host: Host) -> str:
        nl = self.make(host, Netlink)
        ll = wait_for(lambda: nl.link_local6(host.ifname))
        assert ll and ll.startswith("fe80:"), ll
        return ll


def build_lab(bridge: bool) -> tuple[Lab, Callable[[], None]]:
    tag = f"vn{os.getpid()}x{next(_seq)}"
    a, b = Host(f"{tag}a", f"{tag}a"), Host(f"{tag}b", f"{tag}b")
    lab = Lab(a, b, [a.ns, b.ns] + ([f"{tag}s"] if bridge else []))

    def teardown():
        for obj in lab.opened:
            obj.close()
        for ns in lab.namespaces:  # deleting a namespace deletes the links in it
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    try:
        for ns in lab.namespaces:
            sh("ip", "netns", "add", ns)
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0",
               "net.ipv6.conf.default.accept_dad=0")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        if bridge:
            switch = lab.namespaces[2]
            sh("ip", "-n", switch, "link", "add", "br0", "type", "bridge")
            for h in (a, b):
                sh("ip", "link", "add", h.ifname, "netns", h.ns, "type", "veth",
                   "peer", "name", f"p{h.ifname}", "netns", switch)
                sh("ip", "-n", switch, "link", "set", f"p{h.ifname}", "master", "br0", "up")
            sh("ip", "-n", switch, "link", "set", "br0", "up")
        else:
            sh("ip", "link", "add", a.ifname, "netns", a.ns, "type", "veth",
               "peer", "name", b.ifname, "netns", b.ns)
        for h, v4, v6 in ((a, A4, A6), (b, B4, B6)):
            h.ip("addr", "add", f"{v4}/24", "dev", h.ifname)
            h.ip("addr", "add", f"{v6}/64", "dev", h.ifname)
            h.ip("link", "set", h.ifname, "up")
        # IPv6 input drops everything (Ip6InNoRoutes) until addrconf has run on carrier-up, which
        # linkwatch may defer by up to a second; the link-local address appears at that point.
        for h in (a, b):
            assert wait_for(lambda: h.ip("-6", "addr", "show", "dev", h.ifname, "scope", "link"),
                            timeout=5), f"no IPv6 link-local address on {h.ifname}"
    except BaseException:
        teardown()
        raise
    return lab, teardown


@pytest.fixture
def lab():
    built, teardown = build_lab(bridge=False)
    try:
        yield built
    finally:
        teardown()


@pytest.fixture(params=["veth", "bridge"])
def any_lab(request):
    built, teardown = build_lab(bridge=request.param == "bridge")
    try:
        yield built
    finally:
        teardown()


# ---- VrrpSocket --------------------------------------------------------------------------


def test_v4_multicast_arrives_with_ttl_255_and_is_not_looped_back(lab):
    sa = lab.make(lab.a, VrrpSocket, lab.a.ifname, 4)
    sb = lab.make(lab.b, VrrpSocket, lab.b.ifname, 4)
    sa.join_multicast()
    sa.join_multicast()  # idempotent
    sb.join_multicast()
    payload = bytes(range(20))
    sa.send(payload, GROUP4)
    assert recv_wait(sb) == (A4, GROUP4, 255, payload)
    assert recv_wait(sa, timeout=0.3) is None  # IP_MULTICAST_LOOP is off
    assert sb.recv() is None  # nothing else queued: recv() does not block


def test_v4_unicast_and_per_message_source(lab):
    lab.a.ip("addr", "add", "198.51.100.11/24", "dev", lab.a.ifname)  # a secondary address
    sa = lab.make(lab.a, VrrpSocket, lab.a.ifname, 4)
    sb = lab.make(lab.b, VrrpSocket, lab.b.ifname, 4)
    sb.join_multicast()
    # One socket receives both unicast and multicast adverts.
    sa.send(b"unicast", B4)
    assert recv_wait(sb) == (A4, B4, 255, b"unicast")
    sa.send(b"from secondary", B4, src="198.51.100.11")
    assert recv_wait(sb) == ("198.51.100.11", B4, 255, b"from secondary")
    sa.send(b"group from secondary", GROUP4, src="198.51.100.11")
    assert recv_wait(sb) == ("198.51.100.11", GROUP4, 255, b"group from secondary")
    sa.send(b"primary again", GROUP4, src=A4)
    assert recv_wait(sb) == (A4, GROUP4, 255, b"primary again")
    with pytest.raises(OSError) as e:
        sa.send(b"x", B4, src="198.51.100.77")  # not an address of this host
    assert e.value.errno == errno.ENETUNREACH


@pytest.mark.parametrize("family", [4, 6])
def test_multicast_is_delivered_only_after_join(any_lab, family):
    """Answers the driver's question for plain veths and for veths on a Linux bridge (IGMP/MLD
    snooping on, its default): a raw socket bound to the interface gets nothing for the VRRP group
    until the interface joins it."""
    lab = any_lab
    sa = lab.make(lab.a, VrrpSocket, lab.a.ifname, family)
    sb = lab.make(lab.b, VrrpSocket, lab.b.ifname, family)
    src, group = (A4, GROUP4) if family == 4 else (lab.link_local(lab.a), GROUP6)
    sa.send(b"before join", group, src=src)
    assert recv_wait(sb, timeout=0.5) is None
    sb.join_multicast()
    time.sleep(0.1)  # let the IGMP/MLD report reach the bridge
    sa.send(b"after join", group, src=src)
    assert recv_wait(sb) == (src, group, 255, b"after join")
    sb.leave_multicast()
    sb.leave_multicast()  # idempotent
    sa.send(b"after leave", group, src=src)
    assert recv_wait(sb, timeout=0.5) is None


def test_v4_ttl_is_reported_as_sent(lab):
    """A sender that does not set TTL 255 is visible to the driver, which must discard it."""
    sb = lab.make(lab.b, VrrpSocket, lab.b.ifname, 4)
    sb.join_multicast()
    plain = lab.make(lab.a, socket.socket, socket.AF_INET, socket.SOCK_RAW, 112)
    plain.sendto(b"default ttl", (B4, 0))  # net.ipv4.ip_default_ttl = 64
    assert recv_wait(sb) == (A4, B4, 64, b"default ttl")
    plain.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 64)
    plain.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, lab.a.ifname.encode())
    plain.sendto(b"group ttl 64", (GROUP4, 0))
    assert recv_wait(sb) == (A4, GROUP4, 64, b"group ttl 64")


def test_v6_multicast_from_link_local_with_hop_limit_255(lab):
    ll = lab.link_local(lab.a)
    sa = lab.make(lab.a, VrrpSocket, lab.a.ifname, 6)
    sb = lab.make(lab.b, VrrpSocket, lab.b.ifname, 6)
    sa.join_multicast()
    sb.join_multicast()
    sb.join_multicast()
    payload = bytes(range(40))
    sa.send(payload, GROUP6, src=ll)
    assert recv_wait(sb) == (ll, GROUP6, 255, payload)
    assert recv_wait(sa, timeout=0.3) is None  # IPV6_MULTICAST_LOOP is off


def test_v6_unicast_and_foreign_hop_limit(lab):
    sa = lab.make(lab.a, VrrpSocket, lab.a.ifname, 6)
    sb = lab.make(lab.b, VrrpSocket, lab.b.ifname, 6)
    sb.join_multicast()
    sa.send(b"unicast", B6, src=A6)
    assert recv_wait(sb) == (A6, B6, 255, b"unicast")
    # A plain socket's multicast hop limit is 1: reported from IPV6_HOPLIMIT, not assumed.
    ll = lab.link_local(lab.a)
    plain = lab.make(lab.a, socket.socket, socket.AF_INET6, socket.SOCK_RAW, 112)
    plain.sendto(b"hop limit 1", (GROUP6, 0, 0, _ifindex_in(lab.a)))
    assert recv_wait(sb) == (ll, GROUP6, 1, b"hop limit 1")
    with pytest.raises(OSError) as e:
        sa.send(b"x", B6, src="2001:db8::77")
    assert e.value.errno == errno.EINVAL


def _ifindex_in(host: Host) -> int:
    return json.loads(host.ip("-j", "link", "show", "dev", host.ifname))[0]["ifindex"]


def test_send_on_a_down_interface_raises(lab):
    ll = lab.link_local(lab.a)
    sa = lab.make(lab.a, VrrpSocket, lab.a.ifname, 4)
    sa6 = lab.make(lab.a, VrrpSocket, lab.a.ifname, 6)
    ann = lab.make(lab.a, Announcer, lab.a.ifname)
    lab.a.ip("link", "set", lab.a.ifname, "down")
    with pytest.raises(OSError) as e:
        sa.send(b"x", GROUP4)
    assert e.value.errno == errno.ENETUNREACH
    with pytest.raises(OSError) as e:
        sa6.send(b"x", GROUP6, src=ll)
    assert e.value.errno == errno.EINVAL
    with pytest.raises(OSError) as e:
        ann.send(garp_frame(lab.a.mac(), VIP4))
    assert e.value.errno == errno.ENETDOWN


# ---- Netlink -----------------------------------------------------------------------------


def _ip_addrs(host: Host, family: str) -> list[str]:
    out = json.loads(host.ip("-j", family, "addr", "show", "dev", host.ifname))
    return [f"{a['local']}/{a['prefixlen']}" for a in out[0]["addr_info"]]


def test_netlink_reads_the_interface(lab):
    nl = lab.make(lab.a, Netlink)
    ifname = lab.a.ifname
    assert nl.ifindex(ifname) == _ifindex_in(lab.a)
    assert nl.ifindex("nosuchif0") is None
    assert nl.mac(ifname) == lab.a.mac()
    assert nl.link_up(ifname) and not nl.link_up("nosuchif0")
    ll = lab.link_local(lab.a)
    assert nl.link_local6(ifname) == ll
    assert set(nl.addresses(ifname)) == {
        ipaddress.ip_interface(f"{A4}/24"), ipaddress.ip_interface(f"{A6}/64"),
        ipaddress.ip_interface(f"{ll}/64")}
    assert nl.primary_ipv4(ifname) == A4


def test_primary_ipv4_never_returns_a_vip(lab):
    nl = lab.make(lab.a, Netlink)
    ifname = lab.a.ifname
    nl.add_vip(ifname, ipaddress.ip_interface("203.0.113.100/24"))  # primary in its own subnet
    assert nl.primary_ipv4(ifname, exclude=["203.0.113.100"]) == A4
    # A VIP left over from a crash, then the host address re-added: ours is now the secondary.
    lab.a.ip("addr", "del", f"{A4}/24", "dev", ifname)
    nl.add_vip(ifname, ipaddress.ip_interface(f"{VIP4}/24"))
    lab.a.ip("addr", "add", f"{A4}/24", "dev", ifname)
    assert nl.primary_ipv4(ifname, exclude=[VIP4, "203.0.113.100"]) == A4
    assert nl.primary_ipv4(ifname, exclude=[VIP4, A4, "203.0.113.100"]) is None


def test_add_and_del_vip_v4_are_idempotent(lab):
    nl = lab.make(lab.a, Netlink)
    ifname, vip = lab.a.ifname, ipaddress.ip_interface(f"{VIP4}/24")
    assert nl.add_vip(ifname, vip) is True
    assert f"{VIP4}/24" in _ip_addrs(lab.a, "-4")
    assert nl.add_vip(ifname, vip) is False
    assert _ip_addrs(lab.a, "-4").count(f"{VIP4}/24") == 1
    assert vip in nl.addresses(ifname)
    assert nl.del_vip(ifname, vip) is True
    assert f"{VIP4}/24" not in _ip_addrs(lab.a, "-4")
    assert nl.del_vip(ifname, vip) is False
    assert _ip_addrs(lab.a, "-4") == [f"{A4}/24"]  # the host's own address is untouched
    assert nl.del_vip("nosuchif0", vip) is False


def test_add_vip_v6_is_usable_at_once(lab):
    ifname = lab.a.ifname
    lab.a.sysctl(f"net.ipv6.conf.{ifname}.accept_dad=1")  # DAD would hold a VIP tentative
    nl = lab.make(lab.a, Netlink)
    vip = ipaddress.ip_interface(f"{VIP6}/64")
    assert nl.add_vip(ifname, vip) is True
    assert nl.add_vip(ifname, vip) is False
    info = [a for a in json.loads(lab.a.ip("-j", "-6", "addr", "show", "dev", ifname))[0]
            ["addr_info"] if a["local"] == VIP6]
    assert len(info) == 1 and info[0]["prefixlen"] == 64
    assert info[0].get("nodad") and not info[0].get("tentative"), info
    sa = lab.make(lab.a, VrrpSocket, ifname, 6)
    sb = lab.make(lab.b, VrrpSocket, lab.b.ifname, 6)
    sa.send(b"from the vip", B6, src=VIP6)  # EADDRNOTAVAIL if it were tentative
    assert recv_wait(sb) == (VIP6, B6, 255, b"from the vip")
    assert nl.del_vip(ifname, vip) is True
    assert nl.del_vip(ifname, vip) is False
    assert f"{VIP6}/64" not in _ip_addrs(lab.a, "-6")


def _addr_info(host: Host) -> list[dict]:
    """The interface's addresses exactly as `ip -j addr` reports them."""
    return json.loads(host.ip("-j", "addr", "show", "dev", host.ifname))[0]["addr_info"]


def _addr_entry(host: Host, local: str) -> dict | None:
    found = [a for a in _addr_info(host) if a["local"] == local]
    assert len(found) <= 1, found
    return found[0] if found else None


@pytest.mark.parametrize("vip, ip_flags, label", [
    (f"{VIP4}/24", (), None),              # a secondary address in the host's own subnet
    ("203.0.113.100/27", (), ":v"),        # the primary of a subnet of its own, labelled
    (f"{VIP6}/64", ("nodad",), None),
    ("2001:db8:5::100/128", ("nodad",), None),
])
def test_vip_is_exactly_what_ip_addr_add_makes(lab, vip, ip_flags, label):
    """To `ip addr` (and so to an operator or keepalived) a VIP vipd added is the one they would
    add by hand: same prefix length, scope, flags, label and lifetimes; IPv6 ones nodad."""
    host, ifname = lab.a, lab.a.ifname
    host.sysctl(f"net.ipv6.conf.{ifname}.accept_dad=1")  # without nodad it would be tentative
    iface = ipaddress.ip_interface(vip)
    label = label and ifname + label
    before = _addr_info(host)
    host.ip("addr", "add", vip, "dev", ifname, *ip_flags, *(("label", label) if label else ()))
    by_hand = _addr_entry(host, str(iface.ip))
    host.ip("addr", "del", vip, "dev", ifname)
    assert _addr_info(host) == before
    assert by_hand["prefixlen"] == iface.network.prefixlen
    assert iface.version == 4 or (by_hand.get("nodad") and not by_hand.get("tentative"))

    nl = lab.make(host, Netlink)
    assert nl.add_vip(ifname, iface, label) is True
    assert _addr_entry(host, str(iface.ip)) == by_hand
    other = ipaddress.ip_interface(f"{iface.ip}/{iface.network.prefixlen - 1}")
    assert nl.del_vip(ifname, other) is False  # another prefix length is another address
    assert _addr_entry(host, str(iface.ip)) == by_hand
    assert nl.del_vip(ifname, iface) is True
    assert _addr_info(host) == before


def test_kernel_refusals_are_oserrors_with_errno(lab):
    host, ifname = lab.a, lab.a.ifname
    nl = lab.make(host, Netlink)
    host.sysctl(f"net.ipv6.conf.{ifname}.disable_ipv6=1")
    with pytest.raises(OSError) as e:
        nl.add_vip(ifname, ipaddress.ip_interface(f"{VIP6}/64"))
    assert e.value.errno == errno.EACCES
    assert "IPv6 is disabled" in str(e.value)  # the kernel's reason (extended ack) is kept
    with pytest.raises(OSError) as e:
        nl.add_vip(ifname, ipaddress.ip_interface(f"{VIP4}/24"), label=ifname + ":" + "x" * 16)
    assert e.value.errno is not None
    assert _addr_entry(host, VIP4) is None
    with pytest.raises(OSError) as e:  # also a LookupError, as mac() has always raised
        nl.add_vip("nosuchif0", ipaddress.ip_interface(f"{VIP4}/24"))
    assert e.value.errno == errno.ENODEV and isinstance(e.value, LookupError)


def test_calls_on_a_vanished_interface_answer_at_once(lab):
    host, ifname = lab.a, lab.a.ifname
    nl = lab.make(host, Netlink)
    vip4, vip6 = ipaddress.ip_interface(f"{VIP4}/24"), ipaddress.ip_interface(f"{VIP6}/64")
    assert nl.add_vip(ifname, vip4)
    stale = nl.ifindex(ifname)
    host.ip("link", "del", ifname)
    start = time.monotonic()
    assert nl.ifindex(ifname) is None and nl.link_up(ifname) is False
    assert nl.link_local6(ifname) is None and nl.primary_ipv4(ifname) is None
    assert nl.addresses(ifname) == []
    assert nl.del_vip(ifname, vip4) is False
    with pytest.raises(LookupError):
        nl.mac(ifname)
    with pytest.raises(OSError) as e:
        nl.add_vip(ifname, vip4)
    assert e.value.errno == errno.ENODEV
    # Gone between the name lookup and the change: the kernel's ENODEV.
    nl.ifindex = lambda name: stale
    assert nl.addresses(ifname) == []
    assert nl.del_vip(ifname, vip4) is False
    for vip in (vip4, vip6):
        with pytest.raises(OSError) as e:
            nl.add_vip(ifname, vip)
        assert e.value.errno == errno.ENODEV
    assert time.monotonic() - start < TIMEOUT / 2  # answers, not timeouts


class _Kernel:
    """Netlink's socket with the kernel's answers lost (requests dropped) or late (the first
    receive times out before the answer is read)."""

    def __init__(self, sock, drop: bool = False, late: int = 0):
        self._sock, self._drop, self._late = sock, drop, late

    def send(self, data: bytes) -> int:
        return len(data) if self._drop else self._sock.send(data)

    def recv_into(self, *args):
        if self._late:
            self._late -= 1
            raise TimeoutError("timed out")
        return self._sock.recv_into(*args)

    def __getattr__(self, name: str):
        return getattr(self._sock, name)


def test_a_kernel_that_does_not_answer_is_an_error_not_a_hang(lab):
    host, ifname = lab.a, lab.a.ifname
    nl = lab.make(host, Netlink)
    real = nl._sock
    try:
        nl._sock = _Kernel(real, drop=True)
        start = time.monotonic()
        with pytest.raises(OSError) as e:
            nl.link_up(ifname)
        assert e.value.errno == errno.ETIMEDOUT
        assert TIMEOUT - 0.05 < time.monotonic() - start < TIMEOUT + 0.5
        # The answer to a request given up on arrives later; it must not be taken for the
        # answer to the next one.
        nl._sock = _Kernel(real, late=1)
        with pytest.raises(OSError):
            nl.ifindex(ifname)
    finally:
        nl._sock = real
    assert nl.ifindex("lo") == 1
    assert nl.ifindex(ifname) == _ifindex_in(host)


def test_netlink_runs_inside_the_event_loop_without_threads(lab):
    """The driver calls Netlink straight from its asyncio loop (pyroute2's synchronous API
    refused to run there, which once cost a worker thread)."""
    host, ifname = lab.a, lab.a.ifname
    nl = lab.make(host, Netlink)
    vips = [ipaddress.ip_interface(f"{VIP4}/24"), ipaddress.ip_interface(f"{VIP6}/64")]
    threads = threading.active_count()

    async def become_master_and_back():
        added = [nl.add_vip(ifname, v) for v in vips]
        held = set(nl.addresses(ifname))
        facts = (nl.mac(ifname), nl.link_up(ifname), nl.primary_ipv4(ifname, [VIP4]))
        removed = [nl.del_vip(ifname, v) for v in vips]
        return added, held, facts, removed, threading.active_count()

    added, held, facts, removed, threads_inside = asyncio.run(become_master_and_back())
    assert added == [True, True] and removed == [True, True]
    assert set(vips) <= held
    assert facts == (host.mac(), True, A4)
    assert threads_inside == threads
    assert not set(vips) & set(nl.addresses(ifname))


def test_vipd_does_not_import_pyroute2():
    """Importing pyroute2 costs each daemon ~13 MB of resident memory; vipd speaks rtnetlink
    itself. Checked in a fresh interpreter, since this test process may have imported it."""
    code = ("import importlib, pkgutil, sys, vipd\n"
            "for m in pkgutil.walk_packages(vipd.__path__, 'vipd.'):\n"
            "    if not m.name.endswith('__main__'):\n"
            "        importlib.import_module(m.name)\n"
            "print('vipd.net.netlink' in sys.modules, 'vipd.daemon' in sys.modules,\n"
            "      sorted(n for n in sys.modules if n.split('.')[0] == 'pyroute2'))")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, cwd=repo).stdout
    assert out.split() == ["True", "True", "[]"]


def _wait_event(mon: LinkMonitor, expected: tuple[str, bool], timeout: float = 3.0) -> list:
    seen: list = []
    deadline = time.monotonic() + timeout
    while expected not in seen and time.monotonic() < deadline:
        select.select([mon], [], [], max(0.0, deadline - time.monotonic()))
        seen += mon.read()
    assert expected in seen, seen
    return seen


def test_link_state_follows_carrier_and_admin_state(lab):
    nl = lab.make(lab.a, Netlink)
    mon = lab.make(lab.a, LinkMonitor)
    ifname = lab.a.ifname
    assert mon.read() == []
    assert nl.link_up(ifname)
    lab.b.ip("link", "set", lab.b.ifname, "down")  # the peer goes away: carrier loss
    _wait_event(mon, (ifname, False))
    assert not nl.link_up(ifname)
    lab.b.ip("link", "set", lab.b.ifname, "up")
    _wait_event(mon, (ifname, True))
    assert nl.link_up(ifname)
    lab.a.ip("link", "set", ifname, "down")  # administratively down
    _wait_event(mon, (ifname, False))
    assert not nl.link_up(ifname)
    lab.a.ip("link", "set", ifname, "up")
    seen = _wait_event(mon, (ifname, True))
    assert seen[-1] == (ifname, True)
    lab.a.ip("link", "del", ifname)  # deleting a veth deletes its peer too
    _wait_event(mon, (ifname, False))
    assert nl.ifindex(ifname) is None and not nl.link_up(ifname)


def test_link_monitor_recovers_from_lost_events(lab):
    """When a burst of changes overflows the socket, the final state is still reported."""
    mon = lab.make(lab.a, LinkMonitor, 1)  # the kernel's minimum buffer: a few messages
    ifname = lab.a.ifname
    batch = [f"link set dev {ifname} mtu {1400 + i}" for i in range(20)]
    batch.append(f"link set dev {ifname} down")
    sh("ip", "-n", lab.a.ns, "-batch", "-", input="\n".join(batch))
    seen = mon.read()
    mine = [up for name, up in seen if name == ifname]
    assert mine and mine[-1] is False, seen
    assert ("lo", True) in seen  # the resync dump reports every link


# ---- Announcer ---------------------------------------------------------------------------


def test_garp_moves_an_existing_neighbour_entry(lab):
    lab.b.ip("neigh", "replace", VIP4, "lladdr", WRONG_MAC, "dev", lab.b.ifname, "nud", "stale")
    assert lab.b.neigh_mac(VIP4) == WRONG_MAC
    mac = lab.a.mac()
    ann = lab.make(lab.a, Announcer, lab.a.ifname)
    ann.send(garp_frame(mac, VIP4))
    assert wait_for(lambda: lab.b.neigh_mac(VIP4) == mac.hex(":")), lab.b.neigh_mac(VIP4)


def test_unsolicited_na_moves_an_existing_neighbour_entry(lab):
    lab.b.ip("-6", "neigh", "replace", VIP6, "lladdr", WRONG_MAC, "dev", lab.b.ifname,
             "nud", "stale")
    assert lab.b.neigh_mac(VIP6) == WRONG_MAC
    mac = lab.a.mac()
    ann = lab.make(lab.a, Announcer, lab.a.ifname)
    ann.send(unsolicited_na_frame(mac, VIP6))
    assert wait_for(lambda: lab.b.neigh_mac(VIP6) == mac.hex(":")), lab.b.neigh_mac(VIP6)


# Frames keepalived 2.2.7 sent for 198.51.100.100 and 2001:db8::100 from MAC 3a:ec:e4:84:8b:72
# (captured with tcpdump on the peer of a veth, interface not forwarding).
KEEPALIVED_MAC = bytes.fromhex("3aece4848b72")
KEEPALIVED_GARP = bytes.fromhex(
    "ffffffffffff3aece4848b72080600010800060400013aece4848b72c6336464ffffffffffffc6336464")
KEEPALIVED_NA = bytes.fromhex(
    "3333000000013aece4848b7286dd6000000000203aff20010db8000000000000000000000100ff0200000000"
    "0000000000000000000188004e4a2000000020010db800000000000000000000010002013aece4848b72")


def test_frames_match_keepalived_and_scapy():
    assert garp_frame(KEEPALIVED_MAC, VIP4) == KEEPALIVED_GARP
    assert unsolicited_na_frame(KEEPALIVED_MAC, VIP6) == KEEPALIVED_NA
    mac, smac = bytes.fromhex("020000000001"), "02:00:00:00:00:01"
    arp = Ether(dst="ff:ff:ff:ff:ff:ff", src=smac) / ARP(
        op=1, hwsrc=smac, psrc="203.0.113.9", hwdst="ff:ff:ff:ff:ff:ff", pdst="203.0.113.9")
    assert garp_frame(mac, "203.0.113.9") == bytes(arp)
    for src, router in ((None, False), ("fe80::1", True)):
        na = Ether(dst="33:33:00:00:00:01", src=smac) / IPv6(
            src=src or "2001:db8:5::9", dst="ff02::1", hlim=255) / ICMPv6ND_NA(
            R=int(router), S=0, O=1, tgt="2001:db8:5::9") / ICMPv6NDOptDstLLAddr(lladdr=smac)
        assert unsolicited_na_frame(mac, "2001:db8:5::9", src, router) == bytes(na)


def test_router_flag_source(lab):
    ifname = lab.a.ifname
    with in_ns(lab.a.ns):
        assert ipv6_forwarding(ifname) is False
    lab.a.sysctl(f"net.ipv6.conf.{ifname}.forwarding=1")
    with in_ns(lab.a.ns):
        assert ipv6_forwarding(ifname) is True
        assert ipv6_forwarding("nosuchif0") is False
