"""Heartbeat paths, driver side (issue 14): the sockets of the extra advert paths.

One VrrpSocket per (interface, family) that a heartbeat path uses, demultiplexed by VRID (the
config refuses a path whose interface and VRID another instance uses). The master's advert goes,
after the VIP segment's, unicast to every peer of every path from the path's source address; the
bytes are encoded once per priority. A received advert goes to the instance's core with the path's
index: the core applies every receive check (TTL, checksum, auth, the path's peer list) and keeps
the per-path bookkeeping (vipd/core/paths.py). Adverts on a path are unicast, so nothing appears on
a segment where other routers use the VRID.
"""
from __future__ import annotations

import logging
import socket
from collections.abc import Callable

from vipd.core import packet
from vipd.net.rawsock import VrrpSocket
from vipd.runtime import Runtime

log = logging.getLogger("vipd")
RX_BATCH = 64


class Heartbeats:
    def __init__(self, loop, apply: Callable[[Runtime, list], None],
                 rx_error: Callable[[str], None]) -> None:
        self.loop = loop
        self._apply = apply
        self._rx_error = rx_error
        self._socks: dict[tuple[str, int], VrrpSocket] = {}
        self._demux: dict[tuple[str, int], dict[int, tuple[Runtime, int]]] = {}
        # instance -> priority -> ((socket, payload, dst, src), ...). By Runtime, not by name: on
        # a reload the changed instance's new Runtime is added while the old one's last actions
        # (its priority-0 advert) may still wait in the applier's queue; each keeps its own.
        self._adverts: dict[Runtime, dict[int, tuple]] = {}

    def add(self, rt: Runtime) -> None:
        """Open (or share) the sockets of rt's paths. A path whose interface cannot be used is
        logged and stays silent (the instance runs on its other paths) until its link comes up."""
        self._adverts[rt] = {}
        for i, path in enumerate(rt.cfg.heartbeat, 1):
            key = (path.interface, rt.cfg.family)
            self._demux.setdefault(key, {})[rt.cfg.vrid] = (rt, i)
            self._open(key)

    def remove(self, rt: Runtime) -> None:
        """Forget rt's paths; entries a newer Runtime of the same name took over stay."""
        self._adverts.pop(rt, None)
        for path in rt.cfg.heartbeat:
            key = (path.interface, rt.cfg.family)
            by_vrid = self._demux.get(key)
            if by_vrid is None or by_vrid.get(rt.cfg.vrid, (None,))[0] is not rt:
                continue
            del by_vrid[rt.cfg.vrid]
            if not by_vrid:
                del self._demux[key]
                self._close(key)

    def link_changed(self, ifname: str, up: bool) -> None:
        """A link came up: open the paths' sockets that could not be opened, and reopen those
        bound to an earlier interface of that name (deleted and re-created: a new ifindex, and
        the old socket would hear nothing), so a path comes back without a restart."""
        if not up:
            return
        for key in [k for k in self._demux if k[0] == ifname]:
            sock = self._socks.get(key)
            if sock is not None:
                try:
                    if socket.if_nametoindex(ifname) == sock.ifindex:
                        continue
                except OSError:
                    continue
                log.info("heartbeat path %s re-created: socket reopened", ifname)
                self._close(key)
            self._open(key)

    def _open(self, key: tuple[str, int]) -> None:
        if key in self._socks:
            return
        try:
            sock = VrrpSocket(*key)
        except OSError as e:
            names = ", ".join(rt.name for rt, _ in self._demux[key].values())
            log.error("[%s] heartbeat path %s unusable: %s", names, key[0], e)
            return
        self._socks[key] = sock
        self.loop.add_reader(sock.fileno(), self._on_readable, sock, self._demux[key], key[1])
        self._forget_encoded()

    def _close(self, key: tuple[str, int]) -> None:
        sock = self._socks.pop(key, None)
        if sock is not None:
            self.loop.remove_reader(sock.fileno())
            sock.close()
            self._forget_encoded()

    def _forget_encoded(self) -> None:
        """The encoded adverts name their sockets: rebuilt on the next send."""
        for by_prio in self._adverts.values():
            by_prio.clear()

    # ---- send ----------------------------------------------------------------------------

    def send(self, rt: Runtime, priority: int) -> None:
        for sock, payload, dst, src in self._encoded(rt, priority):
            try:
                sock.send(payload, dst, src)
            except OSError as e:       # no carrier, path down: the other paths still carry it
                rt.core.count("send_errors")
                log.debug("[%s] heartbeat send to %s on %s: %s", rt.name, dst, sock.ifname, e)

    def _encoded(self, rt: Runtime, priority: int) -> tuple:
        by_prio = self._adverts.get(rt)
        if by_prio is None:
            return ()
        cached = by_prio.get(priority)
        if cached is None:
            out = []
            for path in rt.cfg.heartbeat:
                sock = self._socks.get((path.interface, rt.cfg.family))
                if sock is None:
                    continue
                for payload, dst in rt.encode_advert(priority, path.source, path.peers):
                    out.append((sock, payload, dst, path.source))
            cached = by_prio[priority] = tuple(out)
        return cached

    # ---- receive -------------------------------------------------------------------------

    def _on_readable(self, sock: VrrpSocket, by_vrid: dict, family: int) -> None:
        now = self.loop.time()
        for src, dst, ttl, payload in sock.recv_batch(RX_BATCH, self._rx_error):
            hit = by_vrid.get(payload[1]) if len(payload) > 1 else None
            if hit is None:
                self._rx_error("unknown_vrid")
                continue
            rt, path = hit
            try:
                adv = packet.decode(payload, src, dst, family)
            except packet.MalformedPacket as e:
                rt.core.count_discard(e.reason)
                continue
            self._apply(rt, rt.core.on_advert(adv, src, ttl, False, now, path=path))

    # ---- status --------------------------------------------------------------------------

    @staticmethod
    def status(rt: Runtime, now: float, link_up: Callable[[str], bool | None]) -> dict:
        """The "paths" of `vipd status`: per path its state, the age of the last advert heard,
        its link; "paths_down" names the paths that are degraded or without carrier."""
        book = rt.core.paths
        if book is None:
            return {}
        paths = book.status(now, rt.core.master_down_interval)
        for p in paths:
            p["link"] = link_up(p["interface"])
        down = [p["interface"] for p in paths if p["state"] == "degraded" or p["link"] is False]
        return {"paths": paths, "paths_down": down}
