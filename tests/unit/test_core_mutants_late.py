"""Tests that kill the mutants of vipd/core found by the mutation run of the functions that
changed late in issue 13's round (instance.py after the split into failback.py and params.py,
paths.py), and of contest/claims/succession, which no earlier run reached (docs/testing.md).

Each test names what it pins; a mutant that survives all of them is explained in
docs/testing.md as equivalent.
"""
import pytest

from vipd.core.events import (
    AdvertReceived, Announce, DataCompared, DrainChanged, FailbackApproved, FaultChanged,
    GateChanged, GroupCommand, Log, Notify, PriorityChanged, PromotionRefused, SendAdvert,
    Startup, State, Transition, VipClaimed,
)
from vipd.core.claims import ClaimProbe
from vipd.core.contest import ASK, Contest
from vipd.core.instance import Instance
from vipd.core.paths import HeartbeatPath
from vipd.core.succession import NO_REPLID, ReplInfo, Verdict, compare, parse_info
from vipd.core.timers import master_down_interval_s
from test_instance import PEER, adv, master, only, params, rx, started

OLD = ReplInfo("master", "1" * 40, NO_REPLID, -1, 1300, keys=14)          # stale primary
NEW = ReplInfo("master", "2" * 40, "1" * 40, 1235, 1500, keys=15)         # promoted from OLD
MAC = "02:00:00:00:00:02"


def logs(actions):
    return [(a.level, a.message) for a in actions if isinstance(a, Log)]


def test_fresh_instance_public_attributes():
    inst = Instance("web", params())
    assert inst.name == "web" and inst.failback.name == "web"
    assert inst.last_other_master is None and inst.refused is None
    assert inst.wants_master is False


def test_vip_claim_is_counted_and_logged_as_a_warning():
    inst = master()
    acts = inst.handle(VipClaimed(MAC), 4.2)
    assert acts == [Log("warning", f"{MAC} claims our VIPs while we are master: a master we"
                                   " cannot hear; probing for it with each advert")]
    assert inst.counters["vip_claims"] == 1


def test_released_claim_reannounces_with_an_info_line():
    inst = master()                                   # adverts at 4.609375 + k
    inst.handle(VipClaimed(MAC), 4.2)
    inst.handle_timer(4.609375)                       # advert + probe
    assert inst.handle_timer(4.709375) == [
        Announce(), Log("info", "the other claimant of our VIPs let go: re-announcing")]


def test_leaving_master_stops_the_claim_probe():
    inst = master()
    inst.handle(VipClaimed(MAC), 4.2)
    inst.handle_timer(4.609375)                       # probe sent: an answer deadline at +0.1
    rx(inst, adv(200), 4.65)                          # a higher master: BACKUP
    assert inst.state is State.BACKUP and not inst.claims.active
    assert inst.next_deadline() == pytest.approx(4.65 + master_down_interval_s(100, 100))


def test_data_hold_is_not_cut_short_by_an_advert_timer_and_its_end_is_a_warning():
    inst = master(data_hold=2.5)                      # adverts at 4.609375 + k
    rx(inst, adv(200), 4.7)                           # asks; decision held until 7.2
    for t in (5.609375, 6.609375):
        assert inst.handle_timer(t) == [SendAdvert(100)]
        assert inst.state is State.MASTER
    acts = inst.handle_timer(7.2)
    assert logs(acts)[0] == ("warning", f"no data verdict for {PEER} within 2.5s; priority"
                                        " decides")
    assert inst.state is State.BACKUP


def test_priority_zero_to_a_master_keeps_the_actions_before_it():
    inst = master()
    acts = rx(inst, adv(0, addrs=("198.51.100.199",)), 5.0)     # also another VIP list
    assert [type(a) for a in acts] == [Log, SendAdvert, Announce]
    assert acts[0].level == "warning" and "lists VIPs" in acts[0].message


def test_backup_forgets_a_leaving_master_as_none():
    inst = started()
    rx(inst, adv(200), 1.0)
    assert inst.master_ip == PEER
    rx(inst, adv(0), 2.0)
    assert inst.master_ip is None and inst.master_priority is None


def test_data_yield_counts_its_priority_zero_parting_advert():
    inst = master(data_hold=0.5, priority=200)
    rx(inst, adv(100), 10.0)
    acts = inst.handle(DataCompared(PEER, OLD, NEW), 10.05)
    assert SendAdvert(0) in acts
    assert inst.counters["priority0_sent"] == 1 and inst.counters["data_yields"] == 1


def test_data_reassert_says_why_and_the_comparison_is_an_info_line():
    inst = master(data_hold=0.5)
    rx(inst, adv(200), 10.0)
    acts = inst.handle(DataCompared(PEER, NEW, OLD), 10.05)
    lines = logs(acts)
    assert lines[0][0] == "info" and lines[0][1].startswith(f"data compared with {PEER}: ")
    assert lines[1][0] == "warning" and lines[1][1].startswith(
        f"master {PEER} (200) seen; keeping the role, our Redis is newer (")


