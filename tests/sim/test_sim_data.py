"""Split brain healed in memory, with a model Redis behind each router: the hooks' effects
(MASTER promotes, BACKUP replicates from VIPD_MASTER_IP) and the driver's data comparison are
simulated, the heal comes at random phases of the advert timers and in both crossing orders.

Also the dead-VIP fix without data: whichever advert crosses first, the router that ends as master
re-announces the VIPs after the other one gave them up."""
import heapq
import random

import pytest

from redismodel import Node
from test_sim import Lan
from vipd.core.events import Announce, CompareData, DataCompared, Notify, State


class DataLan(Lan):
    """Lan plus one model Redis per router, the hooks' effects and the driver's comparison."""

    def __init__(self, priorities, **kw):
        super().__init__(priorities, **kw)
        self.redis = [Node() for _ in priorities]
        self.announced = []               # (time, router)
        self.compares = 0
        self.by_addr = {r.params.local_addr: i for i, r in enumerate(self.routers)}

    def _apply(self, i, actions):
        super()._apply(i, actions)
        for a in actions:
            if isinstance(a, Announce):
                self.announced.append((self.now, i))
            elif isinstance(a, Notify) and a.state == "MASTER" and not a.reassert:
                self.redis[i].promote()
            elif isinstance(a, Notify) and a.state == "BACKUP":
                m = self.by_addr.get(self.routers[i].master_ip)
                if m is not None and m != i:
                    self.redis[i].replicate_from(self.redis[m])
            elif isinstance(a, CompareData):
                # the driver's answer: both Redis INFOs, 1-50 ms later
                self.compares += 1
                peer = self.redis[self.by_addr[a.peer]]
                ev = DataCompared(a.peer, self.redis[i].info(), peer.info())
                self.seq += 1
                heapq.heappush(self.queue, (self.now + self.rng.uniform(0.001, 0.05), self.seq, i,
                                            ev, None))

    def writes(self):
        """A client writes to every Redis that is a primary on a host holding the role."""
        for i in self.masters():
            if self.redis[i].primary is None:
                self.redis[i].write()


def split_and_heal(lan, heal_first, seed, split=5.0):
    rng = random.Random(seed)
    lan.start()
    lan.run_until(5.0)
    assert lan.masters() == [0]
    lan.cut.add(frozenset((0, 1)))
    t = lan.now
    while lan.now < t + split + rng.uniform(0, 1.0):     # heal at a random phase
        lan.run_until(lan.now + 0.1)
        lan.writes()
    assert sorted(lan.masters()) == [0, 1]
    # Heal just after the other side sent an advert (lost in the partition): the first advert
    # to cross is heal_first's.
    other = 1 - heal_first
    lan.run_until(lan.routers[other].next_deadline() + 1e-6)
    lan.cut.clear()
    healed = lan.now
    lan.run_until(healed + 10.0)
    return healed


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("heal_first", [0, 1])
@pytest.mark.parametrize("prios", [(200, 100), (100, 200)])
def test_the_promoted_side_keeps_the_role_whatever_crosses_first(prios, heal_first, seed):
    """r1 took over during the split (its Redis was promoted from r0's): it keeps the role, r0
    yields and its Redis replicates from r1's, with r0's priority higher or lower."""
    lan = DataLan(list(prios), seed=seed, failback="none", data_hold=0.5)
    if prios[1] > prios[0]:
        # r1 outranks r0 yet r0 is master first: r0 started alone, r1 joined under failback none
        lan.start(0)
        lan.run_until(4.0)
        lan.start(1)
        lan.start = lambda i=None: None
    healed = split_and_heal(lan, heal_first, seed)
    assert lan.masters() == [1], lan.log[-4:]
    assert lan.redis[0].primary is lan.redis[1]            # the stale side resyncs from r1
    assert lan.compares >= 1
    # exactly one master from shortly after the heal on, and no flapping back
    last = max(t for t, *_ in lan.log)
    assert last - healed <= 1.6
    # the winner re-announced after the loser gave the VIPs up
    loser_left = max(t for t, j, old, new in lan.log if j == 0 and old is State.MASTER)
    assert any(t >= loser_left and j == 1 for t, j in lan.announced)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("heal_first", [0, 1])
def test_without_data_the_winner_reannounces_whatever_crosses_first(heal_first, seed):
    """The dead-VIP fix in the core: priority decides, and after the loser's last yield the
    winner sends a GARP/NA burst within one advert interval."""
    lan = DataLan([200, 100], seed=seed, failback="none")
    healed = split_and_heal(lan, heal_first, seed)
    assert lan.masters() == [0]
    loser_left = max(t for t, j, old, new in lan.log if j == 1 and old is State.MASTER)
    again = [t for t, j in lan.announced if j == 0 and t >= loser_left]
    assert again and again[0] - loser_left <= 1.0 + 0.01, (healed, loser_left, lan.announced)
    assert lan.compares == 0
