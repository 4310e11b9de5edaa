"""Carries out the actions the cores return: adverts, VIPs and what else a MASTER holds, GARP/NA,
hooks, ARP/NS probes and data comparisons.

The order inside one list of actions is the contract (DESIGN.md): a new MASTER's VIPs are up
before its GARP/NA and its first advert; with a master hook, the VIPs wait until the hook has
finished (promote before announce); leaving MASTER takes the VIPs down. The driver (daemon.py)
decides when actions happen; this module only how.

VIP changes are netlink requests, awaited (vipd/net/netlink.py). Actions that need one go
into their instance's ordered queue, and while an instance has work in it, all its later actions
queue behind: an instance's role changes never interleave, and its first advert as MASTER leaves
after its VIPs are up. Each instance's queue runs in a task of its own, so different instances'
jobs run side by side (see ``_work``). Actions of an instance with nothing queued (an advert
every interval, 2000 a second at 200 instances x 0.1 s) run at once, without a task. A netlink
error or timeout is logged and counted (``netlink_errors``); the daemon carries on.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from vipd import holdings
from vipd.core.events import (
    AddVips, Announce, CompareData, DataCompared, Log, Notify, ProbeVips, PromotionRefused,
    RemoveVips, SendAdvert, State, Transition,
)
from vipd.heartbeat import Heartbeats
from vipd.hooks import REFUSE_PROMOTION, HookQueue
from vipd.interfaces import InterfaceRegistry
from vipd.net.announce import ipv6_forwarding
from vipd.net.claimwatch import claim_probe
from vipd.observe import Observer
from vipd.redisinfo import compare_inputs
from vipd.runtime import Runtime

log = logging.getLogger("vipd")
_NETLINK = (AddVips, RemoveVips)       # the actions that await the kernel


def run_now(coro) -> None:
    """Runs a coroutine that cannot suspend (it awaits no netlink request) to its end, here and
    now: an advert then costs a function call, not a task and a loop turn."""
    try:
        coro.send(None)
    except StopIteration:
        return
    coro.close()
    raise RuntimeError("an action suspended outside the applier's queue")


class Applier:
    """Actions -> the world. ``runtimes`` and ``hooks`` are the driver's own dicts (an instance
    removed meanwhile is no longer acted on); ``apply`` is the driver's apply, for what a
    finished hook or data comparison feeds back into a core; ``on_transition`` is told of every
    state change (systemd STATUS=)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, runtimes: dict[str, Runtime],
                 ifaces: InterfaceRegistry, hooks: dict[str, HookQueue], heartbeats: Heartbeats,
                 observer: Observer, on_transition: Callable[[], None],
                 apply: Callable[[Runtime, list], None]) -> None:
        self.loop = loop
        self.runtimes = runtimes
        self.ifaces = ifaces
        self.hooks = hooks
        self.heartbeats = heartbeats
        self.observer = observer
        self.on_transition = on_transition
        self.reapply = apply
        self.tasks: set[asyncio.Task] = set()     # data comparisons in flight
        # instance name -> its jobs not yet finished (the running one first); one task each
        self.queued: dict[str, deque[Callable[[], Awaitable]]] = {}
        self.workers: dict[str, asyncio.Task] = {}    # instance name -> the task running them

    # ---- the ordered queue ----------------------------------------------------------------

    def submit(self, name: str, job: Callable[[], Awaitable]) -> None:
        """Runs ``job()`` after every job of instance ``name`` submitted before it; other
        instances' jobs run alongside."""
        jobs = self.queued.get(name)
        if jobs is not None:
            jobs.append(job)
            return
        self.queued[name] = deque((job,))
        self.workers[name] = self.loop.create_task(self._work(name))

    async def _work(self, name: str) -> None:
        """Runs instance ``name``'s jobs one after another in the order given, in a task of its
        own: a slow netlink answer for one instance holds up only that instance's later jobs,
        not another's takeover that comes meanwhile (tests/unit/test_applier_order.py). Many
        instances taking over at once (100 VIPs) each start their job in the same loop turn,
        not ~1-2 ms per netlink request in turn (measured: serial adds spread the new masters'
        first adverts, and so every later one, over the whole interval -- 73 distinct
        millisecond phases against 32, and 2.5 times the loop wake-ups and CPU in the
        200-instance bench)."""
        jobs = self.queued[name]
        try:
            while jobs:
                try:
                    await jobs[0]()
                except Exception:     # a bug in one job must not stop VIP changes for good
                    log.exception("[%s] applying actions failed", name)
                jobs.popleft()
        finally:
            # gone before the task is done, not in a done callback a loop turn later: idle()
            # would otherwise await a finished task (which returns without yielding) for ever
            del self.queued[name]
            del self.workers[name]

    async def idle(self) -> None:
        """Waits until no job is left (at stop: VIPs are down before netlink closes)."""
        while self.workers:
            await asyncio.shield(next(iter(self.workers.values())))

    # ---- actions --------------------------------------------------------------------------

    def apply(self, rt: Runtime, actions: list) -> None:
        if len(actions) == 1 and type(actions[0]) is SendAdvert and rt.name not in self.queued:
            self.send(rt, actions[0].priority)    # a master's advert every interval: the hot path
            if rt.cfg.heartbeat:
                self.heartbeats.send(rt, actions[0].priority)
            return
        if rt.name in self.queued or any(type(a) in _NETLINK for a in actions):
            self.submit(rt.name, lambda: self._apply(rt, actions))
        else:
            run_now(self._apply(rt, actions))

    async def _apply(self, rt: Runtime, actions: list) -> None:
        deferred = None
        for a in actions:
            t = type(a)
            if t is SendAdvert:
                self.send(rt, a.priority)
                if rt.cfg.heartbeat:
                    self.heartbeats.send(rt, a.priority)
            elif t is Transition:
                log.info("[%s] %s -> %s (%s)", rt.name, a.old, a.new, a.reason)
                self.on_transition()
                self.observer.transition(rt.name, rt.cfg.vrid, str(a.old), str(a.new), a.reason)
            elif t is AddVips or t is Announce:
                if deferred is not None:
                    deferred.append(a)
                elif self.promote_first(rt, actions):
                    deferred = [a]
                else:
                    await self.vip_action(rt, a)
            elif t is RemoveVips:
                await self.vip_action(rt, a)
            elif t is Notify:
                self.notify(rt, a, deferred)
                deferred = None
            elif t is Log:
                getattr(log, a.level)("[%s] %s", rt.name, a.message)
            elif t is ProbeVips:
                self.probe(rt)
            elif t is CompareData:
                task = self.loop.create_task(self.compare_data(rt, a.peer))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
        if deferred:
            for a in deferred:
                await self.vip_action(rt, a)

    @staticmethod
    def promote_first(rt: Runtime, actions: list) -> bool:
        """Promote before announce: with a master hook, VIPs go up after it has finished."""
        return bool(rt.cfg.notify.master) and any(
            type(a) is Notify and a.state == "MASTER" and not a.reassert for a in actions)

    async def vip_action(self, rt: Runtime, a) -> None:
        t = type(a)
        if t is AddVips:
            if rt.core.state is not State.MASTER:
                return     # a deferred add after we already lost the role
            self.count_errors(rt, await holdings.add(self.ifaces.nl, rt.cfg))
            rt.vips_on = True
            if rt.cfg.garp_delay > 0:
                # keepalived's garp_master_delay: a second burst for whoever missed the first
                self.loop.call_later(rt.cfg.garp_delay, self.announce, rt, rt.cfg.garp_repeat,
                                     rt.became_master)
        elif t is RemoveVips:
            rt.vips_on = False     # no GARP/NA for addresses on their way out
            self.count_errors(rt, await holdings.remove(self.ifaces.nl, rt.cfg))
        elif t is Announce and rt.core.state is State.MASTER and rt.vips_on:
            # not while the VIPs wait for the master hook (a reassert on hearing the old master
            # during the hook): the announce that follows the held-back AddVips covers it
            self.announce(rt, 1 if a.refresh else rt.cfg.garp_repeat)

    @staticmethod
    def count_errors(rt: Runtime, errors: int) -> None:
        for _ in range(errors):
            rt.core.count("netlink_errors")

    def send(self, rt: Runtime, priority: int) -> None:
        sock = self.ifaces.socket(rt.vrrp_ifname, rt.cfg.family)
        if sock is None:
            return
        if rt.vmac is not None and not rt.multicast and priority:
            # Unicast adverts leave from the parent: keep the switch on the VMAC. Before the
            # advert, never after: a higher-priority peer that hears it answers with its own
            # GARP from the VMAC (keepalived does), which must be the last word the switch
            # hears; a refresh sent after the advert could land behind that GARP and leave the
            # switch on our port for good (seen 1 run in 9 with keepalived as the peer).
            try:
                self.ifaces.announcer(rt.vmac.name).send(rt.vmac.refresh_frame)
            except (OSError, LookupError) as e:
                rt.core.count("send_errors")
                log.debug("[%s] VMAC refresh on %s: %s", rt.name, rt.vmac.name, e)
        for payload, dst in rt.adverts(priority):
            try:
                sock.send(payload, dst, rt.local_addr)
            except OSError as e:
                rt.core.count("send_errors")
                log.debug("[%s] send to %s: %s", rt.name, dst, e)

    def announce(self, rt: Runtime, remaining: int, episode: int | None = None) -> None:
        """One GARP/NA round, then the rest of the burst; ``episode`` (a delayed burst) stops
        it once the instance has left MASTER since."""
        if rt.core.state is not State.MASTER or self.runtimes.get(rt.name) is not rt:
            return
        if episode is not None and episode != rt.became_master:
            return
        ifname = rt.cfg.interface
        try:
            frames = rt.frames or rt.announce_frames(self.ifaces.mac, ipv6_forwarding)
            for dev, frame in frames:
                ifname = dev
                ann = self.ifaces.announcer(dev)
                ann.send(frame)
            rt.core.count("announce_sent")
        except (OSError, LookupError) as e:
            log.warning("[%s] gratuitous ARP/NA on %s failed: %s", rt.name, ifname, e)
        if remaining > 1:
            self.loop.call_later(rt.cfg.garp_interval, self.announce, rt, remaining - 1, episode)

    def restore_vips(self, rt: Runtime, dev: str) -> None:
        """A VIP deleted by someone else (`ip addr flush`, a network manager) while we are master
        is put back at once and announced: clients would otherwise lose it until a failover.
        Asked on every change of dev's addresses (200 when 200 masters add theirs): the check
        reads the registry's cache; only a VIP found missing costs a job."""
        if self._gone(rt, dev):
            self.submit(rt.name, lambda: self._restore_vips(rt, dev))

    def _gone(self, rt: Runtime, dev: str) -> list:
        if not rt.vips_on or rt.core.state is not State.MASTER or \
                self.runtimes.get(rt.name) is not rt or not self.ifaces.exists(dev):
            return []
        # (scoped addresses are added by iproute2 with their scope; they are not checked here)
        return [h for h in rt.cfg.held if holdings.dev_of(rt.cfg, h) == dev
                and not h.scope and not self.ifaces.has_address(dev, str(h.address.ip))]

    async def _restore_vips(self, rt: Runtime, dev: str) -> None:
        gone = self._gone(rt, dev)     # again: it may have left MASTER while this waited
        if not gone:
            return
        seen = ", ".join(f"{a.address}/{a.prefixlen}" for a in self.ifaces.get(dev).addrs)
        restored = False
        for h in gone:
            try:
                if not await self.ifaces.nl.add_vip(dev, h.address, h.label):
                    continue     # there after all: its add event was still on its way
            except OSError as e:
                self.count_errors(rt, 1)
                log.error("[%s] cannot put VIP %s back on %s: %s", rt.name, h.address, dev, e)
                continue
            restored = True
            rt.core.count("vip_restored")
            log.warning("[%s] VIP %s was removed from %s by another program while MASTER (%s"
                        " had: %s); put it back", rt.name, h.address, dev, dev, seen or "none")
        if restored:
            self.announce(rt, 1, rt.became_master)     # one round; the refresh timer runs on

    def probe(self, rt: Runtime) -> None:
        """An ARP request (IPv4) or Neighbour Solicitation (IPv6) for the first VIP, from our
        own address (adverts carry VIPs of the instance's family, as local_addr is)."""
        if not rt.vip_addrs or not rt.local_addr:
            return
        try:
            frame = claim_probe(self.ifaces.mac(rt.cfg.interface), rt.local_addr, rt.vip_addrs[0])
            self.ifaces.announcer(rt.cfg.interface).send(frame)
        except (OSError, LookupError, ValueError) as e:
            log.debug("[%s] ARP/NS probe on %s: %s", rt.name, rt.cfg.interface, e)

    async def compare_data(self, rt: Runtime, peer: str) -> None:
        """INFO from our Redis and the peer's, on the loop; the core decides what it means."""
        host = peer if rt.cfg.family == 4 or not peer.startswith("fe80:") \
            else f"{peer}%{rt.cfg.interface}"
        ours, theirs, errors = await compare_inputs(rt.cfg.data_source, host)
        for why in errors:
            log.warning("[%s] data comparison with %s: %s", rt.name, peer, why)
        if self.runtimes.get(rt.name) is rt:
            self.reapply(rt, rt.core.handle(DataCompared(peer, ours, theirs), self.loop.time()))

    async def _held(self, rt: Runtime, held: tuple) -> None:
        for d in held:
            await self.vip_action(rt, d)

    def notify(self, rt: Runtime, a: Notify, deferred: list | None) -> None:
        argv = getattr(rt.cfg.notify, a.state.lower(), ())
        if not argv:
            return
        env = rt.hook_env(a.state, a.prev_state)
        held = tuple(deferred or ())
        promotion = a.state == "MASTER" and not a.reassert

        def on_done(result) -> None:
            if promotion and result is not None and result.returncode == REFUSE_PROMOTION:
                # The hook refused (docs/data-safety.md): the VIPs stay down, the role goes.
                if self.runtimes.get(rt.name) is rt:
                    self.reapply(rt, rt.core.handle(PromotionRefused(
                        result.output or f"exit {REFUSE_PROMOTION}"), self.loop.time()))
                return
            if held:                # promote before announce: VIPs up once the hook is done
                self.submit(rt.name, lambda: self._held(rt, held))
        self.hooks[rt.name].submit(a.state, tuple(argv), env,
                                   on_done if held or promotion else None)
