"""The data-aware split-brain decision in the state machine, with a fake clock: exact actions and
deadlines for each verdict, the hold, the episode, and a promotion the master hook refuses."""
import pytest

from vipd.core.events import (
    Announce, CompareData, DataCompared, Log, Notify, ProbeVips, PromotionRefused, RemoveVips,
    SendAdvert, State, Transition, VipClaimed,
)
from vipd.core.claims import ANSWER_WITHIN, REPROBES
from vipd.core.succession import NO_REPLID, ReplInfo
from vipd.core.timers import master_down_interval_s
from test_instance import PEER, adv, master, only, rx, started

OLD = ReplInfo("master", "1" * 40, NO_REPLID, -1, 1300, keys=14)          # stale primary
NEW = ReplInfo("master", "2" * 40, "1" * 40, 1235, 1500, keys=15)         # promoted from OLD
REPLICA = ReplInfo("slave", "1" * 40, NO_REPLID, -1, 1300, keys=14)
HOLD = 0.5


def data_master(**kw):
    return master(data_hold=HOLD, **kw)


def test_first_advert_of_another_master_asks_once_and_holds():
    inst = data_master()
    acts = rx(inst, adv(200), 4.0)              # higher priority: without data we would yield
    assert acts == [CompareData(PEER)]
    assert inst.state is State.MASTER and inst.next_deadline() == pytest.approx(4.0 + HOLD)
    assert rx(inst, adv(200), 4.2) == []         # still holding: no second compare
    assert inst.counters["data_compares"] == 1


def test_peer_newer_yields_even_with_higher_priority_and_sends_a_parting_advert():
    inst = data_master(priority=200)
    rx(inst, adv(100), 10.0)
    acts = inst.handle(DataCompared(PEER, OLD, NEW), 10.05)
    assert isinstance(acts[0], Log) and "peer-newer" in acts[0].message
    t = acts[1]
    assert t == Transition(State.MASTER, State.BACKUP, t.reason)
    assert t.reason.startswith("yield: peer's Redis is the successor (peer's Redis was promoted"
                               " from ours at offset 1235")
    # the parting advert has priority 0: the winner re-announces without comparing with us
    assert acts[2:] == [SendAdvert(0), RemoveVips(), Notify("BACKUP", "MASTER")]
    assert inst.master_ip == PEER and inst.master_priority == 100
    assert inst.next_deadline() == pytest.approx(10.05 + master_down_interval_s(200, 100))


def test_yielded_host_does_not_preempt_back_under_none():
    inst = data_master(priority=200, failback="none")
    rx(inst, adv(100), 10.0)
    inst.handle(DataCompared(PEER, OLD, NEW), 10.05)
    for t in (11.0, 12.0, 13.0, 14.0, 15.0):
        rx(inst, adv(100), t)
    assert inst.state is State.BACKUP
    assert inst.next_deadline() == pytest.approx(15.0 + master_down_interval_s(200, 100))


def test_ours_newer_keeps_the_role_against_a_higher_priority_and_reasserts():
    inst = data_master()
    rx(inst, adv(200), 10.0)
    acts = inst.handle(DataCompared(PEER, NEW, OLD), 10.05)
    assert only(acts, SendAdvert, Announce, Notify, Transition) == [
        SendAdvert(100), Announce(), Notify("MASTER", "MASTER", reassert=True)]
    assert inst.state is State.MASTER
    assert inst.next_deadline() == pytest.approx(11.05)
    # every advert of the other master is answered until it yields; the hook runs once
    assert only(rx(inst, adv(200), 10.5), SendAdvert, Announce, Notify) == [SendAdvert(100),
                                                                           Announce()]
    assert inst.counters["data_reasserts"] == 2


