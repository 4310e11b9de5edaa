"""Inputs to and outputs from the state machine, as frozen dataclasses (h11 style).

Inputs are handed to ``Instance.handle(event, now)``; outputs are the actions it returns, which the
driver carries out in order. Nothing here does I/O.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from vipd.core.packet import Advert
from vipd.core.succession import ReplInfo


class State(str, enum.Enum):
    INIT = "INIT"
    BACKUP = "BACKUP"
    MASTER = "MASTER"
    FAULT = "FAULT"

    def __str__(self) -> str:
        return self.value


# ---- input events -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Startup:
    """The instance is configured and its interface usable (RFC 5798 6.4.1 Startup event)."""


@dataclass(frozen=True, slots=True)
class Shutdown:
    """The daemon stops or the instance is removed (RFC 5798 6.4.2/6.4.3 Shutdown event)."""


@dataclass(frozen=True, slots=True)
class AdvertReceived:
    advert: Advert
    src: str          # IP source of the datagram: the sender's primary address
    ttl: int          # TTL / hop limit as received
    multicast: bool   # sent to 224.0.0.18 / ff02::12 (TTL 255 is required then)
    path: int = 0     # 0: the VIP's segment; i: heartbeat path i (config order, from 1)


@dataclass(frozen=True, slots=True)
class FaultChanged:
    """A tracked interface or weight-0 check went bad (faults non-empty) or all came good."""
    faults: frozenset[str]


@dataclass(frozen=True, slots=True)
class PriorityChanged:
    """Effective priority changed through weighted tracking (already clamped 1..254)."""
    priority: int


@dataclass(frozen=True, slots=True)
class FailbackApproved:
    """Operator approved a pending semi-auto failback (``vipd failback``); ``force`` skips the
    failback gates."""
    force: bool = False


@dataclass(frozen=True, slots=True)
class GateChanged:
    """All failback gates pass (ok) or not; a gate holds back preemption only, never failover."""
    ok: bool


@dataclass(frozen=True, slots=True)
class DrainChanged:
    drained: bool


@dataclass(frozen=True, slots=True)
class DataCompared:
    """The driver's answer to CompareData: INFO from our Redis and from the peer's (None: it did
    not answer in time or answered garbage)."""
    peer: str
    ours: ReplInfo | None
    theirs: ReplInfo | None


@dataclass(frozen=True, slots=True)
class PromotionRefused:
    """The master hook refused the promotion (exit status 75): its last output line says why."""
    reason: str


@dataclass(frozen=True, slots=True)
class VipClaimed:
    """An ARP packet from another MAC gave one of our VIPs as its sender address, or a Neighbour
    Advertisement from another MAC gave one as its target (IPv6)."""
    mac: str


@dataclass(frozen=True, slots=True)
class SourceAddressChanged:
    """The address adverts are sent from changed ("" while there is none): the interface's primary
    IPv4 / link-local IPv6 address (RFC 5798 5.1.1.1, 5.1.2.1), which is also what an equal-priority
    election compares (RFC 5798 6.4.3)."""
    address: str


@dataclass(frozen=True, slots=True)
class GroupCommand:
    """From the instance's sync group (vipd.core.syncgroup): ``promote`` (every member is ready:
    take the role now), ``demote`` (a partner left MASTER: leave too), ``yield`` / ``unyield``
    (a partner is in FAULT: never preempt, time the down timer as priority 1)."""
    command: str
    reason: str


# ---- output actions -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendAdvert:
    """Send an advert at this priority; the driver keeps the encoded bytes per priority."""
    priority: int


@dataclass(frozen=True, slots=True)
class AddVips:
    pass


@dataclass(frozen=True, slots=True)
class RemoveVips:
    pass


@dataclass(frozen=True, slots=True)
class Announce:
    """Gratuitous ARP / unsolicited NA burst for the VIPs (``refresh``: one round, not a burst)."""
    refresh: bool = False


@dataclass(frozen=True, slots=True)
class Notify:
    """Run the notify hook for ``state`` (MASTER/BACKUP/FAULT or STOP)."""
    state: str
    prev_state: str
    reassert: bool = False   # master keeps its role after hearing a lower-priority master


@dataclass(frozen=True, slots=True)
class CompareData:
    """Fetch INFO from our Redis and from ``peer``'s, then hand the core a DataCompared."""
    peer: str


@dataclass(frozen=True, slots=True)
class ProbeVips:
    """Send an ARP request (IPv4) or a Neighbour Solicitation (IPv6) for a VIP from our own
    address: a host that holds it will answer."""


@dataclass(frozen=True, slots=True)
class Transition:
    old: State
    new: State
    reason: str


@dataclass(frozen=True, slots=True)
class Log:
    level: str   # "info" | "warning"
    message: str


NO_ACTIONS: tuple = ()
