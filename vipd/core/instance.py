"""The per-instance VRRP state machine (RFC 5798/9568 section 6.4, RFC 3768 for v2), sans-IO.

Every entry point takes ``now`` (monotonic seconds) and returns the actions for the driver; the
driver arms one timer from ``next_deadline()`` and calls ``handle_timer(now)`` when it fires.
Syntax is checked in the codec, the receive checks that depend only on the configuration in
core/params.py, the rest of the semantics (own adverts, heartbeat peers, VIP lists) here.
"""
from __future__ import annotations

from collections import deque
from dataclasses import replace

from vipd.core import succession
from vipd.core.events import (
    AddVips, AdvertReceived, Announce, CompareData, DataCompared, DrainChanged, FailbackApproved,
    FaultChanged, GateChanged, GroupCommand, Log, Notify, PriorityChanged, ProbeVips,
    PromotionRefused, RemoveVips, SendAdvert, Shutdown, SourceAddressChanged, Startup, State,
    Transition, VipClaimed,
)
from vipd.core.claims import ClaimProbe
from vipd.core.contest import ASK, HOLD, Contest
from vipd.core.failback import Failback
from vipd.core.packet import Advert, Reason
from vipd.core.params import OWNER_PRIORITY, RouterParams
from vipd.core.paths import MAIN, PathBook, PathOrigin, addr_int as _addr_int
from vipd.core.timers import master_down_interval_s, skew_time_s


class UnexpectedEvent(Exception):
    """An event the current state has no transition for: names both (h11 style)."""

    def __init__(self, state: State, event: object) -> None:
        super().__init__(f"no transition for event {type(event).__name__} in state {state}")


