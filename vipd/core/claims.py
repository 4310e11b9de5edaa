"""Another host claims our VIPs by ARP while we are master: a master we cannot hear.

A partition that drops only VRRP, or a keepalived peer that yields silently when the partition
heals, leaves a master that never hears the other side, while the clients' ARP entries may name
the other side's MAC. The other master's gratuitous ARP for our VIP still reaches us. From then on
we probe with each advert (an ARP request for the VIP from our own address, which changes no
one's entry for the VIP): while the other host holds the VIP its kernel answers; the first probe
nobody answers means it let go, and we re-announce at once, within one advert interval plus
ANSWER_WITHIN of it. Pure bookkeeping; the state machine decides when it applies.
"""
from __future__ import annotations

ANSWER_WITHIN = 0.1      # seconds an ARP reply on one LAN segment may take


class ClaimProbe:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.active = False
        self.last_claim = -1e18
        self.sent_at: float | None = None
        self.deadline: float | None = None

    def claimed(self, now: float) -> bool:
        """A claim was seen; True when this starts probing."""
        self.last_claim = now
        started = not self.active
        self.active = True
        return started

    def probe_sent(self, now: float) -> None:
        self.sent_at = now
        self.deadline = now + ANSWER_WITHIN

    def unanswered(self, now: float) -> bool:
        """At the deadline: True when nobody answered the probe (probing stops then)."""
        self.deadline = None
        if self.sent_at is not None and self.last_claim < self.sent_at:
            self.reset()
            return True
        return False