@pytest.mark.parametrize("ours,theirs", [(REPLICA, OLD), (None, OLD), (OLD, None)])
def test_same_or_unknown_falls_back_to_priority(ours, theirs):
    inst = data_master()
    rx(inst, adv(200), 10.0)
    acts = inst.handle(DataCompared(PEER, ours, theirs), 10.05)
    assert inst.state is State.BACKUP
    assert only(acts, Transition)[0].reason == f"higher priority master {PEER} (200)"
    low = data_master()
    rx(low, adv(50), 10.0)
    acts = low.handle(DataCompared(PEER, ours, theirs), 10.05)
    assert low.state is State.MASTER and only(acts, SendAdvert, Announce) == [SendAdvert(100),
                                                                              Announce()]


def test_no_verdict_within_the_hold_means_priority_decides():
    inst = data_master()
    rx(inst, adv(200), 10.0)
    acts = inst.handle_timer(10.0 + HOLD)
    assert any(isinstance(a, Log) and "no data verdict" in a.message for a in acts)
    assert inst.state is State.BACKUP
    # a verdict that arrives after the episode was settled is recorded, and changes nothing
    assert only(inst.handle(DataCompared(PEER, NEW, OLD), 10.6), Transition, SendAdvert) == []
    assert inst.state is State.BACKUP and inst.contest.data[1].verdict == "ours-newer"


def test_late_verdict_after_priority_reassert_still_yields_to_the_successor():
    inst = data_master(priority=200)
    rx(inst, adv(100), 10.0)
    inst.handle_timer(10.0 + HOLD)             # no verdict: we outrank it, keep the role
    assert inst.state is State.MASTER
    # the answer was lost; the next episode compares again and the successor wins
    assert rx(inst, adv(100), 20.0) == [CompareData(PEER)]
    inst.handle(DataCompared(PEER, OLD, NEW), 20.1)
    assert inst.state is State.BACKUP


def test_a_new_episode_compares_again_but_not_within_one():
    inst = data_master()
    rx(inst, adv(50), 10.0)
    inst.handle(DataCompared(PEER, REPLICA, OLD), 10.01)      # SAME: we outrank it
    assert rx(inst, adv(50), 13.0) == [SendAdvert(100), Announce()]   # gap 3 s: same episode
    assert CompareData(PEER) in rx(inst, adv(50), 16.5)        # silent 3.5 s: a new one
    assert inst.counters["data_compares"] == 2


def test_without_data_source_nothing_is_compared():
    inst = master()
    assert not only(rx(inst, adv(200), 10.0), CompareData)
    assert inst.state is State.BACKUP


def test_master_hook_refusal_gives_the_role_up_and_retries_as_priority_one():
    inst = master(priority=200)
    acts = inst.handle(PromotionRefused("local Redis is empty, peer holds 517 keys"), 5.0)
    assert acts == [Transition(State.MASTER, State.BACKUP, "promotion refused by the master hook:"
                               " local Redis is empty, peer holds 517 keys"),
                    SendAdvert(0), RemoveVips(), Notify("BACKUP", "MASTER")]
    assert inst.refused == ("local Redis is empty, peer holds 517 keys", 5.0)
    assert inst.next_deadline() == pytest.approx(5.0 + master_down_interval_s(1, 100))
    # a later refusal after losing the role is ignored
    assert inst.handle(PromotionRefused("late"), 5.1) == []
    # no one else took over: try again, and a success clears the hold
    acts = inst.handle_timer(inst.next_deadline())
    assert inst.state is State.MASTER
    assert inst.master_down_interval == pytest.approx(master_down_interval_s(200, 100))


def test_priority_zero_from_the_other_master_ends_the_episode_and_reannounces():
    """The other side yielded while our comparison was in flight: its Redis may already be our
    replica (one history), which must not make us yield to its priority."""
    inst = data_master()
    assert rx(inst, adv(200), 4.0) == [CompareData(PEER)]
    assert rx(inst, adv(0), 4.01) == [SendAdvert(100), Announce()]
    assert only(inst.handle(DataCompared(PEER, OLD, REPLICA), 4.02), Transition) == []
    assert inst.state is State.MASTER