def test_refused_promotion_is_counted_and_stamped_with_its_time():
    inst = master()
    inst.handle(PromotionRefused("empty"), 5.0)
    assert inst.counters["promotions_refused"] == 1
    assert inst.since == 5.0 and inst.history[-1][0] == 5.0


def test_lower_master_exactly_three_intervals_after_becoming_master_is_not_a_split_brain():
    inst = master()                                   # MASTER at 3.609375, interval 1 s
    s = inst.since
    acts = rx(inst, adv(50), s + 3.0)                 # exactly 3 intervals: not "> recent"
    assert Notify("MASTER", "MASTER", reassert=True) not in acts
    inst2 = master()
    assert Notify("MASTER", "MASTER", reassert=True) in rx(inst2, adv(50), s + 3.0 + 1e-6)


def test_approval_outside_backup_is_refused_even_with_a_lower_master_known():
    inst = started(failback="semi-auto", priority=150)
    rx(inst, adv(100), 1.0)                           # a lower master: failback pending
    assert inst.outranks_master
    inst.handle(FaultChanged(frozenset({"eth0 down"})), 2.0)
    assert inst.state is State.FAULT
    assert inst.handle(FailbackApproved(), 2.5) == [] and inst.failback.approved is False


def test_approval_inside_preempt_delay_waits_for_it():
    inst = started(preempt_delay=10.0, priority=150)
    rx(inst, adv(100), 1.0)
    assert inst.handle(FailbackApproved(), 2.0)       # approved, logged
    # under auto the delay still rules: no take-over now, the down timer stays as it was
    assert inst.next_deadline() == pytest.approx(1.0 + master_down_interval_s(150, 100))


def test_yield_command_resets_a_ready_backup_to_not_ready():
    inst = started(synced=True)
    inst.handle_timer(inst.next_deadline())           # down timer: ready, waiting for the group
    assert inst.wants_master is True
    inst.handle(GroupCommand("yield", "partner in FAULT"), 5.0)
    assert inst.wants_master is False


def test_priority_rise_below_the_master_does_not_take_over():
    inst = started()
    rx(inst, adv(200), 1.0)                           # a higher master
    inst.handle(PriorityChanged(120), 2.0)            # still below it
    assert inst.next_deadline() == pytest.approx(1.0 + master_down_interval_s(100, 100))
    assert not only(inst.handle_timer(2.0), Transition)


# ---- succession: the reasons an operator reads in status and logs ------------------------------

A = ReplInfo("master", "a" * 40, NO_REPLID, -1, 100, keys=3)
B_FROM_A = ReplInfo("master", "b" * 40, "a" * 40, 51, 120, keys=4)
EMPTY = ReplInfo("master", "c" * 40, NO_REPLID, -1, 0, keys=0)
OTHER = ReplInfo("master", "d" * 40, NO_REPLID, -1, 7, keys=2)


@pytest.mark.parametrize("ours,peer,verdict,why", [
    (None, A, "unknown", "no INFO from our Redis"),
    (A, None, "unknown", "no INFO from the peer's Redis"),
    (A, ReplInfo("slave", "a" * 40, NO_REPLID, -1, 90, keys=3), "same",
     "one history (aaaaaaaa): not diverged"),
    (ReplInfo("master", "a" * 40, "b" * 40, 5, 100, keys=3), B_FROM_A, "unknown",
     "each Redis claims to succeed the other"),
    (A, B_FROM_A, "peer-newer", "peer's Redis was promoted from ours at offset 51"
     " (master bbbbbbbb@120 keys=4; ours master aaaaaaaa@100 keys=3)"),
    (B_FROM_A, A, "ours-newer", "our Redis was promoted from the peer's at offset 51"
     " (ours master bbbbbbbb@120 keys=4; peer master aaaaaaaa@100 keys=3)"),
    (EMPTY, A, "peer-newer", "our Redis is empty, the peer's holds 3 keys (unrelated histories)"),
    (A, EMPTY, "ours-newer", "the peer's Redis is empty, ours holds 3 keys (unrelated histories)"),
    (A, OTHER, "unknown", "unrelated histories (ours master aaaaaaaa@100 keys=3; peer"
     " master dddddddd@7 keys=2)"),
])
def test_every_comparison_says_why_in_full(ours, peer, verdict, why):
    got = compare(ours, peer)
    assert (str(got.verdict), got.why) == (verdict, why)
    assert type(got.verdict) is Verdict


def test_info_without_promotion_fields_reads_as_never_promoted():
    info = parse_info("# Replication\r\nrole:master\r\nmaster_replid:" + "e" * 40
                      + "\r\nmaster_repl_offset:0\r\n")
    assert (info.master_replid2, info.second_repl_offset) == (NO_REPLID, -1)


