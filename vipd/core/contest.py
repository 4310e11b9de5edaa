"""Meeting another master while data decides (docs/data-safety.md): the episode's bookkeeping.

An episode lasts while the other master's adverts keep coming less than three of its intervals
apart. Its first advert asks the driver for a comparison; the decision is held until the answer or
``hold`` seconds; a priority-0 advert from that master (it yielded) ends the episode. What a
verdict *means* for the state machine stays in instance.py; this only says when to ask, when to
wait, and which verdict belongs to whom.
"""
from __future__ import annotations

from vipd.core import succession

ASK, HOLD, SETTLE = "ask", "hold", "settle"


class Contest:
    def __init__(self, hold: float) -> None:
        self.hold = hold
        self.other: tuple[str, int, int] | None = None   # (address, priority, interval cs)
        self.seen = -1e18
        self.pending: str | None = None                  # asked about, no answer yet
        self.deadline: float | None = None               # end of the hold
        self.data: tuple[str, succession.Comparison, float] | None = None   # (peer, verdict, when)

    def _gap(self) -> float:
        return 3 * self.other[2] / 100.0 + 0.1

    def current(self, src: str, now: float) -> bool:
        """src is the other master of an episode still going on."""
        return self.other is not None and self.other[0] == src and now - self.seen <= self._gap()

    def heard(self, src: str, priority: int, int_cs: int, now: float) -> str:
        """An advert from another master: ASK (a new episode), HOLD (waiting) or SETTLE."""
        fresh = self.current(src, now)
        self.other, self.seen = (src, priority, int_cs), now
        if not fresh:
            self.data = None
            self.pending = src
            self.deadline = now + self.hold
            return ASK
        return HOLD if self.deadline is not None else SETTLE

    def answered(self, peer: str, cmp: succession.Comparison, now: float) -> bool:
        """Record an answer; True when it is for the episode going on (then settle it now)."""
        if peer != self.pending:
            return False            # the answer to an episode that is over
        self.pending = self.deadline = None
        self.data = (peer, cmp, now)
        return self.current(peer, now)

    def verdict(self) -> succession.Comparison | None:
        if self.data and self.other and self.data[0] == self.other[0]:
            return self.data[1]
        return None

    def expired(self, now: float) -> bool:
        """At the hold's deadline: True when an episode is waiting for its verdict."""
        self.deadline = None
        return self.other is not None

    def gone(self, src: str) -> None:
        """src sent priority 0 (it yielded): whatever its Redis says by now, it follows us."""
        if self.other is not None and self.other[0] == src:
            self.other = self.pending = self.deadline = None

    def reset(self) -> None:
        self.other = None
        self.deadline = None
