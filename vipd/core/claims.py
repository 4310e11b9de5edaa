"""Another host claims our VIPs by ARP (IPv6: by Neighbour Advertisement) while we are master: a
master we cannot hear.

A partition that drops only VRRP, or a keepalived peer that yields silently when the partition
heals, leaves a master that never hears the other side, while the clients' ARP entries may name
the other side's MAC. The other master's gratuitous ARP for our VIP still reaches us. From then on
we probe with each advert (an ARP request, IPv6: a Neighbour Solicitation, for the VIP from our
own address, which changes no one's entry for the VIP): while the other host holds the VIP its
kernel answers; the first probe nobody answers means it let go, and we re-announce at once.

A probe that leaves with an advert and is answered is asked again at its deadline, up to REPROBES
times: the other host may be letting go because of that very advert (a keepalived master yields
silently to a higher-priority advert once a partition heals), and its kernel answers the probe
that arrived with the advert before the VIP is gone; on a loaded host the letting go has been seen
to take over 100 ms. So a claimant that lets go within REPROBES x ANSWER_WITHIN of hearing our
advert is seen at most ANSWER_WITHIN after it lets go (REPROBES more probes per advert during a
split, at most); one that takes longer, at the next advert's probe: one advert interval plus
ANSWER_WITHIN.
Pure bookkeeping; the state machine decides when it applies.
"""
from __future__ import annotations

ANSWER_WITHIN = 0.1      # seconds an ARP reply on one LAN segment may take
REPROBES = 3             # answered probes asked again after each advert's probe (module doc)


class ClaimProbe:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.active = False
        self.last_claim = -1e18
        self.sent_at: float | None = None
        self.deadline: float | None = None
        self.again = 0              # re-probes sent since the last advert's probe

    def claimed(self, now: float) -> bool:
        """A claim was seen; True when this starts probing."""
        self.last_claim = now
        started = not self.active
        self.active = True
        return started

    def probe_sent(self, now: float, again: bool = False) -> None:
        """A probe left: with an advert, or (again) as a re-probe of an answered one."""
        self.sent_at = now
        self.deadline = now + ANSWER_WITHIN
        self.again = self.again + 1 if again else 0

    def unanswered(self, now: float) -> bool:
        """At the deadline: True when nobody answered the probe (probing stops then)."""
        self.deadline = None
        if self.sent_at is not None and self.last_claim < self.sent_at:
            self.reset()
            return True
        return False

    def reprobe_due(self) -> bool:
        """After unanswered() said False: whether to probe again now (module doc)."""
        return self.active and self.again < REPROBES
