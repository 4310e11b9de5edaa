"""Heartbeat paths (issue 14): which paths between the routers deliver adverts, sans-IO.

VRRP has one path, the VIP's segment: when it breaks between two hosts that still reach their
clients, both become master. An instance may name extra heartbeat paths (a back-to-back cable, a
separate network); the master sends its advert on every path and a backup accepts a valid advert
from any of them, so a split brain needs every path to fail.

Path 0 is the VIP's segment, paths 1.. the configured heartbeat paths in config order. This module
keeps, per path, when a valid advert was last heard, and says once when a path goes silent while
another still delivers (degraded: fix it before it matters) and once when it delivers again.

Which router sent a heartbeat advert: its IP source is its address on the heartbeat path, not the
primary address on the VIP's segment that the RFC 5798 6.4.3 tie-break (equal priority: the higher
primary address wins) and VIPD_MASTER_IP use. A master sends the same advert on all paths in the
same instant, so when a path advert and a VIP-segment advert of the same priority arrive within a
fraction of an interval, the path peer is that VIP-segment sender; the mapping is kept until other
evidence replaces it. A path peer never matched (the VIP segment was broken since start) has no
VIP-segment address: then both routers compare their two addresses on that path, which they see
alike, so exactly one of two equal-priority masters yields. Where the two orders disagree (our
path address is the higher, our VIP-segment address the lower, or the reverse), two equal-priority
masters meeting for the first time may both yield once; that is logged when the pairing is learned,
so the operator can number the path in the same order.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from vipd.core.events import Log

MAIN = 0    # the VIP's own segment


@dataclass(frozen=True)
class HeartbeatPath:
    """One configured heartbeat path: unicast adverts to peers over interface, sent from source."""
    interface: str
    peers: tuple[str, ...]
    source: str


@dataclass(frozen=True, slots=True)
class PathOrigin:
    """A path advert whose sender has no known VIP-segment address: the equal-priority tie-break
    compares the sender's address on the path with ours on the same path."""
    peer: str
    own: str


class PathBook:
    def __init__(self, main_interface: str, paths: tuple[HeartbeatPath, ...],
                 adver_int_s: float, now: float, local_addr: str = "") -> None:
        self.paths = paths
        self._local = local_addr
        self.names = (main_interface or "main",) + tuple(p.interface for p in paths)
        self.last: list[float | None] = [None] * len(self.names)
        self.received = [0] * len(self.names)
        self._start = now
        self._delivering_since = now     # since when some path delivers (after all were silent)
        # same-instant window: a master sends on all paths back to back; far less than an interval
        self._window = adver_int_s / 4
        self._main: tuple[str, int, float] | None = None          # (src, priority, when)
        self._path: dict[int, tuple[str, int, float]] = {}         # path -> (src, priority, when)
        self._peer_main: dict[tuple[int, str], str] = {}            # (path, peer) -> VIP-seg. addr
        self._reported: set[int] = set()                            # paths logged as degraded

    @property
    def local_addr(self) -> str:
        return self._local

    def set_local(self, local_addr: str) -> None:
        """Our VIP-segment address changed (the driver follows the interface's primary)."""
        self._local = local_addr

    def is_peer(self, path: int, src: str) -> bool:
        """The per-path peer list (RFC 5798 unicast: only configured peers are heard)."""
        return src in self.paths[path - 1].peers

    def heard(self, path: int, src: str, priority: int, now: float, silent_after: float,
              actions: list) -> tuple[str, PathOrigin | None]:
        """A valid advert arrived on path: record it, log path changes into actions, and return
        the sender as the state machine should see it (its VIP-segment address when known)."""
        if not any(t is not None and now - t <= silent_after for t in self.last):
            # the first advert after every path was silent (start, or a master came back): the
            # other paths are measured from now, not from their last advert of long ago
            self._delivering_since = now
        self.last[path] = now
        self.received[path] += 1
        if path in self._reported:
            self._reported.discard(path)
            actions.append(Log("info", f"heartbeat path {self.names[path]} delivers adverts again"))
        self._degraded(now, silent_after, actions)
        if path == MAIN:
            self._main = (src, priority, now)
            for p, (peer, prio, when) in self._path.items():
                if prio == priority and now - when <= self._window:
                    self._learn(p, peer, src, actions)
            return src, None
        self._path[path] = (src, priority, now)
        if self._main is not None:
            msrc, mprio, mwhen = self._main
            if mprio == priority and now - mwhen <= self._window:
                self._learn(path, src, msrc, actions)
        mapped = self._peer_main.get((path, src))
        if mapped is not None:
            return mapped, None
        return src, PathOrigin(src, self.paths[path - 1].source)

    def _learn(self, path: int, peer: str, main_src: str, actions: list) -> None:
        if self._peer_main.get((path, peer)) == main_src:
            return
        self._peer_main[(path, peer)] = main_src
        peer_higher_on_path = addr_int(peer) > addr_int(self.paths[path - 1].source)
        peer_higher_on_main = addr_int(main_src) > addr_int(self._local)
        if self._local and peer_higher_on_path != peer_higher_on_main:
            actions.append(Log("warning", f"heartbeat path {self.names[path]}: peer {peer} is"
                                          f" {main_src} on {self.names[MAIN]}, but the two"
                                          " addresses are ordered unlike ours on the two"
                                          " segments; number the path in the same order, or"
                                          " equal-priority masters may both yield once"))

    def _degraded(self, now: float, silent_after: float, actions: list) -> None:
        """Log once each path that is silent while another one delivers."""
        states = self.states(now, silent_after)
        for i, st in enumerate(states):
            if st == "degraded" and i not in self._reported:
                self._reported.add(i)
                ok = [self.names[j] for j, s in enumerate(states) if s == "ok"]
                actions.append(Log("warning", f"heartbeat path {self.names[i]} degraded: no advert"
                                              f" for {now - self._silent_from(i):.3f}s while {', '.join(ok)}"
                                              " delivers"))

    def states(self, now: float, silent_after: float) -> list[str]:
        """Per path: "ok" (heard within silent_after), "degraded" (silent while another path is
        ok), or "silent" (no path hears anything: no master, or we are it; VRRP backups send
        nothing, so a master cannot tell whether its paths work)."""
        fresh = [t is not None and now - t <= silent_after for t in self.last]
        if not any(fresh):
            return ["silent"] * len(fresh)
        return ["ok" if f else
                "degraded" if now - self._silent_from(i) > silent_after else "silent"
                for i, f in enumerate(fresh)]

    def _silent_from(self, path: int) -> float:
        """Since when path has been silent while another one delivers."""
        t = self.last[path]
        return max(self._start if t is None else t, self._delivering_since)

    def status(self, now: float, silent_after: float) -> list[dict]:
        states = self.states(now, silent_after)
        out = []
        for i, name in enumerate(self.names):
            t = self.last[i]
            out.append({"interface": name, "state": states[i], "received": self.received[i],
                        "last_heard_age": None if t is None else round(now - t, 3),
                        **({"peers": list(self.paths[i - 1].peers),
                            "source": self.paths[i - 1].source} if i else {})})
        return out


def addr_int(addr: str) -> int:
    """An address as an integer for the RFC 5798 6.4.3 comparison (0 when unset)."""
    try:
        return int(ipaddress.ip_address(addr))
    except ValueError:
        return 0
