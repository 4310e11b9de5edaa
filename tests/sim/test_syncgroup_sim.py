"""Sync groups in memory: two hosts, each with an outside and an inside instance on two LANs,
grouped per host. Links are cut per host and LAN (the instance on it goes FAULT, as the driver
reports a link down); time jumps from event to event."""
import heapq

import pytest

from vipd.core.events import AdvertReceived, FaultChanged, SendAdvert, Startup, State
from vipd.core.instance import Instance, RouterParams
from vipd.core.packet import Advert
from vipd.core.syncgroup import GroupNotify, SyncGroup, command

LANS = {"outside": (51, "198.51.100"), "inside": (52, "203.0.113")}


class TwoLans:
    def __init__(self, prios=(150, 100), interval_cs=100, failback="auto", groups=True):
        self.now = 0.0
        self.queue, self.seq = [], 0
        self.cut: set[tuple[int, str]] = set()       # (host, lan) links that are down
        self.dead: set[int] = set()
        self.inst: dict[tuple[int, str], Instance] = {}
        self.groups = {h: SyncGroup(f"edge{h}", tuple(LANS)) for h in range(len(prios))} \
            if groups else {}
        self.hooks: list[tuple[int, str]] = []
        self.log: list[tuple[float, int, str, State, State]] = []
        for h, prio in enumerate(prios):
            for lan, (vrid, net) in LANS.items():
                self.inst[h, lan] = Instance(f"{lan}@h{h}", RouterParams(
                    vrid=vrid, priority=prio, adver_int_cs=interval_cs, vips=(f"{net}.100",),
                    local_addr=f"{net}.{h + 1}", failback=failback, synced=groups), 0.0)

    def start(self):
        for (h, lan), inst in self.inst.items():
            self._apply(h, lan, inst.handle(Startup(), self.now))

    def _apply(self, h, lan, actions):
        inst = self.inst[h, lan]
        for a in actions:
            if isinstance(a, SendAdvert) and (h, lan) not in self.cut:
                adv = Advert(version=3, vrid=inst.params.vrid, priority=a.priority,
                             adver_int_cs=inst.params.adver_int_cs, addresses=inst.params.vips)
                for other in range(len(self.groups) or 2):
                    if other != h and other not in self.dead and (other, lan) not in self.cut:
                        self.seq += 1
                        heapq.heappush(self.queue, (self.now + 0.0005, self.seq, other, lan,
                                                    adv, inst.params.local_addr))
            if hasattr(a, "new"):
                self.log.append((self.now, h, lan, a.old, a.new))
        if h in self.groups:
            self._group(h)

    def _group(self, h, depth=[0]):
        if depth[0]:
            return
        depth[0] += 1
        try:
            group = self.groups[h]
            for _ in range(4):
                actions = group.update(self.views(h))
                if not actions:
                    break
                for a in actions:
                    member, event = command(a)
                    self._apply(h, member, self.inst[h, member].handle(event, self.now))
            self.hooks += [(h, a.state) for a in group.settle(self.views(h))
                           if isinstance(a, GroupNotify)]
        finally:
            depth[0] -= 1

    def views(self, h):
        return {lan: (self.inst[h, lan].state, self.inst[h, lan].wants_master) for lan in LANS}

    def set_link(self, h, lan, up):
        (self.cut.discard if up else self.cut.add)((h, lan))
        faults = frozenset() if up else frozenset({f"link {lan} down"})
        self._apply(h, lan, self.inst[h, lan].handle(FaultChanged(faults), self.now))

    def run_for(self, seconds):
        end = self.now + seconds
        while True:
            timers = [(i.next_deadline(), k) for k, i in self.inst.items()
                      if k[0] not in self.dead and i.next_deadline() is not None]
            t_timer, k = min(timers) if timers else (float("inf"), None)
            t_pkt = self.queue[0][0] if self.queue else float("inf")
            t = min(t_timer, t_pkt)
            if t > end:
                self.now = end
                return
            self.now = t
            if t_pkt <= t_timer:
                _, _, h, lan, adv, src = heapq.heappop(self.queue)
                if h not in self.dead and (h, lan) not in self.cut:
                    self._apply(h, lan, self.inst[h, lan].handle(
                        AdvertReceived(adv, src, 255, True), t))
            else:
                self._apply(*k, self.inst[k].handle_timer(t))

    def holders(self):
        """lan -> hosts whose instance there is MASTER."""
        return {lan: [h for h in range(2) if h not in self.dead
                      and self.inst[h, lan].state is State.MASTER] for lan in LANS}

    def masters_of(self, h, lan, since):
        return [t for t, hh, ll, _, new in self.log if (hh, ll) == (h, lan)
                and new is State.MASTER and t >= since]


