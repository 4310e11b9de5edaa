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
