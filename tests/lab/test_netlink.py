"""vipd/net/netlink against real kernels: addresses, links, errors, the link monitor."""

import asyncio
import errno
import ipaddress
import json
import os
import select
import subprocess
import sys
import threading
import time

import pytest

from vipd.net.netlink import TIMEOUT, Netlink
from vipd.net.nlmonitor import AddrEvent, LinkEvent, NetMonitor, Overflow
from vipd.net.rawsock import VrrpSocket


from netpair import A4, A6, B6, VIP4, VIP6, Host, recv_wait, sh
from netpair import ifindex_in, any_lab, lab  # noqa: F401  (fixtures, used by name)

pytestmark = pytest.mark.lab


def _ip_addrs(host: Host, family: str) -> list[str]:
    out = json.loads(host.ip("-j", family, "addr", "show", "dev", host.ifname))
    return [f"{a['local']}/{a['prefixlen']}" for a in out[0]["addr_info"]]


def test_netlink_reads_the_interface(lab):
    nl = lab.make(lab.a, Netlink)
    ifname = lab.a.ifname
    assert nl.ifindex(ifname) == ifindex_in(lab.a)
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
    assert nl.ifindex(ifname) == ifindex_in(host)


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


def _links(events: list) -> list[tuple[str, bool]]:
    return [(e.name, e.usable) for e in events if type(e) is LinkEvent]


def _wait_event(mon: NetMonitor, expected: tuple[str, bool], timeout: float = 3.0) -> list:
    seen: list = []
    deadline = time.monotonic() + timeout
    while expected not in seen and time.monotonic() < deadline:
        select.select([mon], [], [], max(0.0, deadline - time.monotonic()))
        seen += _links(mon.read())
    assert expected in seen, seen
    return seen


def test_link_state_follows_carrier_and_admin_state(lab):
    nl = lab.make(lab.a, Netlink)
    mon = lab.make(lab.a, NetMonitor)
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
    mon = lab.make(lab.a, NetMonitor, 1)  # the kernel's minimum buffer: a few messages
    ifname = lab.a.ifname
    batch = [f"link set dev {ifname} mtu {1400 + i}" for i in range(20)]
    batch.append(f"link set dev {ifname} down")
    sh("ip", "-n", lab.a.ns, "-batch", "-", input="\n".join(batch))
    events = mon.read()
    assert Overflow() in events      # the caller is told to read addresses again
    seen = _links(events)
    mine = [up for name, up in seen if name == ifname]
    assert mine and mine[-1] is False, seen
    assert ("lo", True) in seen  # the resync dump reports every link


def test_address_events_say_what_changed(lab):
    """Added, tentative then usable (DAD), removed: each an AddrEvent with its flags."""
    mon = lab.make(lab.a, NetMonitor)
    ifname, index = lab.a.ifname, ifindex_in(lab.a)
    lab.a.ip("addr", "add", "203.0.113.7/24", "dev", ifname)
    lab.a.sysctl(f"net.ipv6.conf.{ifname}.accept_dad=1")
    lab.a.ip("addr", "add", "2001:db8::77/64", "dev", ifname)     # DAD: tentative first
    lab.a.ip("addr", "del", "203.0.113.7/24", "dev", ifname)
    events: list = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(
            e.address == "2001:db8::77" and not e.flags & 0x40 for e in events):
        select.select([mon], [], [], 0.2)
        events += [e for e in mon.read() if type(e) is AddrEvent]
    v4 = [(e.deleted, e.prefixlen) for e in events if e.address == "203.0.113.7"]
    assert v4 == [(False, 24), (True, 24)] and all(e.index == index for e in events)
    v6 = [e for e in events if e.address == "2001:db8::77"]
    assert v6[0].flags & 0x40 and not v6[-1].flags & 0x40, v6     # IFA_F_TENTATIVE, then not


# ---- Announcer ---------------------------------------------------------------------------
