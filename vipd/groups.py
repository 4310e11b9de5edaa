"""The driver side of sync groups: feeds vipd.core.syncgroup the members' states, hands its
commands to the members' cores, and runs the group's notify hook.

The group hook runs once per group transition, after the member hooks of that transition have
finished (it waits for their queues), so a group script sees its members already switched. As
for a member, a state the group has already left by then is skipped; the last one always runs.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from vipd.config import SyncGroupConfig
from vipd.core.events import Log, State
from vipd.core.syncgroup import GroupNotify, SyncGroup, command
from vipd.hooks import HookQueue

log = logging.getLogger("vipd")
_ROUNDS = 4     # promote/demote settle in one or two rounds; this bounds a misbehaving member


class GroupRunner:
    def __init__(self, cfg: SyncGroupConfig, script_user: str | None) -> None:
        self.cfg = cfg
        self.core = SyncGroup(cfg.name, cfg.instances)
        self.hooks = HookQueue(f"group {cfg.name}", cfg.notify.timeout, script_user)
        self._busy = False

    def step(self, runtimes: dict, apply: Callable, member_hooks: dict[str, HookQueue],
             now: float) -> None:
        """Called after any member's actions were applied. ``apply(rt, actions)`` applies a
        member's actions (and calls back here: re-entrant calls are absorbed)."""
        if self._busy or not all(m in runtimes for m in self.cfg.instances):
            return
        self._busy = True
        try:
            for _ in range(_ROUNDS):
                actions = self.core.update(self._views(runtimes))
                if not actions:
                    break
                for a in actions:
                    member, event = command(a)
                    rt = runtimes[member]
                    apply(rt, rt.core.handle(event, now))
            for a in self.core.settle(self._views(runtimes)):
                if type(a) is Log:
                    getattr(log, a.level)("%s", a.message)
                elif type(a) is GroupNotify:
                    self._notify(a, [member_hooks[m] for m in self.cfg.instances
                                     if m in member_hooks])
        finally:
            self._busy = False

    def _views(self, runtimes: dict) -> dict:
        return {m: (runtimes[m].core.state, runtimes[m].core.wants_master)
                for m in self.cfg.instances}

    def _notify(self, a: GroupNotify, member_hooks: list[HookQueue]) -> None:
        argv = getattr(self.cfg.notify, a.state.lower(), ())
        self.hooks.timeout = self.cfg.notify.timeout      # a reload may have changed it
        if not argv:
            return
        env = {"VIPD_GROUP": self.cfg.name, "VIPD_STATE": a.state, "VIPD_PREV_STATE": a.prev_state,
               "VIPD_INSTANCES": " ".join(self.cfg.instances),
               "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}

        async def after_members() -> None:
            for q in member_hooks:
                await q.wait_idle(q.timeout + 1)
            # Like a member's queue, an intermediate state is skipped: the members' hooks for it
            # may have been superseded already, and the group's hook must not claim otherwise.
            now = "STOP" if self.core.state is State.INIT else str(self.core.state)
            if now != a.state:
                log.info("[group %s] hook for %s skipped: the group is %s now", self.cfg.name,
                         a.state, now)
                return
            self.hooks.submit(a.state, tuple(argv), env)
        asyncio.get_running_loop().create_task(after_members())

    def status(self) -> dict:
        return {"name": self.cfg.name, "state": str(self.core.state),
                "instances": list(self.cfg.instances), "yielding": self.core.yielding,
                "transitions": [{"from": o, "to": n, "reason": r} for o, n, r in self.core.history]}
