"""vipd/net/netlink (pyroute2's asyncio API) against real kernels: addresses, links, errors,
timeouts, and the link and address monitor (vipd/net/nlmonitor) with its overflow recovery."""

import asyncio
import errno
import ipaddress
import json
import os
import re
import select
import threading
import time

import pytest

from vipd.net import netlink
from vipd.net.netlink import TIMEOUT, Netlink
from vipd.net.nlmonitor import AddrEvent, LinkEvent, NetMonitor, Overflow
from vipd.net.rawsock import VrrpSocket


from netpair import A4, A6, B6, VIP4, VIP6, Host, SyncNetlink, in_ns, recv_wait, sh
from netpair import ifindex_in, any_lab, lab  # noqa: F401  (fixtures, used by name)

pytestmark = pytest.mark.lab


def _ip_addrs(host: Host, family: str) -> list[str]:
    out = json.loads(host.ip("-j", family, "addr", "show", "dev", host.ifname))
    return [f"{a['local']}/{a['prefixlen']}" for a in out[0]["addr_info"]]


def test_netlink_reads_the_interface(lab):
    nl = lab.make(lab.a, SyncNetlink)
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
    nl = lab.make(lab.a, SyncNetlink)
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
    nl = lab.make(lab.a, SyncNetlink)
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
    nl = lab.make(lab.a, SyncNetlink)
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

    nl = lab.make(host, SyncNetlink)
    assert nl.add_vip(ifname, iface, label) is True
    assert _addr_entry(host, str(iface.ip)) == by_hand
    other = ipaddress.ip_interface(f"{iface.ip}/{iface.network.prefixlen - 1}")
    assert nl.del_vip(ifname, other) is False  # another prefix length is another address
    assert _addr_entry(host, str(iface.ip)) == by_hand
    assert nl.del_vip(ifname, iface) is True
    assert _addr_info(host) == before


def test_kernel_refusals_are_oserrors_with_errno(lab):
    host, ifname = lab.a, lab.a.ifname
    nl = lab.make(host, SyncNetlink)
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


def test_calls_on_a_vanished_interface_answer_at_once(lab, monkeypatch):
    host, ifname = lab.a, lab.a.ifname
    nl = lab.make(host, SyncNetlink)
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
    monkeypatch.setattr(netlink, "ifindex", lambda name: stale)
    assert nl.addresses(ifname) == []
    assert nl.del_vip(ifname, vip4) is False
    for vip in (vip4, vip6):
        with pytest.raises(OSError) as e:
            nl.add_vip(ifname, vip)
        assert e.value.errno == errno.ENODEV
    assert time.monotonic() - start < TIMEOUT / 2  # answers, not timeouts


def test_a_kernel_that_does_not_answer_is_an_error_not_a_hang(lab):
    """pyroute2 requests have no timeout of their own: each one here is bounded by TIMEOUT."""
    host, ifname = lab.a, lab.a.ifname
    nl = lab.make(host, SyncNetlink)
    ipr = nl.nl._ipr
    ipr.send = lambda data, flags=0: len(data)     # the request is lost on its way
    start = time.monotonic()
    with pytest.raises(OSError) as e:
        nl.link_up(ifname)
    assert e.value.errno == errno.ETIMEDOUT
    assert TIMEOUT - 0.05 < time.monotonic() - start < TIMEOUT + 0.5
    # Late: the kernel answers after the request was given up on. That answer must not be
    # taken for the answer to the next request.
    del ipr.send
    real = ipr.send
    ipr.send = lambda data, flags=0: (nl.loop.call_later(TIMEOUT + 0.2, real, data), len(data))[1]
    with pytest.raises(OSError) as e:
        nl.addrs(ifname)
    assert e.value.errno == errno.ETIMEDOUT
    del ipr.send
    nl.run(asyncio.sleep(0.4))                      # the late answer arrives meanwhile
    assert nl.link("lo").index == 1
    assert nl.link(ifname).index == ifindex_in(host) and nl.primary_ipv4(ifname) == A4


def _give_up_on_slowed_requests(nl: SyncNetlink, host: Host) -> int:
    """Three requests timed out and one cancelled while the path to the kernel is slowed: each
    reaches the kernel 0.2 s late, so its answer comes after vipd gave up on it. Returns once
    every answer has been read off the socket, with how many messages came late (dropped by
    Netlink meanwhile or still in pyroute2's queue 0)."""
    ipr, ifname, vip = nl.nl._ipr, host.ifname, ipaddress.ip_interface(f"{VIP4}/24")
    root, real, sent = ipr.msg_queue.root, ipr.send, []
    before = root.qsize() + nl.nl.late_replies

    def slowed(data, flags=0):
        nl.loop.call_later(0.2, lambda: sent.append(real(data)))
        return len(data)
    ipr.send = slowed
    for request in (nl.nl.addrs(ifname), nl.nl.add_vip(ifname, vip), nl.nl.link(ifname)):
        with pytest.raises(OSError) as e:
            nl.run(request)
        assert e.value.errno == errno.ETIMEDOUT

    async def cancelled():
        task = asyncio.ensure_future(nl.nl.addrs(ifname))
        while ipr.msg_queue.queues.keys() == {0}:   # until it is in flight
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    nl.run(cancelled())
    del ipr.send

    async def answers_in():   # every request sent, every answer read off the socket
        deadline = time.monotonic() + 2
        while len(sent) < 4 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        while select.select([ipr.socket], [], [], 0)[0] and time.monotonic() < deadline:
            await asyncio.sleep(0)   # the loop's reader files what is waiting
    nl.run(answers_in())
    assert len(sent) == 4 and not select.select([ipr.socket], [], [], 0)[0]
    return root.qsize() + nl.nl.late_replies - before


