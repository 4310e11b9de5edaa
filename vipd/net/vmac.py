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
- Multicast membership reports (MLD, IGMP) are the frames the kernel sends from the macvlan by
  itself: joining ff02::12 / 224.0.0.18 for the VRRP socket, and (IPv6) the solicited-node group
  of every address on it, which a master that steps down leaves again, 10-40 ms after removing
  its VIPs. So a tc filter drops the macvlan's outgoing reports (``MUTE_REPORTS``), and the
  parent joins the same groups (``Vmac.join_on_parent``), so MLD/IGMP-snooping switches still
  forward the VRRP group and the VIPs' solicited-node groups to this port, learnt from the
  parent's own MAC. keepalived does the same with an nftables rule that drops the reports on
  the macvlan and duplicates them out of the parent.
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

With unicast peers the VRRP socket stays on the parent, for sending and receiving: a unicast
advert is addressed to the peer host's own address, so it is delivered to the peer's parent and
never to its macvlan (a socket there heard nothing: two masters). Adverts then leave from the
host's own MAC, as keepalived's do: it turns vmac_xmit_base on for every use_vmac instance with
unicast peers ("unicast with use_vmac requires vmac_xmit_base - setting", keepalived.conf(5)).
The VIPs and their GARP/NA stay on the VMAC.

