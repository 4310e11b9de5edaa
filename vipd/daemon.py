"""The asyncio driver: the only place that reads the clock and touches the world.

The driver routes events to the cores: datagrams from the interface registry's VRRP sockets
(vipd/interfaces.py owns sockets, announcers, link state and netlink), link changes, check
results, the control socket and one timer armed from a heap of the cores' deadlines. Actions
returned by the cores are carried out in order by vipd/applier.py.
"""
from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import logging
import signal
import time

from vipd import config as configmod
from vipd.control import ControlServer
from vipd.core import packet
from vipd.core.events import (
    DrainChanged, FailbackApproved, FaultChanged, GateChanged, PriorityChanged, Shutdown,
    SourceAddressChanged, Startup, State, VipClaimed,
)
from vipd.core.tracking import effective_priority, track_file_effect, tracked_applies
from vipd import holdings
from vipd.applier import Applier
from vipd.net import vmac
from vipd.checks import CheckRunner
from vipd.groups import GroupRunner
from vipd.heartbeat import Heartbeats
from vipd.hooks import HookQueue
from vipd.interfaces import InterfaceRegistry
from vipd.net.rawsock import VrrpSocket
from vipd.net.timerfd import TimerFd
from vipd.observe import Observer
from vipd.redisinfo import replications
from vipd.detached import detached_replica
from vipd.net.claimwatch import ClaimWatchers
from vipd.runtime import Runtime
from vipd.scriptsec import load_checked
from vipd.sdnotify import Notifier
from vipd.trackfiles import FileTracker

log = logging.getLogger("vipd")
RX_BATCH = 64     # datagrams read per wake-up before timers get a turn
_CHECKSUM_COUNTER = {m: "rx_checksum_" + m for m in packet.CHECKSUM_MODES}


def _ifnames(cfg: configmod.InstanceConfig) -> list[str]:
    """Every interface an instance uses: its own, its VIPs' devs, tracked, heartbeat."""
    return [cfg.interface, *(holdings.dev_of(cfg, h) for h in cfg.held),
            *(t.name for t in cfg.track_interfaces), *(hb.interface for hb in cfg.heartbeat)]