def test_answers_that_come_after_a_give_up_are_dropped(lab, monkeypatch):
    """pyroute2 releases a request's own queue on a timeout or cancel, but an answer that comes
    later is filed in queue 0, which nothing reads on a request socket: a slow leak on a sick
    host. Netlink drops them before its next request; without that they stay (shown first)."""
    host, ifname = lab.a, lab.a.ifname
    monkeypatch.setattr(netlink, "TIMEOUT", 0.1)
    nl = lab.make(host, SyncNetlink)
    queue = nl.nl._ipr.msg_queue
    assert nl.link(ifname) and queue.queues.keys() == {0} and queue.root.qsize() == 0
    with monkeypatch.context() as m:            # control: the drop turned off
        m.setattr(Netlink, "_drop_late_replies", lambda self: None)
        kept = _give_up_on_slowed_requests(nl, host)
        assert kept >= 4
        for _ in range(10):
            assert nl.link(ifname) and nl.addrs(ifname)
        assert queue.root.qsize() == kept       # no answer to a request ever takes them
    assert nl.link(ifname).index == ifindex_in(host)
    assert queue.root.qsize() == 0 and nl.nl.late_replies == kept
    late = _give_up_on_slowed_requests(nl, host)
    assert late >= 4
    assert nl.primary_ipv4(ifname) == A4        # the next request's answer, not a late one
    assert queue.root.qsize() == 0 and nl.nl.late_replies == kept + late
    assert queue.queues.keys() == {0}           # pyroute2 released every request's own queue


def test_netlink_runs_inside_the_event_loop_without_threads(lab):
    """The driver awaits Netlink on its own asyncio loop: pyroute2's asyncio API, no worker
    thread (its synchronous API refused to run inside a loop, which once cost one)."""
    host, ifname = lab.a, lab.a.ifname
    vips = [ipaddress.ip_interface(f"{VIP4}/24"), ipaddress.ip_interface(f"{VIP6}/64")]
    threads = threading.active_count()

    async def become_master_and_back():
        nl = await Netlink().open()
        try:
            added = [await nl.add_vip(ifname, v) for v in vips]
            held = set(await nl.addresses(ifname))
            facts = (await nl.mac(ifname), await nl.link_up(ifname),
                     await nl.primary_ipv4(ifname, [VIP4]))
            removed = [await nl.del_vip(ifname, v) for v in vips]
            return added, held, facts, removed, threading.active_count(), \
                set(await nl.addresses(ifname))
        finally:
            nl.close()

    with in_ns(host.ns):
        added, held, facts, removed, threads_inside, after = asyncio.run(become_master_and_back())
    assert added == [True, True] and removed == [True, True]
    assert set(vips) <= held
    assert facts == (host.mac(), True, A4)
    assert threads_inside == threads
    assert not set(vips) & after


def test_requests_leave_nothing_queued(lab):
    """pyroute2 keeps every message no request claims (an ack of link('get'), link_lookup) in a
    queue that is never emptied: 20,000 lookups cost +33 MB. vipd's requests, failing ones
    included, leave it empty; the same number of link('get') calls, shown here, do not."""
    host, ifname = lab.a, lab.a.ifname
    nl = lab.make(host, SyncNetlink)
    vip = ipaddress.ip_interface(f"{VIP4}/24")
    for _ in range(100):
        assert nl.add_vip(ifname, vip) is True and nl.add_vip(ifname, vip) is False
        assert nl.link(ifname) and nl.addrs(ifname) and nl.link("nosuchif0") is None
        assert nl.del_vip(ifname, vip) is True and nl.del_vip(ifname, vip) is False
    root = nl.nl._ipr.msg_queue.root
    assert root.qsize() == 0
    for _ in range(100):
        nl.run(nl.nl._ipr.link("get", index=1))
    assert root.qsize() >= 90