BOTH_H1 = {"outside": [0], "inside": [0]}
BOTH_H2 = {"outside": [1], "inside": [1]}


@pytest.mark.parametrize("lan", ["outside", "inside"])
@pytest.mark.parametrize("phase", [0.0, 0.13, 0.5, 0.91])
def test_cut_either_link_moves_both_and_heal_brings_both_back(lan, phase):
    net = TwoLans()
    net.start()
    net.run_for(5 + phase)                  # random phase against the advert timer
    assert net.holders() == BOTH_H1
    assert net.groups[0].state is State.MASTER and net.groups[1].state is State.BACKUP
    t_cut = net.now
    net.set_link(0, lan, up=False)
    net.run_for(10)
    assert net.holders() == BOTH_H2
    other = "inside" if lan == "outside" else "outside"
    assert net.inst[0, lan].state is State.FAULT and net.inst[0, other].state is State.BACKUP
    # h1's healthy member never took the role back while its partner was in FAULT
    assert net.masters_of(0, other, t_cut) == []
    # and h2 took both within one Master_Down_Interval of the cut (plus the priority-0 skew)
    took = max(net.masters_of(1, x, t_cut)[0] for x in LANS) - t_cut
    assert took <= net.inst[1, "outside"].master_down_interval + 0.01
    assert net.groups[0].state is State.FAULT and net.groups[1].state is State.MASTER

    t_heal = net.now
    net.set_link(0, lan, up=True)
    net.run_for(10)
    assert net.holders() == BOTH_H1
    # both came back in the same step: promoted together
    back = [net.masters_of(0, x, t_heal) for x in LANS]
    assert len(back[0]) == len(back[1]) == 1 and back[0] == back[1]
    assert net.groups[0].state is State.MASTER and net.groups[1].state is State.BACKUP
    # hooks once per group transition: h1 BACKUP, MASTER, FAULT, BACKUP, MASTER
    assert [s for h, s in net.hooks if h == 0] == ["BACKUP", "MASTER", "FAULT", "BACKUP",
                                                     "MASTER"]


def test_without_groups_a_cut_moves_only_one_vip():
    """The control for the test above: its assertions catch an ungrouped move."""
    net = TwoLans(groups=False)
    net.start()
    net.run_for(5)
    net.set_link(0, "inside", up=False)
    net.run_for(10)
    assert net.holders() == {"outside": [0], "inside": [1]}


def test_partner_fault_with_no_peer_left_still_serves_the_healthy_vip():
    """keepalived's trap: the whole group sits in FAULT. vipd's yielding partner takes the role
    when nobody else answers."""
    net = TwoLans()
    net.start()
    net.run_for(5)
    net.dead.add(1)                          # h2 gone
    net.set_link(0, "inside", up=False)
    net.run_for(10)
    assert net.holders() == {"outside": [0], "inside": []}
    assert net.inst[0, "outside"].group_yield


def test_weighted_loss_moves_the_group_without_flapping():
    """The driver applies a member's tracking weights to every member of its group (as
    keepalived's group tracking does); both priorities drop, the peer group takes both."""
    net = TwoLans()
    net.start()
    net.run_for(5)
    from vipd.core.events import PriorityChanged
    for lan in LANS:
        net._apply(0, lan, net.inst[0, lan].handle(PriorityChanged(90), net.now))
    t = net.now
    net.run_for(20)
    assert net.holders() == BOTH_H2
    # each instance changed role at most once since: no flapping between the groups
    assert all(len([1 for tt, h, l, _, _ in net.log if (h, l) == k and tt >= t]) <= 1
               for k in net.inst)


def test_one_member_outranked_alone_holds_the_group():
    """Without shared weights the group stays put (no half move): h2's outside wants MASTER,
    its inside still hears h1 at 150, so neither moves."""
    net = TwoLans()
    net.start()
    net.run_for(5)
    from vipd.core.events import PriorityChanged
    net._apply(0, "outside", net.inst[0, "outside"].handle(PriorityChanged(90), net.now))
    net.run_for(20)
    assert net.holders() == BOTH_H1
    assert net.inst[1, "outside"].wants_master and not net.inst[1, "inside"].wants_master
