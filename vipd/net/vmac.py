"""Virtual MAC interfaces (keepalived use_vmac): a macvlan on the instance's interface with the
VRRP virtual router MAC (RFC 5798 7.3: 00-00-5E-00-01-{VRID} for IPv4), so that the VIPs answer
from the same MAC on whichever host is master and a failover moves a switch port, not every
client's ARP cache.

- mode private: the macvlan and its parent do not talk to each other through the macvlan
  driver (broadcast from the wire still reaches both).
- IPv6 is disabled on the macvlan before it goes up: otherwise every *backup* would send
  router/neighbour solicitations from the shared MAC and pull switch ports towards itself.
- arp_ignore = 1 on the macvlan (it answers only for addresses on it: the VIPs, not the host's
  own) and on the parent (which must not answer for the VIPs with its own MAC); arp_announce = 2
  on the parent, or the parent's own ARP requests (replying to a client of the VIP) would carry
  the VIP as sender with the parent's MAC and rewrite the client's entry for the VIP. The
  parent's old values are put back when the macvlan is removed, as keepalived does.

The instance's VRRP socket is on the macvlan, for sending and receiving: adverts leave from the
virtual MAC (so switches keep learning it on the master's port), and a peer's adverts sent from
the same virtual MAC are handed by the macvlan driver to our macvlan only, never to the parent
(it takes them for its own frames coming back); adverts from any other MAC reach the macvlan too.

Creating and removing happen once per instance start/stop, through iproute2; a leftover with
the same name from a crashed run is removed first.
"""
from __future__ import annotations

import contextlib
import logging
import subprocess

from vipd.net.iproute import IP, TIMEOUT

log = logging.getLogger("vipd")


PARENT_SYSCTLS = {"arp_ignore": "1", "arp_announce": "2"}


def vmac_address(vrid: int) -> str:
    return f"00:00:5e:00:01:{vrid:02x}"


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

    def __init__(self, name: str, parent: str, vrid: int) -> None:
        self.name, self.parent, self.mac = name, parent, vmac_address(vrid)
        self._parent_saved: dict[str, str] = {}      # sysctl path -> value before us

    def create(self) -> None:
        remove_leftover(self.name)
        _ip("link", "add", self.name, "link", self.parent, "address", self.mac,
            "type", "macvlan", "mode", "private")
        try:
            _write(_sysctl_path("ipv6", self.name, "disable_ipv6"), "1")
            _write(_sysctl_path("ipv4", self.name, "arp_ignore"), "1")
            for key, value in PARENT_SYSCTLS.items():
                path = _sysctl_path("ipv4", self.parent, key)
                old = _read(path)
                if old is not None and old != value:
                    _write(path, value)
                    self._parent_saved[path] = old
            _ip("link", "set", self.name, "up")
        except BaseException:
            _ip("link", "del", self.name, check=False)
            raise
        log.info("VMAC %s (%s) on %s", self.name, self.mac, self.parent)

    def remove(self) -> None:
        _ip("link", "del", self.name, check=False)
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