# ---- contest, claims: the episode and probe bookkeeping ---------------------------------------

def test_fresh_contest_and_probe_state():
    c = Contest(0.5)
    assert (c.other, c.pending, c.deadline, c.data, c.seen) == (None, None, None, None, -1e18)
    assert c.verdict() is None and c.expired(1.0) is False and c.deadline is None
    p = ClaimProbe()
    assert (p.active, p.sent_at, p.deadline, p.last_claim) == (False, None, None, -1e18)


def test_an_episode_lasts_exactly_three_intervals_plus_a_tenth():
    c = Contest(0.5)
    gap = 3 * 50 / 100.0 + 0.1                                      # 0.5 s adverts: 1.6 s
    assert c.heard("198.51.100.2", 200, 50, 0.0) == ASK
    assert c.current("198.51.100.2", gap) and not c.current("198.51.100.2", gap + 1e-9)
    assert not c.current("198.51.100.3", 0.1)


def test_a_new_episode_forgets_the_last_verdict_and_a_stale_answer_is_refused():
    c = Contest(0.5)
    c.heard("198.51.100.2", 200, 100, 10.0)
    cmp = compare(A, B_FROM_A)
    assert c.answered("198.51.100.9", cmp, 10.1) is False and c.data is None
    assert c.answered("198.51.100.2", cmp, 10.1) is True and c.verdict() == cmp
    assert c.heard("198.51.100.2", 200, 100, 20.0) == ASK          # silent 10 s: a new episode
    assert c.data is None and c.verdict() is None


def test_a_claim_at_the_instant_of_the_probe_counts_as_an_answer():
    p = ClaimProbe()
    p.claimed(1.0)
    p.probe_sent(2.0)
    p.claimed(2.0)                     # the answer carries the probe's own timestamp
    assert p.unanswered(2.1) is False and p.active
    p.probe_sent(3.0)
    assert p.unanswered(3.1) is True and not p.active


def test_instance_pairs_a_path_advert_a_quarter_of_its_interval_late():
    # the instance gives PathBook its interval in seconds: the window is exactly 0.25 s here
    path = HeartbeatPath("eth1", ("203.0.113.2",), "203.0.113.1")
    inst = Instance("web", params(priority=50, local_addr="198.51.100.1", interface="eth0",
                                  heartbeat=(path,)), 0.0)
    inst.handle(Startup(), 0.0)
    advert = adv(100)
    inst.handle(AdvertReceived(advert, PEER, 255, True, 0), 1.0)
    inst.handle(AdvertReceived(advert, "203.0.113.2", 255, False, 1), 1.25)
    assert inst.master_ip == PEER


def test_a_late_wakeup_keeps_the_data_verdicts_actions_before_the_claims():
    # both the data hold and the claim probe's answer deadline are past when the timer runs
    inst = master(data_hold=0.05)                     # adverts at 4.609375 + k
    inst.handle(VipClaimed(MAC), 4.2)
    inst.handle_timer(4.609375)                       # advert + probe: answer due by 4.709375
    rx(inst, adv(50), 4.61)                           # asks; decision held until 4.66
    acts = inst.handle_timer(4.8)
    assert logs(acts)[0] == ("warning", f"no data verdict for {PEER} within 0.05s; priority"
                                        " decides")
    assert SendAdvert(100) in acts and acts[-2:] == [
        Announce(), Log("info", "the other claimant of our VIPs let go: re-announcing")]


def test_a_drained_backup_never_takes_over_when_the_gates_open_or_its_priority_rises():
    inst = started(gated=True, priority=150)
    inst.handle(DrainChanged(True), 0.5)
    rx(inst, adv(100), 1.0)                           # drained: the lower master is accepted
    down = 1.0 + master_down_interval_s(1, 100)       # timed as priority 1: the gate is closed
    assert inst.master_ip == PEER and inst.next_deadline() == pytest.approx(down)
    inst.handle(GateChanged(True), 2.0)
    inst.handle(PriorityChanged(160), 2.5)
    assert inst.next_deadline() == pytest.approx(down)    # no take-over now
    assert inst.master_ip == PEER


def test_a_yielding_sync_group_member_does_not_get_ready_when_its_priority_rises():
    inst = started(synced=True, priority=150)
    inst.handle(GroupCommand("yield", "partner in FAULT"), 0.5)
    rx(inst, adv(100), 1.0)                           # yielding: the lower master is accepted
    assert inst.master_ip == PEER
    inst.handle(PriorityChanged(160), 2.0)
    assert inst.next_deadline() > 2.0                 # its down timer, not a take-over now
    inst.handle_timer(2.0)
    assert inst.wants_master is False