def test_pyroute2_is_only_imported_by_the_netlink_modules():
    """pyroute2 costs each daemon ~12 MB; it stays behind vipd/net/netlink.py and nlmonitor.py
    (the traps they keep out of the driver are documented there)."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    imports = re.compile(r"^\s*(from|import)\s+pyroute2\b", re.M)
    users = sorted(os.path.relpath(os.path.join(d, f), repo)
                   for d, _, files in os.walk(os.path.join(repo, "vipd")) for f in files
                   if f.endswith(".py") and imports.search(open(os.path.join(d, f)).read()))
    assert users == ["vipd/net/netlink.py", "vipd/net/nlmonitor.py"], users


def _links(events: list) -> list[tuple[str, bool]]:
    return [(e.name, e.usable) for e in events if type(e) is LinkEvent]


def _watch(host: Host, scenario, **monitor_args):
    """Runs ``scenario(events, wait)`` on an event loop in host's namespace with a NetMonitor
    appending to ``events``; ``wait(predicate)`` lets the loop run until predicate() holds."""
    async def main():
        events: list = []
        mon = NetMonitor(events.extend, **monitor_args)
        await mon.start()

        async def wait(predicate, timeout: float = 3.0):
            deadline = time.monotonic() + timeout
            while not predicate() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert predicate(), events

        try:
            return await scenario(events, wait, mon)
        finally:
            mon.close()

    with in_ns(host.ns):
        return asyncio.run(main())


def test_link_state_follows_carrier_and_admin_state(lab):
    ifname = lab.a.ifname

    async def scenario(events, wait, mon):
        nl = await Netlink().open()
        assert await nl.link_up(ifname)
        def change(host, *args, expect):
            events.clear()
            host.ip(*args)
            return wait(lambda: (ifname, expect) in _links(events))
        await asyncio.sleep(0.1)
        assert events == []
        await change(lab.b, "link", "set", lab.b.ifname, "down", expect=False)   # carrier loss
        assert not await nl.link_up(ifname)
        await change(lab.b, "link", "set", lab.b.ifname, "up", expect=True)
        assert await nl.link_up(ifname)
        await change(lab.a, "link", "set", ifname, "down", expect=False)   # administratively
        assert not await nl.link_up(ifname)
        await change(lab.a, "link", "set", ifname, "up", expect=True)
        assert _links(events)[-1] == (ifname, True)
        await change(lab.a, "link", "del", ifname, expect=False)   # deletes the peer too
        assert [e.deleted for e in events if type(e) is LinkEvent and e.name == ifname][-1]
        assert nl.ifindex(ifname) is None and not await nl.link_up(ifname)
        nl.close()
    _watch(lab.a, scenario)


def test_link_monitor_recovers_from_lost_events(lab):
    """Once its buffer overflows, a pyroute2 event socket raises ENOBUFS on every read: the
    monitor reports Overflow (the caller reads again what it cached) and opens a new socket,
    which goes on delivering events."""
    ifname = lab.a.ifname

    async def scenario(events, wait, mon):
        mon.rcvbuf = 1 << 20      # the new socket's, after the overflow of the first one
        batch = [f"link set dev {ifname} mtu {1400 + i}" for i in range(20)]
        # the loop is blocked while ip runs: the events pile up in the kernel's minimal buffer
        sh("ip", "-n", lab.a.ns, "-batch", "-", input="\n".join(batch))
        await wait(lambda: Overflow() in events)
        assert mon.reopened == 1
        events.clear()
        lab.a.ip("link", "set", ifname, "down")
        await wait(lambda: (ifname, False) in _links(events))
        lab.a.ip("link", "set", ifname, "up")
        await wait(lambda: (ifname, True) in _links(events))
        assert mon.reopened == 1 and Overflow() not in events
    _watch(lab.a, scenario, rcvbuf=1)     # the kernel's minimum buffer: a few messages


def test_address_events_say_what_changed(lab):
    """Added, tentative then usable (DAD), removed: each an AddrEvent with its flags."""
    ifname, index = lab.a.ifname, ifindex_in(lab.a)

    async def scenario(events, wait, mon):
        lab.a.ip("addr", "add", "203.0.113.7/24", "dev", ifname)
        lab.a.sysctl(f"net.ipv6.conf.{ifname}.accept_dad=1")
        lab.a.ip("addr", "add", "2001:db8::77/64", "dev", ifname)     # DAD: tentative first
        lab.a.ip("addr", "del", "203.0.113.7/24", "dev", ifname)
        await wait(lambda: any(type(e) is AddrEvent and e.address == "2001:db8::77"
                               and not e.flags & 0x40 for e in events), timeout=5)
        return [e for e in events if type(e) is AddrEvent]
    events = _watch(lab.a, scenario)
    v4 = [(e.deleted, e.prefixlen) for e in events if e.address == "203.0.113.7"]
    assert v4 == [(False, 24), (True, 24)] and all(e.index == index for e in events)
    v6 = [e for e in events if e.address == "2001:db8::77"]
    assert v6[0].flags & 0x40 and not v6[-1].flags & 0x40, v6     # IFA_F_TENTATIVE, then not


# ---- Announcer ---------------------------------------------------------------------------
