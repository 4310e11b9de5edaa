"""The state machine with a fake clock: every transition, its exact actions and deadlines."""
import pytest
from hypothesis import given, settings, strategies as st

from vipd.core.events import (
    AddVips, AdvertReceived, Announce, DrainChanged, FailbackApproved, FaultChanged, Log, Notify,
    PriorityChanged, RemoveVips, SendAdvert, Shutdown, Startup, State, Transition,
)
from vipd.core.instance import Instance, RouterParams, UnexpectedEvent
from vipd.core.packet import Advert
from vipd.core.timers import master_down_interval_s, skew_time_s

VIP = "198.51.100.100"
ME = "198.51.100.1"
PEER = "198.51.100.2"


def params(**kw):
    base = dict(vrid=51, priority=100, version=3, adver_int_cs=100, vips=(VIP,), local_addr=ME)
    base.update(kw)
    return RouterParams(**base)


def adv(priority, interval_cs=100, version=3, addrs=(VIP,), **kw):
    return Advert(version=version, vrid=51, priority=priority, adver_int_cs=interval_cs,
                  addresses=addrs, **kw)


def rx(inst, advert, now, src=PEER, ttl=255, multicast=True):
    return inst.handle(AdvertReceived(advert, src, ttl, multicast), now)


def only(actions, *types):
    return [a for a in actions if isinstance(a, types)]


def started(now=0.0, **kw):
    inst = Instance("web", params(**kw), now)
    inst.handle(Startup(), now)
    return inst


def master(now=0.0, **kw):
    inst = started(now, **kw)
    inst.handle_timer(inst.next_deadline())
    assert inst.state is State.MASTER
    return inst


def test_timer_formulas_match_rfc():
    # RFC 5798 6.1 with priority 100, interval 1 s: skew 156/256 s, MDI 3 s + skew.
    assert skew_time_s(100, 100) == pytest.approx(0.609375, abs=1e-12)
    assert master_down_interval_s(100, 100) == pytest.approx(3.609375, abs=1e-12)
    # 20 ms interval keeps sub-millisecond precision.
    assert master_down_interval_s(200, 2) == pytest.approx(0.06 + 56 * 0.02 / 256, abs=1e-12)
    # v2: Skew_Time uses 1 s whatever the interval.
    assert skew_time_s(100, 300, version=2) == pytest.approx(156 / 256)
    assert master_down_interval_s(100, 300, version=2) == pytest.approx(9 + 156 / 256)


def test_startup_goes_backup_with_master_down_timer():
    inst = Instance("web", params(), 10.0)
    actions = inst.handle(Startup(), 10.0)
    assert actions == [Transition(State.INIT, State.BACKUP, "startup"), Notify("BACKUP", "INIT")]
    assert inst.state is State.BACKUP
    assert inst.next_deadline() == pytest.approx(10.0 + 3.609375)


def test_owner_goes_master_at_once():
    inst = Instance("web", params(priority=255), 5.0)
    actions = inst.handle(Startup(), 5.0)
    assert actions == [Transition(State.INIT, State.MASTER, "startup (address owner)"),
                       AddVips(), Announce(), SendAdvert(255), Notify("MASTER", "INIT")]
    assert inst.next_deadline() == pytest.approx(6.0)


def test_down_timer_makes_master_and_adverts_keep_cadence():
    inst = started(0.0)
    t = inst.next_deadline()
    assert inst.handle_timer(t - 0.0001) == []
    actions = inst.handle_timer(t)
    assert actions == [Transition(State.BACKUP, State.MASTER, "master down timer expired"),
                       AddVips(), Announce(), SendAdvert(100), Notify("MASTER", "BACKUP")]
    assert inst.master_ip == ME
    # Fired 3 ms late: the next advert is still one interval after the previous deadline.
    nxt = inst.next_deadline()
    assert nxt == pytest.approx(t + 1.0)
    assert inst.handle_timer(nxt + 0.003) == [SendAdvert(100)]
    assert inst.next_deadline() == pytest.approx(t + 2.0)
    # Frozen for 5 s: no burst of catch-up adverts, one advert and a fresh interval.
    assert inst.handle_timer(t + 7.0) == [SendAdvert(100)]
    assert inst.next_deadline() == pytest.approx(t + 8.0)


