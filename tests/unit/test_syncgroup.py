"""vipd.core.syncgroup on its own: which member events and group hooks each situation gives."""
from vipd.core.events import State
from vipd.core.syncgroup import Demote, GroupNotify, Promote, SyncGroup, Yield

B, M, F, I = State.BACKUP, State.MASTER, State.FAULT, State.INIT


def views(out, into):
    return {"out": out, "in": into}


def test_promotes_only_when_every_healthy_member_wants():
    g = SyncGroup("edge", ("out", "in"))
    assert g.update(views((B, True), (B, False))) == []
    assert g.update(views((B, True), (B, True))) == [
        Promote("out", "sync group edge: every member ready"),
        Promote("in", "sync group edge: every member ready")]
    # a member already MASTER counts as ready; a FAULT member does not block
    assert [a.member for a in g.update(views((M, False), (B, True)))] == ["in"]


def test_a_member_leaving_master_demotes_the_others():
    g = SyncGroup("edge", ("out", "in"))
    g.update(views((M, False), (M, False)))
    assert g.update(views((B, False), (M, False))) == [
        Demote("in", "sync group edge: out left MASTER")]


def test_fault_makes_partners_yield_once_and_unyield_when_cleared():
    g = SyncGroup("edge", ("out", "in"))
    g.update(views((B, False), (B, False)))
    assert g.update(views((F, False), (B, False))) == [
        Yield("in", True, "sync group edge: out in FAULT")]
    assert g.update(views((F, False), (B, False))) == []          # said once
    assert g.update(views((B, False), (B, False))) == [
        Yield("out", False, "sync group edge: no member in FAULT"),
        Yield("in", False, "sync group edge: no member in FAULT")]


def test_group_hook_once_per_group_transition():
    g = SyncGroup("edge", ("out", "in"))
    hooks = []
    for v in [views((B, False), (I, False)), views((B, False), (B, False)),
              views((M, False), (B, False)), views((M, False), (M, False)),
              views((M, False), (M, False)), views((F, False), (B, False)),
              views((I, False), (I, False))]:
        hooks += [(a.state, a.prev_state) for a in g.settle(v) if isinstance(a, GroupNotify)]
    assert hooks == [("BACKUP", "INIT"), ("MASTER", "BACKUP"), ("FAULT", "MASTER"),
                     ("STOP", "FAULT")]
    assert g.state is State.INIT


def test_instance_yield_demotes_a_master_and_makes_a_ready_backup_wait_as_priority_1():
    from vipd.core.events import AdvertReceived, GroupCommand, SendAdvert, Startup
    from vipd.core.instance import Instance, RouterParams
    from vipd.core.packet import Advert
    inst = Instance("in", RouterParams(vrid=52, priority=150, vips=("203.0.113.100",),
                                       local_addr="203.0.113.1", synced=True), 0.0)
    inst.handle(Startup(), 0.0)
    mdi = inst.master_down_interval
    assert inst.handle_timer(mdi)[0].message.endswith("waiting for the sync group")
    assert inst.wants_master and inst.state is State.BACKUP     # synced: no MASTER on its own
    inst.handle(GroupCommand("yield", "edge: out in FAULT"), 10.0)
    assert not inst.wants_master
    assert inst.next_deadline() == 10.0 + inst.master_down_interval > 10.0 + mdi   # priority 1
    inst.handle(GroupCommand("unyield", "edge: no member in FAULT"), 11.0)
    inst.handle(GroupCommand("promote", "edge: every member ready"), 11.0)
    assert inst.state is State.MASTER
    # a yielding member never preempts a lower-priority master
    actions = inst.handle(GroupCommand("yield", "edge: out in FAULT"), 12.0)
    assert inst.state is State.BACKUP and SendAdvert(0) in actions
    lower = Advert(version=3, vrid=52, priority=100, adver_int_cs=100, addresses=("203.0.113.100",))
    inst.handle(AdvertReceived(lower, "203.0.113.2", 255, True), 12.5)
    assert inst.master_ip == "203.0.113.2" and not inst.wants_master
