"""Failback: when a recovered higher-priority backup takes the role back (docs/failback.md).

One instance's failback state: the policy (core/policy.py), the preempt_delay window, the
failback gates, the operator's approval, and whether a failback is pending (status, metrics).
The instance (core/instance.py) knows the master and the priorities and changes state; this
object only answers "may we preempt now?" and remembers what the operator and the gates said.
"""
from __future__ import annotations

from vipd.core import policy


class Failback:
    def __init__(self, name: str, policy_name: str, preempt_delay: float, gated: bool) -> None:
        self.name = name
        self.policy = policy_name
        self.preempt_delay = preempt_delay
        self.pending = False      # a lower-priority master is tolerated; said once per episode
        self.approved = False     # `vipd failback`: one approval, for the master we know now
        self.forced = False       # `vipd failback --force`: the approval ignores the gates
        self.gate_ok = not gated  # gates configured: closed until the driver says they pass
        self.preempt_until = 0.0
        self.deadline: float | None = None   # end of preempt_delay: the instance looks again then

    def restart(self, now: float) -> None:
        """Entering BACKUP (start, fault cleared): preempt_delay counts from now (keepalived)."""
        self.preempt_until = now + self.preempt_delay
        if self.preempt_delay > 0:
            self.deadline = self.preempt_until

    def window_over(self, now: float) -> bool:
        """preempt_delay has just ended: a lower-priority master we have been tolerating is taken
        over now rather than one Master_Down_Interval later."""
        if self.deadline is None or now < self.deadline:
            return False
        self.deadline = None
        return True

    def gates_pass(self) -> bool:
        return self.gate_ok or self.forced

    def may_preempt(self, now: float, drained: bool, group_yield: bool) -> bool:
        if group_yield:
            return False    # a sync-group partner is in FAULT: the peer group keeps the role
        return policy.may_preempt(self.policy, now, self.preempt_until, self.approved, drained,
                                  self.gates_pass())

    def done(self) -> None:
        """We became master: nothing is pending and an approval is used up."""
        self.pending = self.approved = self.forced = False

    def approve(self, force: bool) -> None:
        self.approved = True
        self.forced = force

    def pending_because(self, drained: bool) -> str | None:
        """A lower-priority master is tolerated: why, the first time only (None after, and when
        nothing will ever fail back or the preempt deadline will take over by itself)."""
        if self.pending or drained or self.policy == policy.NONE:
            return None
        if self.policy == policy.SEMI_AUTO:
            why = f"run 'vipd failback {self.name}' to take the role"
        elif not self.gate_ok:
            why = "waiting for the failback gates to pass"
        else:
            return None      # auto inside preempt_delay: the preempt deadline handles it
        self.pending = True
        return why