class Instance:
    HISTORY = 20

    def __init__(self, name: str, params: RouterParams, now: float = 0.0) -> None:
        self.name = name
        self.params = params
        self.state = State.INIT
        self.since = now
        self.priority = params.priority            # effective priority (tracking may change it)
        self.master_adver_int_cs = params.adver_int_cs
        self.master_ip: str | None = None
        self.master_priority: int | None = None    # priority of the master we last accepted
        self.last_other_master: str | None = None  # the last master that was not us (hooks)
        self.faults: frozenset[str] = frozenset()
        self.drained = False
        self.failback = Failback(name, params.failback, params.preempt_delay, params.gated)
        self.wants_master = False      # synced: our down timer fired; waiting for the group
        self.group_yield = False       # synced: a partner is in FAULT
        self.counters: dict[str, int] = {}
        self.history: deque[tuple[float, str, str, str]] = deque(maxlen=self.HISTORY)
        self._adver_deadline: float | None = None
        self._down_deadline: float | None = None
        self._handover_deadline: float | None = None   # drained master: VIPs kept until then
        self._refresh_at: float | None = None   # garp_refresh: set on becoming MASTER, read
                                                # with the adverts (which only a MASTER sends)
        self._last_lower_master = -1e18
        self._vip_set = frozenset(params.vips)
        self._last_vip_mismatch: tuple[str, ...] | None = None
        self._local_int = _addr_int(params.local_addr)
        self.paths = (PathBook(params.interface, params.heartbeat, params.adver_int_cs / 100.0, now,
                               params.local_addr) if params.heartbeat else None)
        # data-aware split brain (docs/data-safety.md): the other master we are meeting
        self.contest = Contest(params.data_hold)
        self.refused: tuple[str, float] | None = None   # last promotion the master hook refused
        self._refused_hold = False
        self.claims = ClaimProbe()      # another host answering ARP for our VIPs (core/claims.py)

    # ---- public interface -------------------------------------------------------------

    def handle(self, event: object, now: float) -> list:
        if isinstance(event, AdvertReceived):
            return self.on_advert(event.advert, event.src, event.ttl, event.multicast, now,
                                  event.path)
        if isinstance(event, Startup):
            return self._startup(now)
        if isinstance(event, Shutdown):
            return self._shutdown(now)
        if isinstance(event, FaultChanged):
            return self._fault_changed(event.faults, now)
        if isinstance(event, PriorityChanged):
            return self._priority_changed(event.priority, now)
        if isinstance(event, FailbackApproved):
            return self._approve(event.force, now)
        if isinstance(event, GateChanged):
            return self._gate_changed(event.ok, now)
        if isinstance(event, DrainChanged):
            return self._drain(event.drained, now)
        if isinstance(event, SourceAddressChanged):
            return self._source_changed(event.address)
        if isinstance(event, GroupCommand):
            return self._group_command(event.command, event.reason, now)
        if isinstance(event, DataCompared):
            return self._data_compared(event, now)
        if isinstance(event, PromotionRefused):
            return self._promotion_refused(event.reason, now)
        if isinstance(event, VipClaimed):
            if self.state is State.MASTER and self.claims.claimed(now):
                self.count("vip_claims")
                return [Log("warning", f"{event.mac} claims our VIPs while we are master: a"
                                       " master we cannot hear; probing for it with each advert")]
            return []
        raise UnexpectedEvent(self.state, event)

    def next_deadline(self) -> float | None:
        best = None
        for d in (self._adver_deadline, self._down_deadline, self.failback.deadline,
                  self._handover_deadline, self.contest.deadline, self.claims.deadline):
            if d is not None and (best is None or d < best):
                best = d
        return best

    def handle_timer(self, now: float) -> list:
        actions: list = []
        if self._handover_deadline is not None and now >= self._handover_deadline:
            actions += self._end_handover("no new master heard")
        if self.contest.deadline is not None and now >= self.contest.deadline \
                and self.contest.expired(now):
            # No verdict in time (a Redis that does not answer): priority decides, as without data.
            actions.append(Log("warning", f"no data verdict for {self.contest.other[0]} within"
                                          f" {self.params.data_hold:g}s; priority decides"))
            actions += self._settle(now)
        if self.failback.window_over(now) and self._may_fail_back(now):
            self._down_deadline = now
        if self._down_deadline is not None and now >= self._down_deadline:
            self._down_deadline = None
            if self.state is State.BACKUP and not self.drained:
                if self._master_is_lower():
                    reason = f"preempting lower-priority master {self.master_ip}" \
                             f" ({self.master_priority})"
                    if self.failback.approved:
                        reason += ", failback approved by operator"
                else:
                    reason = "master down timer expired"
                if self.params.synced:
                    # the sync group promotes us together with our partners, or not at all
                    if not self.wants_master:
                        self.wants_master = True
                        actions.append(Log("info", f"{reason}: ready for MASTER, waiting for"
                                                   " the sync group"))
                else:
                    actions += self._become_master(now, reason)
            elif self.state is State.BACKUP:
                # drained: the master is gone and we do not take over; forget it
                self.master_ip = self.master_priority = None
        if self.claims.deadline is not None and now >= self.claims.deadline:
            if self.claims.unanswered(now):
                self.count("vip_claim_released")
                actions += [Announce(), Log("info", "the other claimant of our VIPs let go:"
                                                    " re-announcing")]
            elif self.claims.reprobe_due():     # it may be letting go on our advert just now
                self.claims.probe_sent(now, again=True)
                actions.append(ProbeVips())
        if self._adver_deadline is not None and now >= self._adver_deadline:
            # Keep the cadence (no drift from processing delay) unless we fell a whole interval
            # behind, e.g. after the process was frozen.
            interval = self.params.adver_int_cs / 100.0
            nxt = self._adver_deadline + interval
            self._adver_deadline = nxt if nxt > now else now + interval
            actions.append(SendAdvert(self.priority))
            self.count("adverts_sent")
            if self.claims.active:
                self.claims.probe_sent(now)
                actions.append(ProbeVips())
            if self._refresh_at is not None and now >= self._refresh_at:
                # keepalived's garp_master_refresh: with the first advert due after the deadline
                # (no timer of its own), one chain per MASTER period whatever re-announces between
                self._refresh_at = now + self.params.garp_refresh
                actions.append(Announce(refresh=True))
        return actions

    @property
    def _timer_priority(self) -> int:
        # While a failback gate fails (e.g. our Redis is not in sync), or right after the master
        # hook refused a promotion, time our timers as the lowest priority: if the master goes
        # away while another backup is ready, that backup's timer fires first and we do not win
        # the election with stale data. The same while a sync group partner is in FAULT: the
        # peer group must win.
        if self._refused_hold or self.group_yield:
            return 1
        return self.priority if self.failback.gates_pass() else 1

    @property
    def skew_time(self) -> float:
        return skew_time_s(self._timer_priority, self.master_adver_int_cs, self.params.version)

    @property
    def master_down_interval(self) -> float:
        return master_down_interval_s(self._timer_priority, self.master_adver_int_cs,
                                      self.params.version)

    @property
    def outranks_master(self) -> bool:
        """A backup whose known master has a lower priority: a failback is possible."""
        return self.state is State.BACKUP and self._master_is_lower()

    def count_discard(self, reason: Reason | str) -> None:
        self.count("discard_" + str(getattr(reason, "value", reason)))

    # ---- receive path (hot: no allocation on the common "reset the timer" path) ----------

    def on_advert(self, adv: Advert, src: str, ttl: int, multicast: bool, now: float,
                  path: int = MAIN) -> list:
        """An advert from the VIP's segment (path 0) or from heartbeat path ``path``."""
        p = self.params
        self.count("adverts_received")
        refusal = p.refusal(adv, src, ttl, multicast, path)
        if refusal is not None:
            return self._discard(refusal)
        if path and (self.paths is None or not self.paths.is_peer(path, src)):
            return self._discard(Reason.NOT_PEER)       # each path has its own peer list
        if src == p.local_addr:
            self.count("own_advert")
            return []
        actions: list = []
        origin = None
        if self.paths is not None:
            src, origin = self.paths.heard(path, src, adv.priority, now, self.master_down_interval,
                                           actions)
        if adv.addresses != p.vips and frozenset(adv.addresses) != self._vip_set:
            self.count("vip_mismatch")
            if adv.addresses != self._last_vip_mismatch:
                self._last_vip_mismatch = adv.addresses
                actions.append(Log("warning", f"advert from {src} lists VIPs {list(adv.addresses)},"
                                              f" ours are {list(p.vips)}"))
        if self.state is State.BACKUP:
            return self._backup_rx(adv, src, now, actions)
        if self.state is State.MASTER:
            return self._master_rx(adv, src, now, actions, origin)
        return actions    # INIT / FAULT: adverts are not acted on

    def _backup_rx(self, adv: Advert, src: str, now: float, actions: list) -> list:
        if adv.priority == 0:
            # RFC 5798 6.4.2: the master is leaving: take over after Skew_Time only.
            self.count("priority0_received")
            self.master_ip = None
            self.master_priority = None
            self._down_deadline = now + self.skew_time
            return actions
        if self._handover_deadline is not None:
            actions += self._end_handover(f"new master {src} announced")
        if adv.priority >= self.priority or \
                not self.failback.may_preempt(now, self.drained, self.group_yield):
            if self.params.version == 3:
                self.master_adver_int_cs = adv.adver_int_cs   # learn the master's interval
            if src != self.master_ip:
                # A new master: the BACKUP hook runs again with VIPD_MASTER_IP set, so a Redis
                # replica follows the primary that actually holds the VIP.
                actions.append(Notify("BACKUP", "BACKUP", reassert=True))
            self.master_ip = self.last_other_master = src
            self.master_priority = adv.priority
            self._down_deadline = now + self.master_down_interval
            self.wants_master = False
            why = self.failback.pending_because(self.drained) if adv.priority < self.priority \
                else None
            if why:         # a lower-priority master tolerated by the policy or a gate: say so once
                actions.append(Log("info", f"failback pending: master {src} has priority"
                                           f" {adv.priority} < ours {self.priority}; {why}"))
            return actions
        # Lower priority and we may preempt: discard; the down timer makes us master.
        self.count("lower_priority_ignored")
        return actions

    def _master_rx(self, adv: Advert, src: str, now: float, actions: list,
                   origin: PathOrigin | None = None) -> list:
        if adv.priority == 0:
            # RFC 5798 6.4.3: answer at once so the leaving router's backups see a master. And
            # re-announce: in a split brain that just healed, the leaving router may be the one
            # the clients' ARP entries name, and it is dropping the VIPs now.
            self.contest.gone(src)      # it gave up (a data yield): no comparison with it now
            self._adver_deadline = now + self.params.adver_int_cs / 100.0
            actions += [SendAdvert(self.priority), Announce()]
            self.count("adverts_sent")
            return actions
        if self.params.data_hold:
            return self._data_rx(adv, src, now, actions)
        return self._priority_rule(src, adv.priority, adv.adver_int_cs, now, actions, origin)

    def _priority_rule(self, src: str, prio: int, int_cs: int, now: float, actions: list,
                       origin: PathOrigin | None = None) -> list:
        """RFC 5798 6.4.3: another master; the higher priority (then address) keeps the role."""
        if prio > self.priority or (prio == self.priority and self._higher_address(src, origin)):
            return self._yield(src, prio, int_cs, f"higher priority master {src} ({prio})", now,
                               actions)
        # A lower-priority master: split brain or a late starter. RFC 9568 behaviour: advert at
        # once and re-announce, so the other side yields and switches' tables point here.
        self.count("lower_master_seen")
        return self._reassert(f"lower-priority master {src} ({prio}) seen; reasserting", now,
                              actions)

    def _yield(self, src: str, prio: int, int_cs: int, reason: str, now: float,
               actions: list) -> list:
        if self.params.version == 3:
            self.master_adver_int_cs = int_cs
        self._adver_deadline = None
        self.master_ip = self.last_other_master = src
        self.master_priority = prio
        self._down_deadline = now + self.master_down_interval
        # A parting advert, then silence: without it, when the winner's advert reached us first,
        # nobody would correct the clients' ARP entries that still name our MAC, and the VIP
        # would be dead until they expire (5-33 s on Linux). At our own priority the winner
        # hears a lower-priority master and re-announces (vipd and keepalived both do). With a
        # data source it is priority 0 instead: the winner re-announces too, but must not start
        # comparing data with us, since our Redis is about to become its replica and would look
        # like one history with a higher priority.
        parting = 0 if self.params.data_hold else self.priority
        self.count("adverts_sent")
        if not parting:
            self.count("priority0_sent")
        actions.append(self._set_state(State.BACKUP, reason, now))
        actions += [SendAdvert(parting), RemoveVips(), Notify("BACKUP", "MASTER")]
        return actions

    def _reassert(self, why: str, now: float, actions: list) -> list:
        """Keep the role against another master: advert at once and re-announce the VIPs."""
        self._adver_deadline = now + self.params.adver_int_cs / 100.0
        actions += [SendAdvert(self.priority), Announce()]
        self.count("adverts_sent")
        recent = 3 * self.params.adver_int_cs / 100.0
        if now - self._last_lower_master > recent:
            actions.append(Log("warning", why))
            if now - self.since > recent:
                # Not when we just became master (a preemption: the old master's parting advert):
                # our MASTER hook has only just run.
                actions.append(Notify("MASTER", "MASTER", reassert=True))
        self._last_lower_master = now
        return actions

    # ---- data-aware split brain (docs/data-safety.md) -----------------------------------

    def _data_rx(self, adv: Advert, src: str, now: float, actions: list) -> list:
        """Another master and a data source configured: the Redis data decide (core/contest.py)."""
        step = self.contest.heard(src, adv.priority, adv.adver_int_cs, now)
        if step == ASK:
            self.count("data_compares")
            actions.append(CompareData(src))
            return actions
        if step == HOLD:
            return actions          # verdict pending: our adverts keep their cadence meanwhile
        return actions + self._settle(now)

    def _settle(self, now: float) -> list:
        """Decide against the other master of the current episode, by data if we know."""
        src, prio, int_cs = self.contest.other
        cmp = self.contest.verdict()
        verdict = cmp.verdict if cmp else succession.Verdict.UNKNOWN
        if verdict is succession.Verdict.PEER_NEWER:
            self.count("data_yields")
            return self._yield(src, prio, int_cs,
                               f"yield: peer's Redis is the successor ({cmp.why})", now, [])
        if verdict is succession.Verdict.OURS_NEWER:
            self.count("data_reasserts")
            return self._reassert(f"master {src} ({prio}) seen; keeping the role, our Redis is"
                                  f" newer ({cmp.why})", now, [])
        return self._priority_rule(src, prio, int_cs, now, [])

    def _data_compared(self, ev: DataCompared, now: float) -> list:
        cmp = succession.compare(ev.ours, ev.theirs)
        if ev.peer != self.contest.pending:
            return []               # the answer to an episode that is over
        current = self.contest.answered(ev.peer, cmp, now)
        actions: list = [Log("info", f"data compared with {ev.peer}: {cmp.verdict} ({cmp.why})")]
        if self.state is State.MASTER and current:
            actions += self._settle(now)
        return actions

    def _promotion_refused(self, reason: str, now: float) -> list:
        """The master hook said no (e.g. our Redis is empty while the peer's holds data): give
        the role up at once and retry only after a whole Master_Down_Interval timed as priority
        1, so a backup with data wins first."""
        if self.state is not State.MASTER:
            return []
        self.refused = (reason, now)
        self.count("promotions_refused")
        self._refused_hold = True
        actions = self._leave_master()
        self.master_ip = self.master_priority = None
        self._down_deadline = now + self.master_down_interval
        actions.insert(0, self._set_state(State.BACKUP, f"promotion refused by the master hook:"
                                                        f" {reason}", now))
        actions.append(Notify("BACKUP", "MASTER"))
        return actions

    # ---- other events -------------------------------------------------------------------

    def _startup(self, now: float) -> list:
        if self.state is not State.INIT:
            raise UnexpectedEvent(self.state, Startup())
        if self.faults:
            return [self._set_state(State.FAULT, "fault at start: " + ", ".join(sorted(self.faults)),
                                    now), Notify("FAULT", "INIT")]
        return self._enter_backup_or_owner(now, "startup")

    def _enter_backup_or_owner(self, now: float, reason: str) -> list:
        self.failback.restart(now)
        if self.priority == OWNER_PRIORITY and not self.drained:
            # RFC 5798 6.4.1: the address owner becomes master at once.
            return self._become_master(now, reason + " (address owner)")
        prev = self.state
        self.master_adver_int_cs = self.params.adver_int_cs
        self._down_deadline = None if self.drained else now + self.master_down_interval
        return [self._set_state(State.BACKUP, reason, now), Notify("BACKUP", str(prev))]

    def _become_master(self, now: float, reason: str) -> list:
        prev = self.state
        self.wants_master = False
        self.master_ip = self.params.local_addr
        self.master_priority = self.priority
        self.failback.done()
        self._refused_hold = False
        self.contest.reset()
        self._down_deadline = None
        self._adver_deadline = now + self.params.adver_int_cs / 100.0
        self._refresh_at = now + self.params.garp_refresh if self.params.garp_refresh else None
        self.count("adverts_sent")
        self.count("became_master")
        # VIPs first, then the advert: the old master drops its VIPs when it hears us, and a
        # client packet in between would find nobody answering.
        return [self._set_state(State.MASTER, reason, now), AddVips(), Announce(),
                SendAdvert(self.priority), Notify("MASTER", str(prev))]

    def _leave_master(self) -> list:
        self._adver_deadline = None
        self.count("adverts_sent")
        self.count("priority0_sent")
        return [SendAdvert(0), RemoveVips()]

    def _shutdown(self, now: float) -> list:
        prev = self.state
        actions: list = []
        if prev is State.MASTER:
            actions += self._leave_master()
        elif self._handover_deadline is not None:
            actions += self._end_handover("shutdown")
        self._down_deadline = self.failback.deadline = None
        if prev is not State.INIT:
            actions.insert(0, self._set_state(State.INIT, "shutdown", now))
            actions.append(Notify("STOP", str(prev)))
        return actions

    def _fault_changed(self, faults: frozenset[str], now: float) -> list:
        was = self.faults
        self.faults = faults
        if self.state is State.INIT:
            return []
        if faults and self.state is not State.FAULT:
            prev = self.state
            actions = self._leave_master() if prev is State.MASTER else []
            if self._handover_deadline is not None:
                actions += self._end_handover("fault")
            self._down_deadline = self.failback.deadline = None
            self.master_ip = None
            actions.insert(0, self._set_state(State.FAULT, "fault: " + ", ".join(sorted(faults)), now))
            actions.append(Notify("FAULT", str(prev)))
            return actions
        if not faults and self.state is State.FAULT:
            return self._enter_backup_or_owner(now, "fault cleared: " + ", ".join(sorted(was)))
        return []

    def _source_changed(self, address: str) -> list:
        old = self.params.local_addr
        if address == old:
            return []
        self.params = replace(self.params, local_addr=address)
        self._local_int = _addr_int(address)
        if self.paths is not None:
            self.paths.set_local(address)     # the heartbeat tie-break compares it too
        if self.state is State.MASTER:
            self.master_ip = address
        return [Log("info", f"source address {old or 'none'} -> {address or 'none'}")]

    def _priority_changed(self, priority: int, now: float) -> list:
        if self.params.priority == OWNER_PRIORITY or priority == self.priority:
            return []
        old, self.priority = self.priority, priority
        actions: list = [Log("info", f"effective priority {old} -> {priority}")]
        if self.state is State.MASTER:
            self.master_priority = priority     # we are the master we know
            # Tell backups at once so one with a now-higher priority can preempt.
            self._adver_deadline = now + self.params.adver_int_cs / 100.0
            self.count("adverts_sent")
            actions.append(SendAdvert(priority))
        elif self.state is State.BACKUP and self._may_fail_back(now):
            self._down_deadline = now   # we now outrank the master we know
        if not self._master_is_lower():
            self.failback.pending = False
        return actions

    def _approve(self, force: bool, now: float) -> list:
        if self.state is not State.BACKUP or self.drained or not self._master_is_lower():
            return []     # nothing to fail back: an approval is not remembered for later
        self.failback.approve(force)
        if self._may_fail_back(now):
            self._down_deadline = now   # take the role in one step
        return [Log("info", "failback approved by operator" + (" (gates forced)" if force else ""))]

    def _gate_changed(self, ok: bool, now: float) -> list:
        if ok == self.failback.gate_ok:
            return []
        self.failback.gate_ok = ok
        if ok and self.state is State.BACKUP and self._may_fail_back(now):
            self._down_deadline = now   # gates just opened: fail back now, not at the next timeout
        return [Log("info", "failback gates " + ("pass" if ok else "failing"))]

    def _drain(self, drained: bool, now: float) -> list:
        if drained == self.drained:
            return []
        self.drained = drained
        if drained:
            self.failback.pending = False
            self._down_deadline = None
            if self.state is not State.MASTER:
                return [Log("info", "drained: will not become master")]
            # Give up the role at once (priority 0: a backup takes over after Skew_Time) but keep
            # the VIPs until the new master's first advert, so clients see no gap.
            self._adver_deadline = None
            self.count("adverts_sent")
            self.count("priority0_sent")
            self._handover_deadline = now + self.master_down_interval
            self.master_ip = None
            return [self._set_state(State.BACKUP, "drained by operator", now), SendAdvert(0),
                    Notify("BACKUP", "MASTER")]
        if self.state is State.BACKUP:
            self._down_deadline = (now if self._may_fail_back(now)
                                   else now + self.master_down_interval)
        return [Log("info", "undrained")]

    def _group_command(self, command: str, reason: str, now: float) -> list:
        if command == "promote":
            if self.state is State.BACKUP and not self.drained:
                return self._become_master(now, reason)
            return []
        if command == "demote":
            if self.state is not State.MASTER:
                return []
            actions = [self._set_state(State.BACKUP, reason, now)] + self._leave_master()
            self.master_ip = self.master_priority = None
            self._down_deadline = now + self.master_down_interval
            return actions + [Notify("BACKUP", "MASTER")]
        if command in ("yield", "unyield"):
            self.group_yield = command == "yield"
            actions = [Log("info", reason + ("; yielding" if self.group_yield else
                                             "; not yielding"))]
            if self.group_yield and self.state is State.MASTER:
                actions += self._group_command("demote", reason, now)
            elif self.group_yield and self.wants_master:
                # ready before the partner's fault: wait again, now timed as priority 1
                self.wants_master = False
                self._down_deadline = now + self.master_down_interval
            return actions
        raise ValueError(f"unknown group command {command!r}")

    def _end_handover(self, why: str) -> list:
        self._handover_deadline = None
        return [RemoveVips(), Log("info", f"drain: VIPs removed ({why})")]

    # ---- helpers ------------------------------------------------------------------------

    def _may_fail_back(self, now: float) -> bool:
        """We outrank the master we know, and the failback policy lets us take the role now."""
        return self._master_is_lower() and self.failback.may_preempt(now, self.drained,
                                                                     self.group_yield)

    def _higher_address(self, src: str, origin: PathOrigin | None) -> bool:
        """RFC 5798 6.4.3 tie-break: the sender's primary address is higher than ours. A heartbeat
        sender without a known VIP-segment address compares on the path both routers share."""
        if origin is None:
            return _addr_int(src) > self._local_int
        return _addr_int(origin.peer) > _addr_int(origin.own)

    def _master_is_lower(self) -> bool:
        return self.master_priority is not None and self.master_priority < self.priority

    def _set_state(self, new: State, reason: str, now: float) -> Transition:
        """The one place that changes state; the driver logs the Transition as OLD -> NEW (reason)."""
        old = self.state
        self.state = new
        self.since = now
        self.wants_master = False
        if new is not State.BACKUP:
            self.failback.pending = False
        if new is not State.MASTER:
            self.contest.deadline = None    # a held data decision only concerns a master
            self.claims.reset()
        self.history.append((now, str(old), str(new), reason))
        self.count("transitions")
        return Transition(old, new, reason)

    def _discard(self, reason: Reason) -> list:
        self.count("discard_" + reason.value)
        return []

    def count(self, key: str) -> None:
        """A status counter; the driver counts its own events (send errors...) here too."""
        self.counters[key] = self.counters.get(key, 0) + 1