Creating and removing happen once per instance start/stop, through iproute2 (ip, tc); a
leftover with the same name from a crashed run is removed first.
"""
from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import shutil
import socket
import struct
import subprocess

from vipd.net.announce import solicited_node
from vipd.net.iproute import IP, TIMEOUT
from vipd.net.rawsock import VRRP_GROUP4, VRRP_GROUP6

log = logging.getLogger("vipd")


PARENT_SYSCTLS = {"arp_ignore": "1", "arp_announce": "2"}
# Written on an IPv6 macvlan before it goes up (net.ipv6.conf.<vmac>.*); see the docstring.
IPV6_SYSCTLS = {"addr_gen_mode": "1",          # IN6_ADDR_GEN_MODE_NONE: no EUI-64 link-local
                "accept_dad": "0", "accept_ra": "0", "router_solicitations": "0"}
VMAC_OUI = {4: "00:00:5e:00:01", 6: "00:00:5e:00:02"}     # RFC 5798 7.3
TC = shutil.which("tc", path="/usr/sbin:/sbin:/usr/bin:/bin") or "/usr/sbin/tc"

# Classic BPF for a tc egress filter on the macvlan (direct action: no action modules): drop MLD
# reports and dones (ICMPv6 131, 132, 143 after the 8-byte Hop-by-Hop Router Alert header Linux
# puts on them, RFC 3810 5) and IGMP (IPv4 protocol 2); TC_ACT_UNSPEC for everything else.
#    0 ldh [12]        1 jeq #0x86dd,2,10   2 ldb [20]         3 jeq #0,4,13 (Hop-by-Hop)
#    4 ldb [54]        5 jeq #58,6,13       6 ldb [62]         7 jeq #131,14,8
#    8 jeq #132,14,9   9 jeq #143,14,13    10 jeq #0x800,11,13 11 ldb [23]
#   12 jeq #2,14,13   13 ret #-1 (pass)    14 ret #2 (TC_ACT_SHOT)
MUTE_REPORTS = ("15,40 0 0 12,21 0 8 34525,48 0 0 20,21 0 9 0,48 0 0 54,21 0 7 58,48 0 0 62,"
                "21 6 0 131,21 5 0 132,21 4 3 143,21 0 2 2048,48 0 0 23,21 1 0 2,"
                "6 0 0 4294967295,6 0 0 2")


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


ETH_P_LOOPBACK = 0x9000       # Ethernet Configuration Testing Protocol (a frame to oneself)


def switch_refresh_frame(mac: str) -> bytes:
    """A frame from the virtual MAC to the virtual MAC (an ECTP reply, padded to 60 bytes).

    With unicast peers adverts leave from the parent's MAC (see the module), so nothing the
    master sends every interval tells the switch where the virtual MAC is; after a takeover the
    old master never heard of (a backup that went master for less than an interval, its one
    advert lost) the switch keeps forwarding the VIP's traffic to the backup. The master sends
    this with each advert: a switch learns its source on our port and, finding the destination
    on that same port, drops it, so no host sees it and no ARP cache changes."""
    raw = bytes.fromhex(mac.replace(":", ""))
    frame = raw + raw + ETH_P_LOOPBACK.to_bytes(2, "big") + b"\x00\x00\x01\x00\x00\x00"
    return frame.ljust(60, b"\x00")


def for_instance(cfg) -> "Vmac":
    """The Vmac of an InstanceConfig with use_vmac (its VIPs without a dev of their own)."""
    vips = [str(h.address.ip) for h in cfg.held if (h.dev or cfg.vip_dev) == cfg.vmac_name]
    return Vmac(cfg.vmac_name, cfg.interface, cfg.vrid, cfg.family, vips)


def exists(name: str) -> bool:
    return _ip("link", "show", "dev", name, check=False).returncode == 0


class Vmac:
    """One virtual MAC interface; ``create()`` makes it (replacing a leftover), ``remove()``
    deletes it and restores the parent's ARP setting."""

    def __init__(self, name: str, parent: str, vrid: int, family: int = 4,
                 vips: list[str] = ()) -> None:
        self.name, self.parent, self.family, self.vips = name, parent, family, list(vips)
        self.mac = vmac_address(vrid, family)
        self.refresh_frame = switch_refresh_frame(self.mac)   # sent with unicast adverts
        self._groups: socket.socket | None = None    # holds the parent's memberships
        self.link_local: str | None = None           # IPv6: the parent's, copied (advert source)
        self._parent_saved: dict[str, str] = {}      # sysctl path -> value before us

    def present(self) -> bool:
        """Whether the macvlan exists (one ioctl; deleting the parent deletes it too)."""
        try:
            socket.if_nametoindex(self.name)
        except OSError:
            return False
        return True

    def create(self) -> None:
        """Makes the macvlan (again: after its parent was deleted and re-created, too)."""
        remove_leftover(self.name)
        self.link_local = None
        _ip("link", "add", self.name, "link", self.parent, "address", self.mac,
            "type", "macvlan", "mode", "private")
        try:
            if self.family == 6:
                for key, value in IPV6_SYSCTLS.items():
                    _write(_sysctl_path("ipv6", self.name, key), value)
            else:
                self._quiet_ipv4()
            self._mute_reports()                 # before up: the first joins happen then
            _ip("link", "set", self.name, "up")
            self.join_on_parent()
        except BaseException:
            self.remove()
            raise
        log.info("VMAC %s (%s) on %s", self.name, self.mac, self.parent)

    def _mute_reports(self) -> bool:
        """MUTE_REPORTS on the macvlan's egress; False (logged) where tc or cls_bpf is missing:
        the VMAC works, but each report moves a switch's entry for it to this port."""
        for argv in (("qdisc", "add", "dev", self.name, "clsact"),
                     ("filter", "add", "dev", self.name, "egress", "pref", "1", "bpf", "da",
                      "bytecode", MUTE_REPORTS)):
            try:
                res = subprocess.run([TC, *argv], capture_output=True, text=True,
                                     timeout=TIMEOUT, check=False)
            except (OSError, subprocess.TimeoutExpired) as e:
                res = subprocess.CompletedProcess(argv, 1, "", str(e))
            if res.returncode:
                log.warning("VMAC %s: cannot drop its MLD/IGMP reports (tc %s: %s); switches"
                            " will briefly learn the virtual MAC on this port at each report",
                            self.name, argv[0], res.stderr.strip())
                return False
        return True

    def join_on_parent(self) -> None:
        """The groups the macvlan joins, joined on the parent too (its reports carry the
        parent's MAC): the VRRP group, and for IPv6 the VIPs' solicited-node groups (so that
        neighbour solicitations for a VIP reach this port). Held until remove()."""
        if self._groups is not None:      # a re-created parent: those were on the old one
            self._groups.close()
            self._groups = None
        index = socket.if_nametoindex(self.parent)
        if self.family == 6:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            groups = [VRRP_GROUP6, *dict.fromkeys(solicited_node(v) for v in self.vips)]
            reqs = [(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                     socket.inet_pton(socket.AF_INET6, g) + struct.pack("=i", index))
                    for g in groups]
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            reqs = [(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, struct.pack(
                "=4s4si", socket.inet_aton(VRRP_GROUP4), bytes(4), index))]
        try:
            for level, opt, req in reqs:
                try:
                    sock.setsockopt(level, opt, req)
                except OSError as e:
                    if e.errno != errno.EADDRINUSE:
                        raise
        except BaseException:
            sock.close()
            raise
        self._groups = sock

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
        _ip("link", "del", self.name, check=False)     # its qdisc and filter go with it
        if self._groups is not None:
            self._groups.close()      # the kernel drops the parent's memberships with it
            self._groups = None
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
