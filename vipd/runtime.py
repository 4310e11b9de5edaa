"""One configured instance as the driver sees it: config + core + the bytes it sends.

Adverts are encoded once per priority and re-sent; GARP/NA frames are built once per VIP.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from vipd.config import InstanceConfig
from vipd.core import packet
from vipd.core.instance import Instance, RouterParams
from vipd import holdings
from vipd.net import announce

log = logging.getLogger("vipd")


class Runtime:
    def __init__(self, cfg: InstanceConfig, local_addr: str, now: float,
                 synced: bool = False) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.local_addr = local_addr
        self.vip_addrs = tuple(str(v.ip) for v in cfg.vips)
        auth_data = packet.password_bytes(cfg.auth_pass) if cfg.auth_pass else b""
        self.core = Instance(cfg.name, RouterParams(
            vrid=cfg.vrid, priority=cfg.priority, version=cfg.version,
            adver_int_cs=cfg.adver_int_cs, family=cfg.family, vips=self.vip_addrs,
            local_addr=local_addr, unicast_peers=tuple(cfg.unicast_peers),
            auth_type=1 if cfg.auth_pass else 0, auth_data=auth_data,
            failback=cfg.failback, preempt_delay=cfg.preempt_delay,
            gated=bool(cfg.failback_gate), synced=synced, interface=cfg.interface,
            heartbeat=cfg.heartbeat, garp_refresh=cfg.garp_refresh,
            # the driver answers within the data source's timeout; the margin lets it
            data_hold=cfg.data_source.timeout + 0.1 if cfg.data_source else 0.0), now)
        self._auth_data = auth_data
        self.multicast = not cfg.unicast_peers
        self.dsts = (tuple(cfg.unicast_peers) if cfg.unicast_peers
                     else (packet.MCAST_V4 if cfg.family == 4 else packet.MCAST_V6,))
        self._adverts: dict[int, tuple[tuple[bytes, str], ...]] = {}
        self.frames: tuple[tuple[str, bytes], ...] | None = None   # (dev, GARP/NA) built once
        # the last datagram decoded for this instance (see Daemon._on_readable)
        self.rx_payload = self.rx_src = self.rx_dst = None
        self.rx_advert: packet.Advert | None = None
        self.deadline: float | None = None    # what the driver's heap holds for us
        self.vips_on = False
        self.vmac = None                      # vipd.net.vmac.Vmac with use_vmac
        self.vrrp_ifname = cfg.interface      # where its VRRP socket is (the VMAC if any)

    def set_local_addr(self, local_addr: str) -> None:
        """The source address changed: adverts (checksummed over it) are encoded again."""
        self.local_addr = local_addr
        self._adverts.clear()

    def adverts(self, priority: int) -> tuple[tuple[bytes, str], ...]:
        """(payload, dst) pairs for this priority, encoded on first use."""
        cached = self._adverts.get(priority)
        if cached is None:
            cached = self._adverts[priority] = self.encode_advert(priority, self.local_addr,
                                                                  self.dsts)
        return cached

    def encode_advert(self, priority: int, src: str,
                      dsts: tuple[str, ...]) -> tuple[tuple[bytes, str], ...]:
        """(payload, dst) pairs of our advert at this priority sent from src (the checksum covers
        the addresses): the VIP segment's, or a heartbeat path's."""
        adv = packet.Advert(version=self.cfg.version, vrid=self.cfg.vrid, priority=priority,
                            adver_int_cs=self.cfg.adver_int_cs, addresses=self.vip_addrs,
                            family=self.cfg.family, auth_type=1 if self._auth_data else 0,
                            auth_data=self._auth_data)
        return tuple((packet.encode(adv, src, dst, self.cfg.checksum), dst) for dst in dsts)

    def announce_frames(self, mac_of: Callable[[str], bytes], forwarding_of: Callable[[str], bool]
                        ) -> tuple[tuple[str, bytes], ...]:
        """(dev, frame) for every held address (excluded VIPs too), each from the dev it is on."""
        if self.frames is None:
            frames = []
            for h in self.cfg.held:
                dev = h.dev or self.cfg.vip_dev
                if h.address.version == 4:
                    frames.append((dev, announce.garp_frame(mac_of(dev), str(h.address.ip))))
                else:
                    # sent from the VIP itself, as keepalived does
                    frames.append((dev, announce.unsolicited_na_frame(
                        mac_of(dev), str(h.address.ip), router=forwarding_of(dev))))
            self.frames = tuple(frames)
        return self.frames

    @property
    def became_master(self) -> int:
        """Counts MASTER episodes, so a delayed GARP burst can tell it is still in its own."""
        return self.core.counters.get("became_master", 0)

    def hook_env(self, state: str, prev: str) -> dict[str, str]:
        c = self.core
        return {
            "VIPD_INSTANCE": self.name, "VIPD_VRID": str(self.cfg.vrid), "VIPD_STATE": state,
            "VIPD_PREV_STATE": prev, "VIPD_PRIORITY": str(c.priority),
            "VIPD_INTERFACE": self.cfg.interface,
            "VIPD_VIPS": " ".join(str(v) for v in self.cfg.vips),
            "VIPD_MASTER_IP": c.master_ip or "",
            # the last other host seen as master: a MASTER hook may compare its data with ours
            "VIPD_LAST_MASTER_IP": c.last_other_master or "",
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        }

    def status(self, now: float, wall_offset: float, checks: dict, hook: dict | None = None) -> dict:
        c = self.core
        ds = self.cfg.data_source
        yields = [(t, r) for t, _, _, r in c.history if r.startswith("yield:")]
        return {
            "name": self.name, "vrid": self.cfg.vrid, "interface": self.cfg.interface,
            "family": self.cfg.family, "version": self.cfg.version,
            "state": str(c.state), "priority": self.cfg.priority, "effective_priority": c.priority,
            "master_ip": c.master_ip, "local_addr": self.local_addr,
            "vips": [str(v) for v in self.cfg.vips], "vips_on": self.vips_on,
            "failback": self.cfg.failback, "failback_pending": c.failback.pending,
            "drained": c.drained, "faults": sorted(c.faults),
            "checks": checks, "counters": dict(sorted(c.counters.items())),
            "since": round(c.since + wall_offset, 3),
            "advert_interval": self.cfg.adver_int_cs / 100,
            "master_down_interval": round(c.master_down_interval, 6),
            "data_source": ds.redis if ds else None,
            "data": None if c.contest.data is None else {
                "peer": c.contest.data[0], "verdict": str(c.contest.data[1].verdict),
                "reason": c.contest.data[1].why,
                "time": round(c.contest.data[2] + wall_offset, 3)},
            "last_yield": None if not yields else {
                "time": round(yields[-1][0] + wall_offset, 3), "reason": yields[-1][1]},
            "refused_promotion": None if c.refused is None else {
                "reason": c.refused[0], "time": round(c.refused[1] + wall_offset, 3)},
            "hook": hook,
            "transitions": [{"time": round(t + wall_offset, 3), "from": a, "to": b, "reason": r}
                            for t, a, b, r in c.history],
            **holdings.status(self.cfg, self.vips_on),
        }

