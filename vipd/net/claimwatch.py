"""The watches for other hosts' claims of our VIPs, both families (vipd/core/claims.py decides
what a claim means): ARP for IPv4 VIPs (vipd/net/arpwatch.py), Neighbour Advertisements for IPv6
VIPs (vipd/net/ndwatch.py); and the probe that asks whether the other host still holds one.
"""
from __future__ import annotations

from vipd.net.arpwatch import ArpWatch, probe_frame
from vipd.net.ndwatch import NdWatch, ns_probe_frame

_KINDS = {4: (ArpWatch, "ARP"), 6: (NdWatch, "Neighbour Advertisements")}


def family_of(vip: str) -> int:
    return 6 if ":" in vip else 4


def claim_probe(mac: bytes, src: str, vip: str) -> bytes:
    """The frame asking who holds vip, sent from our own address src of the same family: an ARP
    request or a Neighbour Solicitation. Neither changes anyone's entry for vip."""
    return (ns_probe_frame if family_of(vip) == 6 else probe_frame)(mac, src, vip)


class ClaimWatchers:
    """One watch per interface and address family with VIPs, rebuilt when that set of VIPs
    changes; on_claim(ifname, vip, mac) for each claim read, dropped(reason) for each malformed
    frame (the driver counts it)."""

    def __init__(self, loop, on_claim, dropped) -> None:
        self.loop = loop
        self.on_claim = on_claim
        self.dropped = dropped
        self.watches: dict[tuple[str, int], ArpWatch | NdWatch] = {}

    def sync(self, wanted: dict[str, set[str]]) -> list[str]:
        """Watch exactly these interfaces for these VIPs (either family); returns the errors of
        those that could not be watched (claims there go unseen; nothing else depends on them).
        Call it once per batch of changes: each changed set costs a new socket and filter."""
        split: dict[tuple[str, int], list[str]] = {}
        for ifname, vips in wanted.items():
            for vip in vips:
                split.setdefault((ifname, family_of(vip)), []).append(vip)
        errors = []
        for key, w in list(self.watches.items()):
            if w.vips != sorted(split.get(key, ())):
                self._close(key)
        for key, vips in split.items():
            if key in self.watches:
                continue
            cls, what = _KINDS[key[1]]
            try:
                w = self.watches[key] = cls(key[0], sorted(vips))
            except OSError as e:
                errors.append(f"cannot watch {what} on {key[0]}: {e.strerror or e}")
                continue
            self.loop.add_reader(w.fileno(), self._readable, w)
        return errors

    def _readable(self, w: ArpWatch | NdWatch) -> None:
        try:
            claims = w.read(self.dropped)
        except OSError:
            return
        for vip, mac in claims:
            self.on_claim(w.ifname, vip, mac)

    def _close(self, key: tuple[str, int]) -> None:
        w = self.watches.pop(key)
        self.loop.remove_reader(w.fileno())
        w.close()

    def close(self) -> None:
        for key in list(self.watches):
            self._close(key)
