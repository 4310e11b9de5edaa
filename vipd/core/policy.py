"""Failback policy: when a higher-priority backup may preempt a lower-priority master.

auto       preempt (RFC Preempt_Mode true), but not before preempt_delay has passed since the
           instance started or recovered from FAULT (keepalived's preempt_delay semantics).
semi-auto  do not preempt until an operator approves (``vipd failback``); failback is pending.
none       never preempt (RFC Preempt_Mode false): the role returns only when the master fails.
A drained instance never preempts, and no instance preempts while a failback gate fails
(unless the operator forced the failback).
"""
AUTO = "auto"
SEMI_AUTO = "semi-auto"
NONE = "none"
POLICIES = (AUTO, SEMI_AUTO, NONE)


def may_preempt(failback: str, now: float, preempt_until: float, approved: bool,
                drained: bool, gate_ok: bool = True) -> bool:
    if drained or not gate_ok:
        return False
    if failback == AUTO:
        return now >= preempt_until
    if failback == SEMI_AUTO:
        return approved
    return False