def test_backup_priority_zero_sets_skew_time():
    inst = started(0.0)
    assert rx(inst, adv(0), 1.0) == []
    assert inst.next_deadline() == pytest.approx(1.0 + 0.609375)
    assert inst.counters["priority0_received"] == 1


def test_backup_higher_priority_resets_timer_and_learns_interval():
    inst = started(0.0)
    rx(inst, adv(200, interval_cs=50), 2.0)
    # Master_Down_Interval now from the master's 0.5 s: 1.5 + 156*0.5/256.
    assert inst.master_adver_int_cs == 50
    assert inst.next_deadline() == pytest.approx(2.0 + 1.5 + 156 * 0.5 / 256)
    assert inst.master_ip == PEER


def test_backup_equal_priority_resets_timer():
    inst = started(0.0)
    rx(inst, adv(100), 2.0)
    assert inst.next_deadline() == pytest.approx(5.609375)


def test_backup_lower_priority_is_ignored_when_preempting():
    inst = started(0.0)
    before = inst.next_deadline()
    assert rx(inst, adv(50), 2.0) == []
    assert inst.next_deadline() == before
    assert inst.handle_timer(before)[0] == Transition(State.BACKUP, State.MASTER,
                                                      "master down timer expired")


def test_backup_lower_priority_accepted_without_preemption():
    inst = started(0.0, failback="none")
    rx(inst, adv(50), 2.0)
    assert inst.next_deadline() == pytest.approx(5.609375)
    assert inst.failback.pending is False


def test_semi_auto_pending_then_approved_takes_role_at_once():
    inst = started(0.0, failback="semi-auto")
    actions = rx(inst, adv(50), 2.0)
    assert inst.failback.pending is True
    assert len(only(actions, Log)) == 1 and "vipd failback web" in only(actions, Log)[0].message
    assert only(rx(inst, adv(50), 3.0), Log) == []          # logged once
    inst.handle(FailbackApproved(), 3.5)
    assert inst.next_deadline() == 3.5
    actions = inst.handle_timer(3.5)
    assert actions[0] == Transition(State.BACKUP, State.MASTER,
                                    f"preempting lower-priority master {PEER} (50),"
                                    " failback approved by operator")
    assert inst.failback.pending is False


def test_preempt_delay_tolerates_lower_master_then_takes_over():
    inst = started(0.0, preempt_delay=10.0)
    rx(inst, adv(50), 1.0)
    assert inst.state is State.BACKUP
    assert inst.next_deadline() == pytest.approx(4.609375)
    rx(inst, adv(50), 4.0)
    rx(inst, adv(50), 7.0)
    assert inst.next_deadline() == pytest.approx(10.0)     # the preempt_delay deadline
    assert inst.handle_timer(10.0)[0].new is State.MASTER


def test_master_yields_to_higher_priority():
    inst = master()
    actions = rx(inst, adv(200), 10.0)
    # the parting advert at our own priority makes the winner re-announce (no dead VIP)
    assert actions == [Transition(State.MASTER, State.BACKUP, f"higher priority master {PEER} (200)"),
                       SendAdvert(100), RemoveVips(), Notify("BACKUP", "MASTER")]
    assert inst.next_deadline() == pytest.approx(10.0 + 3.609375)
    assert inst.master_ip == PEER


def test_master_equal_priority_tie_break_by_address():
    inst = master()
    actions = rx(inst, adv(100), 10.0, src="198.51.100.0")   # lower address: we stay
    assert inst.state is State.MASTER and SendAdvert(100) in actions
    actions = rx(inst, adv(100), 11.0, src="198.51.100.9")   # higher address: it wins
    assert inst.state is State.BACKUP and actions[0].new is State.BACKUP


