"""Faults on the lab's segment, all made at the hosts' bridge ports in the bridge namespace:
a cut (carrier loss, or a silent port that drops everything), a VRRP-only partition between two
hosts, and an isolation that drops every frame between two hosts. Lab.cut/heal/partition/...
call these; everything lives in the bridge namespace, so the lab's teardown removes it."""
from __future__ import annotations

from collections.abc import Callable

from labhost import Host
from labkit import DROP, frames_from, vrrp_from
from labproc import run_ip

# tc filter preferences at a bridge port, one range per fault kind so each can be undone alone
SILENT_PREF = 1
PARTITION_PREF = 1000      # + the id of the host whose VRRP is dropped
ISOLATE_PREF = 2000        # + the id of the host whose frames are dropped


class Faults:
    """The faults of one lab; addrs(host) gives host's eth0 addresses ("fe80::1/64", ...)."""

    def __init__(self, bridge_ns: str, addrs: Callable[[Host], list[str]]):
        self.bridge_ns, self.addrs = bridge_ns, addrs
        self.silenced: set[str] = set()         # hosts cut silently
        self.clsact: set[str] = set()           # bridge ports with a clsact qdisc

    def _tc(self, batch: list[str], force: bool = False) -> None:
        run_ip((["-force"] if force else []) + ["-n", self.bridge_ns], batch, tool="tc")

    def _bpf(self, host: Host, where: str, pref: int, prog: str) -> list[str]:
        """tc lines for a classic-BPF filter at host's bridge port. Direct action: the program's
        return value is the verdict, so no action modules (gact, skbedit) are needed."""
        new = [] if host.port in self.clsact else [f"qdisc add dev {host.port} clsact"]
        self.clsact.add(host.port)
        return new + [f"filter add dev {host.port} {where} pref {pref} bpf da bytecode '{prog}'"]

    def _set_port(self, host: Host, up: bool) -> None:
        run_ip(["-n", self.bridge_ns, "link", "set", host.port, "up" if up else "down"])

    def cut(self, host: Host, silent: bool = False) -> None:
        """Not silent: the bridge side goes down and the host sees carrier loss. Silent: the link
        stays up but the bridge port drops every frame both ways (a hung switch port)."""
        if not silent:
            self._set_port(host, False)
        elif host.name not in self.silenced:
            self._tc(self._bpf(host, "ingress", SILENT_PREF, DROP)
                     + self._bpf(host, "egress", SILENT_PREF, DROP))
            self.silenced.add(host.name)

    def heal(self, host: Host) -> None:
        """Undoes either cut (a partition stays)."""
        if host.name in self.silenced:
            self.silenced.discard(host.name)
            self._tc([f"filter del dev {host.port} {d} pref {SILENT_PREF}"
                      for d in ("ingress", "egress")])
        self._set_port(host, True)

    def partition(self, a: Host, b: Host) -> None:
        """Drops VRRP (IP protocol 112, IPv4 and IPv6) between a and b; all else still flows.

        Each side's port drops, on the way out, VRRP from the other side, recognised by its MAC
        or its IP source address (so adverts sent from a virtual MAC are caught too).
        """
        batch = []
        for src, dst in ((a, b), (b, a)):
            v6 = [x.split("/")[0] for x in self.addrs(src) if x.startswith("fe80:")] + [src.ip6]
            batch += self._bpf(dst, "egress", PARTITION_PREF + src.id,
                               vrrp_from(src.mac, src.ip4, v6))
        self._tc(batch)

    def unpartition(self, a: Host, b: Host) -> None:
        self._tc([f"filter del dev {dst.port} egress pref {PARTITION_PREF + src.id}"
                  for src, dst in ((a, b), (b, a))], force=True)

    def isolate(self, a: Host, b: Host) -> None:
        """Drops every frame between a and b (by source MAC), both ways; the client and other
        hosts still reach both. For a host cut off from its peers but not from its clients."""
        self._tc([line for src, dst in ((a, b), (b, a))
                  for line in self._bpf(dst, "egress", ISOLATE_PREF + src.id, frames_from(src.mac))])

    def unisolate(self, a: Host, b: Host) -> None:
        self._tc([f"filter del dev {dst.port} egress pref {ISOLATE_PREF + src.id}"
                  for src, dst in ((a, b), (b, a))], force=True)