def test_parting_advert_after_a_preemption_reannounces_without_rerunning_the_hook():
    inst = master()                        # became master at 3.609375
    acts = rx(inst, adv(50), 4.0)          # the preempted master's parting advert
    assert only(acts, SendAdvert, Announce, Notify) == [SendAdvert(100), Announce()]
    acts = rx(inst, adv(50), 10.0)         # a lower master much later: a split brain
    assert Notify("MASTER", "MASTER", reassert=True) in acts


def test_a_vip_claim_starts_probing_and_the_first_unanswered_probe_reannounces():
    """core/claims.py: a master we cannot hear (e.g. keepalived that yielded silently)."""
    inst = master()                                   # adverts at 4.609375 + k
    acts = inst.handle(VipClaimed("02:00:00:00:00:02"), 4.2)
    assert isinstance(acts[0], Log) and "claims our VIPs" in acts[0].message
    assert inst.handle(VipClaimed("02:00:00:00:00:02"), 4.3) == []     # once per episode
    assert inst.handle_timer(4.609375) == [SendAdvert(100), ProbeVips()]
    assert inst.next_deadline() == pytest.approx(4.709375)              # the answer's deadline
    # answered: asked again at once (it may be letting go on that very advert) ...
    t = 4.609375
    for _ in range(REPROBES):
        inst.handle(VipClaimed("02:00:00:00:00:02"), t + 0.01)         # it still holds the VIP
        t += ANSWER_WITHIN
        assert inst.handle_timer(t) == [ProbeVips()]
        assert inst.next_deadline() == pytest.approx(t + ANSWER_WITHIN)
    inst.handle(VipClaimed("02:00:00:00:00:02"), t + 0.01)
    assert inst.handle_timer(t + ANSWER_WITHIN) == []  # ... but REPROBES times per advert
    assert inst.next_deadline() == pytest.approx(5.609375)
    assert inst.handle_timer(5.609375) == [SendAdvert(100), ProbeVips()]
    acts = inst.handle_timer(5.709375)                                  # no answer: it let go
    assert only(acts, Announce) == [Announce()]
    assert inst.handle_timer(6.609375) == [SendAdvert(100)]             # probing stopped
    assert inst.counters["vip_claim_released"] == 1


def test_a_claimant_letting_go_on_our_advert_is_seen_at_the_reprobe():
    """Heal, winner's advert first: the loser answers the probe that came with our advert, then
    lets go; the re-probe ANSWER_WITHIN later goes unanswered: re-announce 2 x ANSWER_WITHIN
    after our advert, not one advert interval later."""
    inst = master()
    inst.handle(VipClaimed("02:00:00:00:00:02"), 4.2)
    assert inst.handle_timer(4.609375) == [SendAdvert(100), ProbeVips()]
    inst.handle(VipClaimed("02:00:00:00:00:02"), 4.61)                 # answered, then let go
    assert inst.handle_timer(4.709375) == [ProbeVips()]
    acts = inst.handle_timer(4.809375)
    assert only(acts, Announce) == [Announce()] and not inst.claims.active


def test_a_claimant_slow_to_let_go_is_seen_at_the_last_reprobe():
    """A loaded loser answers the advert's probe and the next REPROBES - 1 re-probes, then lets
    go: the last re-probe goes unanswered, REPROBES x ANSWER_WITHIN after the advert's deadline."""
    inst = master()
    inst.handle(VipClaimed("02:00:00:00:00:02"), 4.2)
    t = 4.609375
    assert inst.handle_timer(t) == [SendAdvert(100), ProbeVips()]
    for _ in range(REPROBES):
        inst.handle(VipClaimed("02:00:00:00:00:02"), t + 0.01)
        t += ANSWER_WITHIN
        assert inst.handle_timer(t) == [ProbeVips()]
    acts = inst.handle_timer(t + ANSWER_WITHIN)
    assert only(acts, Announce) == [Announce()] and not inst.claims.active
    assert t + ANSWER_WITHIN == pytest.approx(4.609375 + (REPROBES + 1) * ANSWER_WITHIN)


def test_vip_claims_are_ignored_unless_master():
    inst = started()
    assert inst.handle(VipClaimed("02:00:00:00:00:02"), 1.0) == []
    assert not inst.claims.active
