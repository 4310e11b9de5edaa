"""What the core knows about one virtual router (built by the driver from config), and the
receive checks that depend only on it (RFC 5798/9568 section 7.1, RFC 3768 7.1 for v2).

The codec checks syntax (core/packet.py); these checks compare a well-formed advert with this
router's configuration; the state machine (core/instance.py) acts on what passes.
"""
from __future__ import annotations

from dataclasses import dataclass

from vipd.core import policy
from vipd.core.packet import Advert, Reason
from vipd.core.paths import HeartbeatPath

OWNER_PRIORITY = 255     # RFC 5798 6.1: the address owner


@dataclass(frozen=True)
class RouterParams:
    vrid: int
    priority: int
    version: int = 3
    adver_int_cs: int = 100
    family: int = 4
    vips: tuple[str, ...] = ()           # canonical addresses, no prefix length
    local_addr: str = ""                 # the address we send from: equal-priority tie-break
    unicast_peers: tuple[str, ...] = ()
    auth_type: int = 0                   # v2 only
    auth_data: bytes = b""               # v2 only, 8 bytes on the wire
    failback: str = policy.AUTO
    preempt_delay: float = 0.0
    gated: bool = False                  # failback gates configured: closed until told otherwise
    data_hold: float = 0.0               # data source configured: longest wait for a data verdict
    synced: bool = False                 # in a sync group: MASTER only when the group says so
    interface: str = ""                  # the VIP's segment, for messages about paths
    heartbeat: tuple[HeartbeatPath, ...] = ()   # extra unicast advert paths (issue 14)
    garp_refresh: float = 0.0            # while MASTER, one GARP/NA round this often; 0: off

    def refusal(self, adv: Advert, src: str, ttl: int, multicast: bool, path: int) -> Reason | None:
        """Why this router discards ``adv``, or None. Heartbeat paths (``path`` > 0) have their
        own peer lists, which the instance's PathBook checks."""
        # A heartbeat path is a direct link: TTL 255 is required there as for multicast, so an
        # advert from beyond a router cannot reset our timer.
        if (multicast or path) and ttl != 255:
            return Reason.TTL
        if adv.version != self.version:
            return Reason.BAD_VERSION
        if adv.family != self.family:
            return Reason.FAMILY
        if self.version == 2:
            # RFC 3768 7.1: auth must match, and the interval must equal ours.
            if adv.auth_type != self.auth_type or (self.auth_type and adv.auth_data != self.auth_data):
                return Reason.AUTH
            if adv.adver_int_cs != self.adver_int_cs:
                return Reason.INTERVAL_MISMATCH
        if not path and self.unicast_peers and src not in self.unicast_peers:
            return Reason.NOT_PEER
        return None