def test_master_hearing_lower_master_sends_at_once_and_reasserts_once():
    inst = master()
    actions = rx(inst, adv(50), 10.0)
    assert only(actions, SendAdvert, Announce, Notify) == [
        SendAdvert(100), Announce(), Notify("MASTER", "MASTER", reassert=True)]
    assert inst.next_deadline() == pytest.approx(11.0)
    again = rx(inst, adv(50), 10.5)
    assert only(again, SendAdvert, Announce, Notify) == [SendAdvert(100), Announce()]
    assert inst.state is State.MASTER


def test_master_answers_priority_zero():
    inst = master()
    # and re-announces: the leaving router may be the one the clients' ARP entries name
    assert rx(inst, adv(0), 10.0) == [SendAdvert(100), Announce()]
    assert inst.next_deadline() == pytest.approx(11.0)


def test_shutdown_master_sends_priority_zero_and_removes_vips():
    inst = master()
    assert inst.handle(Shutdown(), 20.0) == [Transition(State.MASTER, State.INIT, "shutdown"),
                                             SendAdvert(0), RemoveVips(), Notify("STOP", "MASTER")]
    assert inst.next_deadline() is None


def test_shutdown_backup():
    inst = started()
    assert inst.handle(Shutdown(), 1.0) == [Transition(State.BACKUP, State.INIT, "shutdown"),
                                            Notify("STOP", "BACKUP")]


def test_fault_from_master_and_recovery():
    inst = master()
    actions = inst.handle(FaultChanged(frozenset({"link eth0"})), 20.0)
    assert actions == [Transition(State.MASTER, State.FAULT, "fault: link eth0"), SendAdvert(0),
                       RemoveVips(), Notify("FAULT", "MASTER")]
    assert inst.next_deadline() is None
    assert rx(inst, adv(50), 21.0) == []                   # FAULT ignores adverts
    actions = inst.handle(FaultChanged(frozenset()), 22.0)
    assert actions == [Transition(State.FAULT, State.BACKUP, "fault cleared: link eth0"),
                       Notify("BACKUP", "FAULT")]
    assert inst.next_deadline() == pytest.approx(22.0 + 3.609375)


def test_fault_at_startup():
    inst = Instance("web", params(), 0.0)
    inst.handle(FaultChanged(frozenset({"link eth0"})), 0.0)
    assert inst.handle(Startup(), 0.0)[0] == Transition(State.INIT, State.FAULT,
                                                        "fault at start: link eth0")


@pytest.mark.parametrize("kw, src, ttl, multicast, reason", [
    ({}, PEER, 64, True, "ttl"),
    ({"version": 2}, PEER, 255, True, "bad_version"),
    ({"interval_cs": 50}, PEER, 255, True, None),            # v3 learns intervals: accepted
])
def test_discards(kw, src, ttl, multicast, reason):
    inst = started()
    before = inst.next_deadline()
    a = adv(200, **kw)
    rx(inst, a, 1.0, src=src, ttl=ttl, multicast=multicast)
    if reason:
        assert inst.counters["discard_" + reason] == 1
        assert inst.next_deadline() == before and inst.master_ip is None
    else:
        assert inst.master_ip == PEER


def test_unicast_accepts_any_ttl_but_only_from_peers():
    inst = started(unicast_peers=(PEER,))
    rx(inst, adv(200), 1.0, src="198.51.100.7", ttl=255, multicast=False)
    assert inst.counters["discard_not_peer"] == 1 and inst.master_ip is None
    rx(inst, adv(200), 1.0, src=PEER, ttl=60, multicast=False)
    assert inst.master_ip == PEER


def test_v2_auth_and_interval_must_match():
    pw = b"s3cret\0\0"
    inst = started(version=2, auth_type=1, auth_data=pw)
    rx(inst, adv(200, version=2, auth_type=1, auth_data=b"wrong\0\0\0"), 1.0)
    rx(inst, adv(200, version=2, auth_type=0), 1.0)
    assert inst.counters["discard_auth"] == 2
    rx(inst, adv(200, version=2, interval_cs=200, auth_type=1, auth_data=pw), 1.0)
    assert inst.counters["discard_interval_mismatch"] == 1
    assert inst.master_ip is None
    rx(inst, adv(200, version=2, auth_type=1, auth_data=pw), 1.0)
    assert inst.master_ip == PEER