class Daemon:
    def __init__(self, cfg: configmod.Config) -> None:
        self.config = cfg
        self.runtimes: dict[str, Runtime] = {}
        self.rx_errors: dict[str, int] = {}
        self._hooks: dict[str, HookQueue] = {}
        self._heap: list = []
        self._seq = itertools.count()
        self._tfd: TimerFd | None = None
        self._armed_at: float | None = None
        self._stop = asyncio.Event()
        self.sd = Notifier()
        self._status_pending = False
        self.checks: dict[str, CheckRunner] = {}
        self.observer = Observer()      # metrics and `vipd events` see the driver through it
        self._metrics = None
        self.files: FileTracker | None = None
        self.groups: dict[str, GroupRunner] = {}
        self._reloads: set[asyncio.Task] = set()
        self._reload_lock = asyncio.Lock()

    # ---- lifecycle ----------------------------------------------------------------------

    async def run(self) -> int:
        self.loop = asyncio.get_running_loop()
        self._tfd = TimerFd()
        self.loop.add_reader(self._tfd.fileno(), self._on_timer)
        self.ifaces = InterfaceRegistry(self.loop, self._on_readable, self._on_iface_change)
        await self.ifaces.start()
        await self.ifaces.prime(n for cfg in self.config.instances for n in _ifnames(cfg))
        self.claim_watch = ClaimWatchers(self.loop, self._on_claim, self._rx_error)
        self.heartbeats = Heartbeats(self.loop, self._apply, self._rx_error)
        self.applier = Applier(self.loop, self.runtimes, self.ifaces, self._hooks, self.heartbeats,
                               self.observer, self._status_changed, self._apply)
        self.control = ControlServer(self.config.global_.socket, self._control, self.observer)
        await self.control.start()
        if self.config.global_.metrics:
            from vipd.metrics import MetricsServer     # prometheus-client only when configured
            self._metrics = MetricsServer(self, self.config.global_.metrics)
            await self._metrics.start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, self._stop.set)
        self.loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        self._remove_leftover_vips(self.config.instances)
        self.files = FileTracker(self._on_file_change)
        self._sync_checks()
        self._sync_groups()
        for cfg in self.config.instances:
            self._add_instance(cfg)
        self._sync_claim_watch()          # once: each watch change rebuilds a socket and filter
        log.info("vipd running: router_id %s, %d instance(s), control socket %s",
                 self.config.global_.router_id, len(self.runtimes), self.config.global_.socket)
        self.sd.ready(self.summary())     # every instance has its sockets and a first state
        if self.sd.watchdog_interval:
            self._watchdog()
        await self._stop.wait()
        log.info("stopping")
        self.sd.stopping()
        for name in list(self.runtimes):
            self._remove_instance(name)
        await self.applier.idle()          # VIPs down before netlink closes
        await asyncio.gather(*(c.stop() for c in self.checks.values()))
        self.files.close()
        await asyncio.gather(*(q.wait_idle(q.timeout + 1) for q in self._hooks.values()))
        await asyncio.gather(*(g.hooks.wait_idle(g.hooks.timeout + 1)
                               for g in self.groups.values()))
        await self.control.close()
        if self._metrics:
            await self._metrics.close()
        self.loop.remove_reader(self._tfd.fileno())
        self._tfd.close()
        self.claim_watch.close()
        self.ifaces.close()
        self.sd.close()
        log.info("stopped")
        return 0

    # ---- systemd ------------------------------------------------------------------------

    def _watchdog(self) -> None:
        """WATCHDOG=1 from the event loop itself: a stuck loop stops pinging and is restarted."""
        self.sd.watchdog()
        self.loop.call_later(self.sd.watchdog_interval, self._watchdog)

    def summary(self) -> str:
        """One line for systemctl status: how many instances are in each state."""
        counts: dict[str, int] = {}
        for rt in self.runtimes.values():
            counts[str(rt.core.state)] = counts.get(str(rt.core.state), 0) + 1
        states = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"
        return f"{len(self.runtimes)} instance(s): {states}"

    def _status_changed(self) -> None:
        # Once per loop turn, however many instances moved in it (200 at start-up).
        if self.sd.enabled and not self._status_pending:
            self._status_pending = True
            self.loop.call_soon(self._send_status)

    def _send_status(self) -> None:
        self._status_pending = False
        self.sd.status(self.summary())

    def _remove_leftover_vips(self, cfgs) -> None:
        """A crashed run may have left VIPs on interfaces: nobody is announcing them now. In the
        applier's queue, ahead of anything the instance itself will queue."""
        for cfg in cfgs:
            # The registry has read these interfaces: no request for a VIP that is not there
            # (at start, 200 instances would otherwise queue 200 refused deletes).
            if cfg.virtual_routes or cfg.virtual_rules or any(
                    self.ifaces.has_address(holdings.dev_of(cfg, h), str(h.address.ip))
                    for h in cfg.held):
                self.applier.submit(cfg.name, functools.partial(
                    holdings.remove, self.ifaces.nl, cfg, leftovers=True))
            if cfg.use_vmac and vmac.remove_leftover(cfg.vmac_name):
                log.warning("[%s] removed leftover VMAC interface %s", cfg.name, cfg.vmac_name)

    def _add_instance(self, cfg: configmod.InstanceConfig) -> None:
        now = self.loop.time()
        rt = Runtime(cfg, self.ifaces.source_address(cfg) or "", now,
                     synced=self.config.sync_group_of(cfg.name) is not None)
        self.runtimes[cfg.name] = rt
        if cfg.use_vmac:
            self._add_vmac(rt)
        self.ifaces.attach(rt)
        self._hooks[cfg.name] = HookQueue(cfg.name, cfg.notify.timeout,
                                          self.config.global_.script_user)
        self._hooks[cfg.name].on_result = self.observer.hook
        for name in (cfg.interface, *(hb.interface for hb in cfg.heartbeat)):
            self.ifaces.link_up(name)
        if cfg.heartbeat:
            self.heartbeats.add(rt)
        self._refresh_faults(rt)     # in INIT this only records faults and priority
        self._apply(rt, rt.core.handle(Startup(), now))

    def _sync_checks(self) -> None:
        """Start runners for new or changed checks, stop those gone or changed; track the files
        the instances name."""
        self.files.track(f.path for i in self.config.instances for f in i.track_files)
        wanted = self.config.checks
        for name, runner in list(self.checks.items()):
            if wanted.get(name) != runner.cfg:
                self.loop.create_task(self.checks.pop(name).stop())
        for name, cfg in wanted.items():
            if name not in self.checks:
                runner = self.checks[name] = CheckRunner(cfg, self._on_check_change,
                                                         self.config.global_.script_user)
                runner.on_result = self.observer.check
                runner.start()

    def _add_vmac(self, rt: Runtime) -> None:
        """The VMAC interface: VIPs live on it, GARPs (and multicast adverts) leave from it."""
        v = vmac.for_instance(rt.cfg)
        try:
            v.create()
            v.set_link_local(rt.local_addr)   # IPv6: the adverts' source must be on the VMAC
        except OSError as e:
            v.remove()
            log.error("[%s] cannot create VMAC interface %s: %s", rt.name, v.name, e)
            return
        rt.vmac = v
        if rt.multicast:              # its VRRP socket: see vipd/net/vmac.py (unicast: parent)
            rt.vrrp_ifname = v.name

    def _sync_groups(self) -> None:
        """Keep the runners of groups whose members did not change (their state and history;
        a changed hook is taken over), make new ones for new or re-membered groups."""
        old = self.groups
        self.groups = {}
        for g in self.config.sync_groups:
            runner = old.get(g.name)
            if runner is not None and runner.cfg.instances == g.instances:
                runner.cfg = g
            else:
                runner = GroupRunner(g, self.config.global_.script_user)
            runner.hooks.on_result = self.observer.hook   # group hook runs reach metrics, events
            self.groups[g.name] = runner

    def _group_step(self, rt: Runtime) -> None:
        group = self.config.sync_group_of(rt.name)
        runner = self.groups.get(group.name) if group else None
        if runner is not None:
            runner.step(self.runtimes, self._apply, self._hooks, self.loop.time())

    def _remove_instance(self, name: str) -> None:
        rt = self.runtimes[name]
        self._apply(rt, rt.core.handle(Shutdown(), self.loop.time()))   # a sync group sees it
        del self.runtimes[name]
        rt.deadline = None
        if name in self.applier.queued:
            # its last actions (VIPs down, the priority-0 advert) wait in the applier's queue:
            # its sockets and VMAC go after them
            async def release_after() -> None:
                self._release(rt)
            self.applier.submit(name, release_after)
        else:
            self._release(rt)

    def _release(self, rt: Runtime) -> None:
        """Closes what only this instance used (sockets, its VMAC)."""
        if rt.cfg.heartbeat:     # (re-added by a reload: what the new one took over stays)
            self.heartbeats.remove(rt)
        self.ifaces.detach(rt)
        if rt.vmac is not None:
            rt.vmac.remove()

    def _on_sighup(self) -> None:
        task = self.loop.create_task(self.reload())
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def reload(self) -> dict:
        """SIGHUP: validate first; a bad config changes nothing. Unchanged instances keep state."""
        async with self._reload_lock:     # a second SIGHUP waits for the first reload
            return await self._reload()

    async def _reload(self) -> dict:
        path = self.config.path
        self.sd.reloading()
        try:
            new = load_checked(path)
        except configmod.ConfigError as e:
            log.error("reload rejected, running config kept:\n%s", e)
            self.sd.ready(self.summary())
            return {"ok": False, "error": str(e)}
        # Interfaces new instances use are read before anything changes (see interfaces.prime).
        await self.ifaces.prime(n for cfg in new.instances for n in _ifnames(cfg))
        added, removed, changed, unchanged = configmod.diff_instances(self.config, new)
        for name in sorted(removed | changed):
            self._remove_instance(name)
        self.config = new
        self._sync_checks()
        self._sync_groups()
        self._remove_leftover_vips([new.instance(n) for n in sorted(added)])
        for name in sorted(added | changed):
            self._add_instance(new.instance(name))
        self._sync_claim_watch()          # the VIPs of all instances now running, once
        log.info("reloaded %s: %d added, %d removed, %d changed, %d unchanged", path,
                 len(added), len(removed), len(changed), len(unchanged))
        self.sd.ready(self.summary())
        return {"ok": True, "added": sorted(added), "removed": sorted(removed),
                "changed": sorted(changed), "unchanged": sorted(unchanged)}

    # ---- timers: one timerfd for all cores, fed from a heap of their deadlines ---------

    def _touch(self, rt: Runtime) -> None:
        d = rt.core.next_deadline()
        if d == rt.deadline:
            return
        rt.deadline = d
        if d is None:
            return
        heapq.heappush(self._heap, (d, next(self._seq), rt))
        if self._armed_at is None or d < self._armed_at:
            self._arm(d)

    def _arm(self, when: float) -> None:
        self._armed_at = when
        self._tfd.set(when)       # loop.time() is CLOCK_MONOTONIC, like the timerfd

    def _on_timer(self) -> None:
        self._tfd.clear()
        self._armed_at = None
        now = self.loop.time()
        heap = self._heap
        while heap and heap[0][0] <= now:
            d, _, rt = heapq.heappop(heap)
            if rt.deadline != d or self.runtimes.get(rt.name) is not rt:
                continue      # stale entry: the deadline moved since it was pushed
            rt.deadline = None
            self._apply(rt, rt.core.handle_timer(now))
        while heap and heap[0][2].deadline != heap[0][0]:
            heapq.heappop(heap)
        if heap:
            self._arm(heap[0][0])

    # ---- receive path -------------------------------------------------------------------

    def _on_readable(self, sock: VrrpSocket, by_vrid: dict[int, Runtime], family: int) -> None:
        now = self.loop.time()
        mcast = packet.MCAST_V4 if family == 4 else packet.MCAST_V6
        for src, dst, ttl, payload in sock.recv_batch(RX_BATCH, self._rx_error):
            rt = by_vrid.get(payload[1]) if len(payload) > 1 else None
            if rt is not None and payload == rt.rx_payload and src == rt.rx_src \
                    and dst == rt.rx_dst:
                # A master re-sends the same bytes until its state changes: the same datagram
                # from the same sender decodes (and checksums) as it did last time.
                adv = rt.rx_advert
            else:
                try:
                    adv = packet.decode(payload, src, dst, family)
                except packet.MalformedPacket as e:
                    if rt is not None:
                        rt.core.count_discard(e.reason)
                    else:
                        self._rx_error(e.reason.value)
                    continue
                if rt is None:
                    self._rx_error("unknown_vrid")
                    continue
                rt.rx_payload, rt.rx_src, rt.rx_dst, rt.rx_advert = payload, src, dst, adv
            if family == 4 and adv.version == 3:
                rt.core.count(_CHECKSUM_COUNTER[adv.checksum_mode])
            actions = rt.core.on_advert(adv, src, ttl, dst == mcast, now)
            if actions:
                self._apply(rt, actions)
            else:
                self._touch(rt)

    def _rx_error(self, reason: str) -> None:
        self.rx_errors[reason] = self.rx_errors.get(reason, 0) + 1

    # ---- links and faults ---------------------------------------------------------------

    def _on_iface_change(self, ifname: str) -> None:
        """An interface appeared, went, was replaced, or changed link state or addresses."""
        self.heartbeats.link_changed(ifname, self.ifaces.link_up(ifname))
        for rt in list(self.runtimes.values()):
            devs = {holdings.dev_of(rt.cfg, h) for h in rt.cfg.held}
            if ifname in devs:
                rt.frames = None          # re-created with another MAC: GARP/NA built again
            if ifname == rt.cfg.interface:
                self._follow_parent(rt)
                self._follow_source(rt)
            if ifname == rt.cfg.interface or any(
                    t.name == ifname for t in rt.cfg.track_interfaces):
                self._refresh_faults(rt)
            if ifname in devs and rt.vips_on and rt.core.state is State.MASTER:
                self.applier.restore_vips(rt, ifname)

    def _follow_parent(self, rt: Runtime) -> None:
        """Deleting an interface deletes its VMAC: made again once the interface is back (the
        instance is in FAULT meanwhile; VIPs and the socket follow the new macvlan's events)."""
        if rt.vmac is None or rt.vmac.present() or not self.ifaces.exists(rt.cfg.interface):
            return
        try:
            rt.vmac.create()
            rt.vmac.set_link_local(self.ifaces.source_address(rt.cfg) or "")
        except OSError as e:
            log.error("[%s] cannot make VMAC interface %s again: %s", rt.name, rt.vmac.name, e)
            return
        log.warning("[%s] VMAC interface %s made again on %s", rt.name, rt.vmac.name,
                    rt.cfg.interface)

    def _follow_source(self, rt: Runtime) -> None:
        """A new primary / link-local address (or none) is what adverts are sent from."""
        local = self.ifaces.source_address(rt.cfg) or ""
        if local != rt.local_addr:
            if rt.vmac is not None:
                try:
                    rt.vmac.set_link_local(local)   # IPv6: adverts leave from the VMAC
                except OSError as e:
                    log.error("[%s] VMAC %s: %s", rt.name, rt.vmac.name, e)
            rt.set_local_addr(local)      # adverts are encoded again from the new source
            self._apply(rt, rt.core.handle(SourceAddressChanged(local), self.loop.time()))

    def _on_file_change(self, path: str) -> None:
        for rt in list(self.runtimes.values()):
            if any(f.path == path for f in rt.cfg.track_files):
                self._refresh_faults(rt)

    def _on_check_change(self, runner: CheckRunner) -> None:
        for rt in list(self.runtimes.values()):
            if runner.name in rt.cfg.failback_gate or any(
                    t.name == runner.name for t in rt.cfg.track_checks):
                self._refresh_faults(rt)

    def _tracking(self, rt: Runtime) -> tuple[set[str], list[int]]:
        """(faults, weights that apply) from the tracked interfaces, checks and files."""
        faults, weights = set(), []
        items = [(rt.cfg.interface, 0, False)] + [(t.name, t.weight, t.reverse)
                                                 for t in rt.cfg.track_interfaces]
        for name, weight, reverse in items:
            if tracked_applies(self.ifaces.link_up(name), reverse):
                if weight == 0:
                    faults.add(f"link {name} up (reverse)" if reverse
                               else f"link {name} down" if self.ifaces.exists(name)
                               else f"interface {name} missing")
                else:
                    weights.append(weight)
        for t in rt.cfg.track_checks:
            runner = self.checks.get(t.name)
            if runner is not None and tracked_applies(runner.ok, t.reverse):
                weight = runner.cfg.weight if t.weight is None else t.weight
                if weight == 0:
                    faults.add(f"check {t.name} {'passing (reverse)' if t.reverse else 'failing'}")
                else:
                    weights.append(weight)
        for f in rt.cfg.track_files:
            value = self.files.values.get(f.path, 0)
            effect = track_file_effect(value, f.weight, f.reverse)
            if effect is None:
                faults.add(f"track file {f.path} = {value}")
            elif effect:
                weights.append(effect)
        if not rt.local_addr and self.ifaces.exists(rt.cfg.interface):
            faults.add(f"no source address on {rt.cfg.interface}")
        return faults, weights

    def _refresh_faults(self, rt: Runtime) -> None:
        now = self.loop.time()
        group = self.config.sync_group_of(rt.name)
        members = [rt] if group is None else [
            self.runtimes[m] for m in group.instances if m in self.runtimes]
        tracked = {m.name: self._tracking(m) for m in members}
        # In a sync group every member's weights count for all (keepalived's group tracking):
        # a weighted loss on one member lowers the whole group, so the peer group can take it
        # as a whole instead of one member waiting forever for partners that still outrank.
        shared = [w for _, weights in tracked.values() for w in weights]
        for m in members:
            faults = frozenset(tracked[m.name][0])
            if faults != m.core.faults:
                self._apply(m, m.core.handle(FaultChanged(faults), now))
            priority = effective_priority(m.cfg.priority, shared)
            if priority != m.core.priority:
                self._apply(m, m.core.handle(PriorityChanged(priority), now))
            if m.cfg.failback_gate:
                gate_ok = not self._failing_gates(m)
                if gate_ok != m.core.failback.gate_ok:
                    self._apply(m, m.core.handle(GateChanged(gate_ok), now))

    def _failing_gates(self, rt: Runtime) -> dict[str, str]:
        """Gate checks that do not pass (no result yet counts as failing), with their output."""
        failing = {}
        for name in rt.cfg.failback_gate:
            runner = self.checks.get(name)
            if runner is None or runner.ok is not True:
                failing[name] = runner.output if runner and runner.output else "no result yet"
        return failing

    # ---- actions ------------------------------------------------------------------------

    def _apply(self, rt: Runtime, actions: list) -> None:
        """Carries the actions out (vipd/applier.py), then re-arms the timer from the core's next
        deadline and lets a sync group follow."""
        self.applier.apply(rt, actions)
        self._touch(rt)
        if rt.core.params.synced:
            self._group_step(rt)

    def _sync_claim_watch(self) -> None:
        wanted: dict[str, set[str]] = {}
        for rt in self.runtimes.values():      # IPv4 VIPs: ARP; IPv6 VIPs: NA (claimwatch.py)
            wanted.setdefault(rt.cfg.interface, set()).update(rt.vip_addrs)
        for why in self.claim_watch.sync(wanted):
            log.warning("%s", why)

    def _on_claim(self, ifname: str, vip: str, mac: bytes) -> None:
        """Another host says it has one of our VIPs (core/claims.py decides what it means)."""
        try:
            if mac == self.ifaces.mac(ifname):
                return
        except (OSError, LookupError):
            return
        now = self.loop.time()
        for rt in list(self.runtimes.values()):
            if rt.cfg.interface == ifname and vip in rt.vip_addrs:
                self._apply(rt, rt.core.handle(VipClaimed(mac.hex(":")), now))

    # ---- control ------------------------------------------------------------------------

    def status(self) -> dict:
        now = self.loop.time()
        offset = time.time() - now
        return {"router_id": self.config.global_.router_id,
                "instances": [{**rt.status(now, offset, self._check_status(rt),
                                           self._hooks[rt.name].last),
                               **self.heartbeats.status(rt, now, self.ifaces.link_up)}
                              for rt in self.runtimes.values()],
                "sync_groups": [g.status() for g in self.groups.values()],
                "rx_errors": dict(sorted(self.rx_errors.items()))}

    async def _status_reply(self) -> dict:
        """status, with each instance's detached replica (vipd/detached.py): its Redis asked now."""
        infos = await replications({n: rt.cfg.data_source for n, rt in self.runtimes.items()
                                    if rt.cfg.data_source})
        st = self.status()
        for i in st["instances"]:
            i["detached_replica"] = detached_replica(infos.get(i["name"]), i["hook"])
        return {"ok": True, "status": st}

    def _check_status(self, rt: Runtime) -> dict:
        names = [t.name for t in rt.cfg.track_checks] + list(rt.cfg.failback_gate)
        return {n: self.checks[n].status() for n in dict.fromkeys(names) if n in self.checks}

    def _control(self, req: dict) -> dict:
        cmd = req.get("cmd")
        if cmd == "status":
            return self._status_reply()
        if cmd == "reload":
            return self.reload()
        if cmd in ("failback", "drain", "undrain"):
            rt = self.runtimes.get(req.get("instance", ""))
            if rt is None:
                return {"ok": False, "error": f"no instance {req.get('instance')!r};"
                                              f" have {sorted(self.runtimes)}"}
            if cmd == "failback":
                if not rt.core.outranks_master or rt.core.drained:
                    return {"ok": False, "error": f"{rt.name}: no failback pending (state"
                            f" {rt.core.state}, master {rt.core.master_ip or 'unknown'}"
                            f"{', drained' if rt.core.drained else ''})"}
                failing = self._failing_gates(rt)
                if failing and not req.get("force"):
                    return {"ok": False, "error": "failback refused, gate failing: " + "; ".join(
                        f"{n}: {out}" for n, out in failing.items()) + " (use --force)"}
                ev = FailbackApproved(force=bool(req.get("force")))
            else:
                ev = DrainChanged(cmd == "drain")
            self._apply(rt, rt.core.handle(ev, self.loop.time()))
            return {"ok": True, "state": str(rt.core.state)}
        return {"ok": False, "error": f"unknown command {cmd!r}"}


async def main(cfg: configmod.Config) -> int:
    return await Daemon(cfg).run()
