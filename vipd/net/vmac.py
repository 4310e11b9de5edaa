"""Virtual MAC interfaces (keepalived use_vmac): a macvlan on the instance's interface with the
VRRP virtual router MAC (RFC 5798 7.3: 00-00-5E-00-01-{VRID} for IPv4, 00-00-5E-00-02-{VRID}
for IPv6), so that the VIPs answer from the same MAC on whichever host is master and a failover
moves a switch port, not every client's ARP or neighbour cache.

- mode private: the macvlan and its parent do not talk to each other through the macvlan
  driver (broadcast from the wire still reaches both).
- Every frame a *backup* sends from the virtual MAC pulls the switch's forwarding entry for it
  towards the backup and away from the master. So the macvlan sends nothing by itself:
  - IPv4: IPv6 is disabled on it before it goes up (no router/neighbour solicitations).
  - IPv6 (see ``IPV6_SYSCTLS``): no address generated from the virtual MAC (addr_gen_mode
    none; RFC 5798 7.4 forbids deriving interface identifiers from it, and every router of the
    VRID would get the same link-local), no router solicitations, no SLAAC, and no DAD.
- IPv4: arp_ignore = 1 on the macvlan (it answers only for addresses on it: the VIPs, not the
  host's own) and on the parent (which must not answer for the VIPs with its own MAC);
  arp_announce = 2 on the parent, or the parent's own ARP requests (replying to a client of the
  VIP) would carry the VIP as sender with the parent's MAC and rewrite the client's entry for
  the VIP. The parent's old values are put back when the macvlan is removed, as keepalived does.
  IPv6 needs neither: Linux answers a neighbour solicitation only for addresses on the interface
  it arrived on, and its own solicitations from the parent use the parent's link-local.
- IPv6 adverts come from a link-local address (RFC 5798 5.1.2.1) on the interface they leave
  from, so the macvlan gets a copy of the parent's link-local (``set_link_local``), as
  keepalived does: peers see the same source address as without VMAC, and the parent keeps its
  own. The copy is added
  - nodad: it is the parent's address, already checked for duplicates on this link, and a DAD
    probe from the macvlan would be a frame from the virtual MAC (above) and delay the first
    advert by a second (RetransTimer);
  - deprecated (preferred lifetime 0): the kernel never picks it as a source by itself; vipd
    names it explicitly (IPV6_PKTINFO) for adverts only.

The instance's VRRP socket is on the macvlan, for sending and receiving: adverts leave from the
virtual MAC (so switches keep learning it on the master's port), and a peer's adverts sent from
the same virtual MAC are handed by the macvlan driver to our macvlan only, never to the parent
(it takes them for its own frames coming back); adverts from any other MAC reach the macvlan too.

Creating and removing happen once per instance start/stop, through iproute2; a leftover with
the same name from a crashed run is removed first.
"""
from __future__ import annotations

import contextlib
import ipaddress
import logging
import subprocess

from vipd.net.iproute import IP, TIMEOUT

log = logging.getLogger("vipd")


PARENT_SYSCTLS = {"arp_ignore": "1", "arp_announce": "2"}
# Written on an IPv6 macvlan before it goes up (net.ipv6.conf.<vmac>.*); see the docstring.
IPV6_SYSCTLS = {"addr_gen_mode": "1",          # IN6_ADDR_GEN_MODE_NONE: no EUI-64 link-local
                "accept_dad": "0", "accept_ra": "0", "router_solicitations": "0"}
VMAC_OUI = {4: "00:00:5e:00:01", 6: "00:00:5e:00:02"}     # RFC 5798 7.3


def vmac_address(vrid: int, family: int = 4) -> str:
    return f"{VMAC_OUI[family]}:{vrid:02x}"


def _sysctl_path(family: str, ifname: str, key: str) -> str:
    return f"/proc/sys/net/{family}/conf/{ifname}/{key}"


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run([IP, *args], capture_output=True, text=True, timeout=TIMEOUT,
                         check=False)
    if check and res.returncode:
        raise OSError(f"ip {' '.join(args)}: {res.stderr.strip()}")
    return res


def exists(name: str) -> bool:
    return _ip("link", "show", "dev", name, check=False).returncode == 0


class Vmac:
    """One virtual MAC interface; ``create()`` makes it (replacing a leftover), ``remove()``
    deletes it and restores the parent's ARP setting."""

    def __init__(self, name: str, parent: str, vrid: int, family: int = 4) -> None:
        self.name, self.parent, self.family = name, parent, family
        self.mac = vmac_address(vrid, family)
        self.link_local: str | None = None           # IPv6: the parent's, copied (advert source)
        self._parent_saved: dict[str, str] = {}      # sysctl path -> value before us

    def create(self) -> None:
        remove_leftover(self.name)
        _ip("link", "add", self.name, "link", self.parent, "address", self.mac,
            "type", "macvlan", "mode", "private")
        try:
            if self.family == 6:
                for key, value in IPV6_SYSCTLS.items():
                    _write(_sysctl_path("ipv6", self.name, key), value)
            else:
                self._quiet_ipv4()
            _ip("link", "set", self.name, "up")
        except BaseException:
            _ip("link", "del", self.name, check=False)
            raise
        log.info("VMAC %s (%s) on %s", self.name, self.mac, self.parent)

    def _quiet_ipv4(self) -> None:
        _write(_sysctl_path("ipv6", self.name, "disable_ipv6"), "1")
        _write(_sysctl_path("ipv4", self.name, "arp_ignore"), "1")
        for key, value in PARENT_SYSCTLS.items():
            path = _sysctl_path("ipv4", self.parent, key)
            old = _read(path)
            if old is not None and old != value:
                _write(path, value)
                self._parent_saved[path] = old

    def set_link_local(self, address: str) -> None:
        """IPv6: makes address (the parent's link-local, the adverts' source) the macvlan's one
        link-local, replacing the previous copy; "" removes it. OSError if ip fails."""
        if self.family != 6 or address == self.link_local:
            return
        if self.link_local:
            _ip("-6", "addr", "del", f"{self.link_local}/64", "dev", self.name, check=False)
            self.link_local = None
        if address and ipaddress.ip_address(address).is_link_local:
            _ip("-6", "addr", "replace", f"{address}/64", "dev", self.name, "nodad",
                "preferred_lft", "0")
            self.link_local = address

    def remove(self) -> None:
        _ip("link", "del", self.name, check=False)
        self.link_local = None
        for path, old in self._parent_saved.items():
            with contextlib.suppress(OSError):
                _write(path, old)
        self._parent_saved.clear()


def remove_leftover(name: str) -> bool:
    """Deletes a macvlan called name (a crashed run's); True if there was one."""
    res = _ip("-d", "link", "show", "dev", name, check=False)
    if res.returncode or "macvlan" not in res.stdout:
        return False
    _ip("link", "del", name, check=False)
    return True