def test_vip_mismatch_is_logged_once_not_dropped():
    inst = started()
    other = ("198.51.100.99",)
    actions = rx(inst, adv(200, addrs=other), 1.0)
    assert len(only(actions, Log)) == 1 and inst.master_ip == PEER
    assert only(rx(inst, adv(200, addrs=other), 2.0), Log) == []
    assert inst.counters["vip_mismatch"] == 2


def test_drain_gives_up_role_and_never_takes_it():
    inst = master()
    actions = inst.handle(DrainChanged(True), 10.0)
    assert actions == [Transition(State.MASTER, State.BACKUP, "drained by operator"),
                       SendAdvert(0), Notify("BACKUP", "MASTER")]
    # VIPs stay until the new master's first advert (no gap for clients)...
    assert inst.next_deadline() == pytest.approx(10.0 + 3.609375)
    assert only(rx(inst, adv(50), 10.7), RemoveVips) == [RemoveVips()]
    # The drained host still watches the master (to know when it is gone) but never takes over.
    assert inst.next_deadline() == pytest.approx(10.7 + 3.609375)
    assert inst.handle_timer(100.0) == [] and inst.state is State.BACKUP
    assert inst.master_ip is None                  # the master died: not shown as alive
    inst.handle(DrainChanged(False), 200.0)
    assert inst.next_deadline() == pytest.approx(203.609375)


def test_undrain_takes_the_role_back_at_once_from_a_lower_master():
    inst = master()
    inst.handle(DrainChanged(True), 10.0)
    rx(inst, adv(50), 10.5)                        # tolerated while drained
    assert inst.master_ip == PEER and inst.state is State.BACKUP
    inst.handle(DrainChanged(False), 12.0)
    assert inst.next_deadline() == 12.0
    assert inst.handle_timer(12.0)[0].reason == f"preempting lower-priority master {PEER} (50)"


def test_priority_change_on_master_is_advertised_at_once():
    inst = master()
    assert only(inst.handle(PriorityChanged(80), 10.0), SendAdvert) == [SendAdvert(80)]
    assert inst.handle_timer(11.0) == [SendAdvert(80)]


def test_unknown_event_names_state_and_event():
    inst = started()
    with pytest.raises(UnexpectedEvent, match="Startup.*BACKUP"):
        inst.handle(Startup(), 1.0)
    with pytest.raises(UnexpectedEvent, match="object.*BACKUP"):
        inst.handle(object(), 1.0)


EVENTS = st.one_of(
    st.builds(lambda p, i: AdvertReceived(adv(p, interval_cs=i), PEER, 255, True),
              st.integers(0, 255), st.integers(1, 300)),
    st.builds(lambda f: FaultChanged(frozenset({"x"}) if f else frozenset()), st.booleans()),
    st.builds(PriorityChanged, st.integers(1, 254)),
    st.just(FailbackApproved()),
    st.builds(DrainChanged, st.booleans()),
    st.just("timer"),
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["auto", "semi-auto", "none"]), st.integers(1, 255),
       st.lists(st.tuples(EVENTS, st.floats(0, 5)), max_size=40))
def test_any_event_sequence_keeps_invariants(failback, priority, steps):
    now = 0.0
    inst = Instance("x", params(failback=failback, priority=priority), now)
    inst.handle(Startup(), now)
    for event, dt in steps:
        now += dt
        if event == "timer":
            d = inst.next_deadline()
            if d is not None:
                now = max(now, d)
                inst.handle_timer(now)
        else:
            inst.handle(event, now)
        # Invariants a user relies on: a master always has its advert timer; a backup that may
        # become master always has its down timer; FAULT and drained never take over.
        if inst.state is State.MASTER:
            assert inst._adver_deadline is not None and not inst.drained and not inst.faults
        if inst.state is State.BACKUP and not inst.drained:
            assert inst._down_deadline is not None
        if inst.state is State.FAULT:
            assert inst._adver_deadline is None and inst._down_deadline is None
    inst.handle(Shutdown(), now + 1)
    assert inst.state is State.INIT and inst.next_deadline() is None


