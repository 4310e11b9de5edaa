"""Two network namespaces joined by a veth pair (or a bridge in a third namespace) for the
vipd/net tests, built and torn down per test with names unique to this run.

Objects under test are created inside a namespace (setns) and keep working from the test
process after it returns there: sockets stay bound to the namespace they were made in.
"""

import asyncio
import contextlib
import ctypes
import itertools
import json
import os
import select
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from vipd.net.netlink import Netlink


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
def in_ns_fd(fd: int):
    """Runs the block with this thread in the network namespace open as fd, then moves it back."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(fd)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(home)


@contextlib.contextmanager
def in_ns(ns: str):
    """Runs the block with this thread in network namespace ns, then moves it back."""
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        with in_ns_fd(target):
            yield
    finally:
        os.close(target)


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


class SyncNetlink:
    """vipd.net.netlink.Netlink for synchronous test code: each coroutine runs to its end on a
    private event loop, in the namespace it was made in (Lab.make): its socket belongs there, and
    names are looked up there (if_nametoindex asks the calling thread's namespace)."""

    def __init__(self):
        self.ns_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self.loop = asyncio.new_event_loop()
        self.nl = self.loop.run_until_complete(self._open())

    def run(self, coro):
        with in_ns_fd(self.ns_fd):
            return self.loop.run_until_complete(coro)

    @staticmethod
    async def _open() -> Netlink:
        return await Netlink().open()

    def __getattr__(self, name: str):
        attr = getattr(self.nl, name)
        if asyncio.iscoroutinefunction(attr):
            return lambda *args, **kwargs: self.run(attr(*args, **kwargs))

        def in_namespace(*args, **kwargs):
            with in_ns_fd(self.ns_fd):
                return attr(*args, **kwargs)
        return in_namespace

    def close(self) -> None:
        self.nl.close()
        self.loop.close()
        os.close(self.ns_fd)


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
        nl = self.make(host, SyncNetlink)
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


def ifindex_in(host: Host) -> int:
    return json.loads(host.ip("-j", "link", "show", "dev", host.ifname))[0]["ifindex"]
