"""Another host claims our VIPs by ARP while we are master: a master we cannot hear.

A partition that drops only VRRP, or a keepalived peer that yields silently when the partition
heals, leaves a master that never hears the other side, while the clients' ARP entries may name
the other side's MAC. The other master's gratuitous ARP for our VIP still reaches us. From then on
we probe with each advert (an ARP request for the VIP from our own address, which changes no
one's entry for the VIP): while the other host holds the VIP its kernel answers; the first probe
nobody answers means it let go, and we re-announce at once.

A probe that leaves with an advert and is answered is asked once more at its deadline: the other
host may be letting go because of that very advert (a keepalived master yields silently to a
higher-priority advert once a partition heals), and its kernel answers the probe that arrived with
the advert before the VIP is gone. So a claimant that lets go within ANSWER_WITHIN of hearing our
advert is seen 2 x ANSWER_WITHIN after it (one more probe per advert during a split, at most);
one that takes longer, at the next advert's probe: one advert interval plus ANSWER_WITHIN.
Pure bookkeeping; the state machine decides when it applies.
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
        self.again = False          # the probe out now is the re-probe of an advert's probe

    def claimed(self, now: float) -> bool:
        """A claim was seen; True when this starts probing."""
        self.last_claim = now
        started = not self.active
        self.active = True
        return started

    def probe_sent(self, now: float, again: bool = False) -> None:
        """A probe left: with an advert, or (again) as the one re-probe of an answered one."""
        self.sent_at = now
        self.deadline = now + ANSWER_WITHIN
        self.again = again

    def unanswered(self, now: float) -> bool:
        """At the deadline: True when nobody answered the probe (probing stops then)."""
        self.deadline = None
        if self.sent_at is not None and self.last_claim < self.sent_at:
            self.reset()
            return True
        return False

    def reprobe_due(self) -> bool:
        """After unanswered() said False: whether to probe once more now (module doc)."""
        return self.active and not self.again