def test_backup_hook_runs_again_when_the_master_changes():
    inst = started()
    assert rx(inst, adv(200), 1.0) == [Notify("BACKUP", "BACKUP", reassert=True)]
    assert rx(inst, adv(200), 2.0) == []
    assert rx(inst, adv(200), 3.0, src="198.51.100.3") == [Notify("BACKUP", "BACKUP", reassert=True)]
    assert inst.master_ip == "198.51.100.3"


def test_failback_gate_holds_auto_failback_until_it_passes():
    from vipd.core.events import GateChanged
    inst = started(gated=True)
    actions = rx(inst, adv(50), 1.0)
    assert inst.failback.pending and "failback gates" in only(actions, Log)[0].message
    rx(inst, adv(50), 4.0)
    # tolerated, not preempting; timed as priority 1 while the gate fails
    assert inst.next_deadline() == pytest.approx(4.0 + 3 + 255 / 256)
    inst.handle(GateChanged(True), 5.0)
    assert inst.next_deadline() == 5.0                             # fails back at once
    assert inst.handle_timer(5.0)[0].new is State.MASTER
    assert not inst.failback.pending


def test_failback_gate_never_blocks_failover():
    inst = started(gated=True)
    rx(inst, adv(200), 1.0)
    assert inst.handle_timer(inst.next_deadline())[0].new is State.MASTER


def test_semi_auto_approval_respects_gate_unless_forced():
    from vipd.core.events import GateChanged
    inst = started(failback="semi-auto", gated=True)
    rx(inst, adv(50), 1.0)
    inst.handle(FailbackApproved(), 2.0)
    assert inst.next_deadline() == pytest.approx(1 + 3 + 255 / 256)  # gate closed: nothing yet
    inst.handle(GateChanged(True), 3.0)
    assert inst.next_deadline() == 3.0
    inst2 = started(failback="semi-auto", gated=True)
    rx(inst2, adv(50), 1.0)
    inst2.handle(FailbackApproved(force=True), 2.0)
    assert inst2.next_deadline() == 2.0


def test_drain_without_new_master_removes_vips_at_master_down_interval():
    inst = master()
    inst.handle(DrainChanged(True), 10.0)
    assert only(inst.handle_timer(10.0 + 3.609375), RemoveVips) == [RemoveVips()]
    assert inst.state is State.BACKUP and inst.next_deadline() is None


def test_fault_from_backup_and_shutdown_in_fault():
    inst = started()
    actions = inst.handle(FaultChanged(frozenset({"check nginx failing"})), 1.0)
    assert actions == [Transition(State.BACKUP, State.FAULT, "fault: check nginx failing"),
                       Notify("FAULT", "BACKUP")]
    assert inst.next_deadline() is None
    assert inst.handle(Shutdown(), 2.0) == [Transition(State.FAULT, State.INIT, "shutdown"),
                                            Notify("STOP", "FAULT")]


def test_owner_leaves_fault_straight_to_master():
    inst = Instance("web", params(priority=255), 0.0)
    inst.handle(FaultChanged(frozenset({"link eth0 down"})), 0.0)
    inst.handle(Startup(), 0.0)
    actions = inst.handle(FaultChanged(frozenset()), 3.0)
    assert actions == [Transition(State.FAULT, State.MASTER,
                                  "fault cleared: link eth0 down (address owner)"),
                       AddVips(), Announce(), SendAdvert(255), Notify("MASTER", "FAULT")]
    assert inst.next_deadline() == pytest.approx(4.0)


