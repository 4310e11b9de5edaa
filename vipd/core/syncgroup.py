"""Sync groups (keepalived vrrp_sync_group), sans-IO: instances that are MASTER together.

The group is a referee over its members' own state machines. After any member changed, the
driver hands ``SyncGroup.update`` every member's (state, wants_master) and carries out what it
returns, member events first:

- Become MASTER together. A synced member whose down timer fires does not take the role; it
  *wants* it (``Instance.wants_master``). Once every member that is not in FAULT is MASTER or
  wants to be, the wanting ones are promoted together (keepalived: vrrp_sync_can_goto_master).
- Leave together. When a member leaves MASTER (a higher-priority master, a fault, a drain), the
  members still MASTER are demoted: they send priority 0 so their peers take over at once.
- One member's FAULT moves the group: its partners yield -- they give up MASTER, never preempt,
  and time their down timers as priority 1 -- so the peer group wins every election.

Where vipd differs from keepalived (on purpose): keepalived puts the whole group in FAULT while
one member is in FAULT, so a host whose inside link is down also stops serving the outside VIP
even when no other router is left to serve it. vipd's yielding partners stay BACKUP: with a peer
group alive they never take the role, but when nobody else answers (Master_Down_Interval at
priority 1) they serve what they can. A member in FAULT does not hold the others back.

The group's own state (for its notify hook and status): FAULT if any member is, MASTER when all
are, INIT when all are (stopped), BACKUP otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass

from vipd.core.events import GroupCommand, Log, State


@dataclass(frozen=True, slots=True)
class Promote:
    member: str
    reason: str


@dataclass(frozen=True, slots=True)
class Demote:
    member: str
    reason: str


@dataclass(frozen=True, slots=True)
class Yield:
    member: str
    on: bool
    reason: str


@dataclass(frozen=True, slots=True)
class GroupNotify:
    """Run the group's notify hook for ``state`` (MASTER/BACKUP/FAULT/STOP)."""
    state: str
    prev_state: str


class SyncGroup:
    def __init__(self, name: str, members: tuple[str, ...]) -> None:
        self.name = name
        self.members = members
        self.state = State.INIT
        self.yielding = False
        self._was: dict[str, State] = {m: State.INIT for m in members}
        self.history: list[tuple[str, str, str]] = []     # (old, new, reason), newest last

    def update(self, views: dict[str, tuple[State, bool]]) -> list:
        """views: member -> (state, wants_master). Returns the actions, member events first."""
        actions: list = []
        faulted = sorted(m for m in self.members if views[m][0] is State.FAULT)
        yielding = bool(faulted)
        if yielding != self.yielding:
            self.yielding = yielding
            why = (f"sync group {self.name}: {', '.join(faulted)} in FAULT" if yielding
                   else f"sync group {self.name}: no member in FAULT")
            actions += [Yield(m, yielding, why) for m in self.members if m not in faulted]
        left = sorted(m for m in self.members
                      if self._was[m] is State.MASTER and views[m][0] is not State.MASTER)
        if left:
            why = f"sync group {self.name}: {', '.join(left)} left MASTER"
            actions += [Demote(m, why) for m in self.members if views[m][0] is State.MASTER]
        else:
            wanting = [m for m in self.members if views[m][0] is State.BACKUP and views[m][1]]
            blocking = [m for m in self.members
                        if views[m][0] not in (State.MASTER, State.FAULT) and m not in wanting]
            if wanting and not blocking:
                why = f"sync group {self.name}: every member ready"
                actions += [Promote(m, why) for m in wanting]
        self._was = {m: views[m][0] for m in self.members}
        return actions

    def settle(self, views: dict[str, tuple[State, bool]]) -> list:
        """After the member events are applied: the group state and its hook, once per change."""
        states = [views[m][0] for m in self.members]
        if State.FAULT in states:
            new = State.FAULT
        elif all(s is State.MASTER for s in states):
            new = State.MASTER
        elif all(s is State.INIT for s in states):
            new = State.INIT
        else:
            new = State.BACKUP
        self._was = {m: views[m][0] for m in self.members}
        if new is self.state:
            return []
        old, self.state = self.state, new
        reason = ", ".join(f"{m} {views[m][0]}" for m in self.members)
        self.history.append((str(old), str(new), reason))
        del self.history[:-20]
        hook = "STOP" if new is State.INIT else str(new)
        return [Log("info", f"sync group {self.name}: {old} -> {new} ({reason})"),
                GroupNotify(hook, str(old))]


def command(action: Promote | Demote | Yield) -> tuple[str, GroupCommand]:
    """(member, the event its Instance gets) for one of ``update``'s member actions."""
    if type(action) is Yield:
        return action.member, GroupCommand("yield" if action.on else "unyield", action.reason)
    return action.member, GroupCommand("promote" if type(action) is Promote else "demote",
                                       action.reason)