def test_failing_gate_lets_a_ready_backup_win_the_election():
    """Both hosts BACKUP, the master gone: a gated higher-priority host with a failing gate
    (stale data) times out after the ready lower-priority one."""
    from vipd.core.events import GateChanged
    gated = started(0.0, priority=150, gated=True)
    ready = Instance("web", params(priority=100, local_addr=PEER), 0.0)
    ready.handle(Startup(), 0.0)
    assert ready.next_deadline() < gated.next_deadline()
    assert gated.next_deadline() == pytest.approx(3 + 255 / 256)
    gated.handle(GateChanged(True), 1.0)
    rx(gated, adv(200), 1.0)
    assert gated.next_deadline() == pytest.approx(1.0 + 3 + 106 / 256)


def test_a_masters_own_priority_change_is_its_master_priority_too():
    # As master, master_priority is our own priority (what status and the failback logic read);
    # it must follow a tracked priority change, or after a drain and undrain with no other
    # master heard, the stale value looks like a lower-priority master to "preempt" at once.
    inst = master(priority=100)
    assert inst.master_priority == 100
    inst.handle(PriorityChanged(150), 10.0)
    assert inst.master_priority == 150
    inst.handle(DrainChanged(True), 10.5)
    assert inst.state is State.BACKUP
    inst.handle(DrainChanged(False), 11.0)
    assert not inst.outranks_master
    # no master heard: the ordinary Master_Down_Interval, not an instant takeover
    assert not only(inst.handle_timer(11.0), Transition)
    inst.handle_timer(10.5 + master_down_interval_s(150, 100))      # the handover ends
    assert inst.next_deadline() == pytest.approx(11.0 + master_down_interval_s(150, 100), abs=1e-9)


def refreshes(actions):
    return [a for a in actions if isinstance(a, Announce) and a.refresh]


def test_garp_refresh_is_one_chain_per_master_period_whatever_the_reasserts():
    # keepalived's garp_master_refresh: one GARP/NA round with the first advert due at or after
    # each deadline. A lower-priority master heard every 2.5 s makes us reassert (a full burst,
    # Announce(refresh=False)) each time; it must not start another refresh chain.
    inst = master(priority=200, garp_refresh=3.0)       # MASTER at t = MDI(200)
    t0 = inst.since
    rx_times = [t0 + 0.25 + 2.5 * k for k in range(8)]  # up to t0 + 17.75
    rounds, bursts = [], 0
    while inst.next_deadline() < t0 + 20.0:
        t = inst.next_deadline()
        while rx_times and rx_times[0] <= t:
            actions = rx(inst, adv(100), rx_times.pop(0))
            assert not refreshes(actions)
            bursts += len(only(actions, Announce))
        t = inst.next_deadline()
        rounds += [t] * len(refreshes(inst.handle_timer(t)))
    assert inst.state is State.MASTER and bursts == 8       # every reassert re-announced
    # one chain: the first advert at or after each deadline, never two rounds in 3 s
    # (each advert 1 s after the last advert or reassert: a round 3 to 4 s after the one before)
    assert [round(r - t0, 6) for r in rounds] == [3.75, 7.25, 11.25, 14.75, 18.75], rounds


def test_garp_refresh_stops_outside_master_and_restarts_with_the_next_period():
    inst = master(priority=100, garp_refresh=2.0)
    t0 = inst.since
    got = []
    for k in range(1, 6):                               # adverts at t0+1 .. t0+5
        got += [t0 + k] * len(refreshes(inst.handle_timer(t0 + k)))
    assert got == [t0 + 2, t0 + 4]
    rx(inst, adv(150), t0 + 5.5)                        # a higher master: BACKUP
    assert inst.state is State.BACKUP
    t = t0 + 5.5
    for _ in range(10):
        t = inst.next_deadline()
        assert not refreshes(inst.handle_timer(t))
        if inst.state is State.MASTER:
            break
    assert inst.state is State.MASTER
    t1 = inst.since
    got = []
    for k in range(1, 5):
        got += [t1 + k] * len(refreshes(inst.handle_timer(t1 + k)))
    assert got == [t1 + 2, t1 + 4]
    assert not refreshes(master(priority=100).handle_timer(100.0))   # garp_refresh = 0: off
