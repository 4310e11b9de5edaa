"""Heartbeat paths (issue 14) in the core, with a fake clock: receive checks per path, the
sender's identity across paths, the equal-priority tie-break, degraded paths logged once."""
import pytest

from vipd.core.events import AdvertReceived, Log, Notify, SendAdvert, Startup, State, Transition
from vipd.core.instance import Instance, RouterParams
from vipd.core.packet import Advert
from vipd.core.paths import HeartbeatPath

VIP = "198.51.100.100"
ME, PEER = "198.51.100.1", "198.51.100.2"
ME_HB, PEER_HB = "203.0.113.1", "203.0.113.2"
MAIN, HB = 0, 1


def make(priority=100, local=ME, src=ME_HB, peers=(PEER_HB,), now=0.0, **kw) -> Instance:
    params = RouterParams(vrid=51, priority=priority, adver_int_cs=100, vips=(VIP,),
                          local_addr=local, interface="eth0",
                          heartbeat=(HeartbeatPath("eth1", tuple(peers), src),), **kw)
    inst = Instance("web", params, now)
    inst.handle(Startup(), now)
    return inst


def adv(priority=100) -> Advert:
    return Advert(version=3, vrid=51, priority=priority, adver_int_cs=100, addresses=(VIP,))


def rx(inst, now, path=HB, src=PEER_HB, priority=100, ttl=255):
    multicast = path == MAIN
    return inst.handle(AdvertReceived(adv(priority), src, ttl, multicast, path), now)


def logs(actions, level=None) -> list[str]:
    return [a.message for a in actions if isinstance(a, Log) and level in (None, a.level)]


def test_backup_resets_its_down_timer_on_an_advert_from_the_heartbeat_path_alone():
    b = make(priority=50)
    for t in (1.0, 2.0, 3.0, 4.0, 5.0):          # the VIP segment says nothing at all
        rx(b, t, priority=100)
        assert b.next_deadline() == pytest.approx(t + b.master_down_interval)
    b.handle_timer(5.0 + b.master_down_interval - 1e-6)
    assert b.state is State.BACKUP
    assert b.counters["adverts_received"] == 5 and b.paths.received == [0, 5]


@pytest.mark.parametrize("src,ttl,counter", [
    ("203.0.113.9", 255, "discard_not_peer"),   # not among this path's peers
    (PEER, 255, "discard_not_peer"),            # a VIP-segment peer is not a peer of the path
    (PEER_HB, 254, "discard_ttl"),              # one router away: a path is a direct link
])
def test_path_adverts_failing_a_receive_check_are_dropped_and_counted(src, ttl, counter):
    b = make(priority=50)
    before = b.next_deadline()
    assert rx(b, 1.0, src=src, ttl=ttl) == []
    assert b.counters[counter] == 1
    assert b.next_deadline() == before and b.paths.received == [0, 0]
    rx(b, 1.0)                                  # the same advert, valid, does reset the timer
    assert b.next_deadline() == pytest.approx(1.0 + b.master_down_interval)


def test_a_path_advert_to_an_instance_without_paths_is_dropped():
    inst = Instance("web", RouterParams(vrid=51, priority=100, vips=(VIP,), local_addr=ME), 0.0)
    inst.handle(Startup(), 0.0)
    assert inst.handle(AdvertReceived(adv(), PEER_HB, 255, False, 1), 1.0) == []
    assert inst.counters["discard_not_peer"] == 1


def test_a_priority_zero_advert_on_the_path_cuts_the_wait_to_skew_time():
    b = make(priority=50)
    rx(b, 1.0, priority=100)
    rx(b, 1.5, priority=0)
    assert b.next_deadline() == pytest.approx(1.5 + b.skew_time)
    acts = b.handle_timer(1.5 + b.skew_time)
    assert b.state is State.MASTER and any(isinstance(a, SendAdvert) for a in acts)


@pytest.mark.parametrize("first", [MAIN, HB])
def test_the_path_peer_is_named_by_its_vip_segment_address_in_either_arrival_order(first):
    """The master sends on both paths at once; whichever arrives first, the backup ends up with
    the VIP-segment address as master, and keeps it while only the path delivers."""
    b = make(priority=50)
    second = HB if first == MAIN else MAIN
    src = {MAIN: PEER, HB: PEER_HB}
    rx(b, 1.0, first, src[first])
    rx(b, 1.0001, second, src[second])
    assert b.master_ip == PEER
    notified = []
    for t in (2.0, 3.0, 4.0, 5.0, 6.0):       # the VIP segment is lost
        notified += [a for a in rx(b, t) if isinstance(a, Notify)]
    assert b.master_ip == PEER and notified == []   # no BACKUP hook re-run: same master


def test_adverts_far_apart_do_not_pair_a_path_peer_with_a_vip_segment_sender():
    b = make(priority=50)
    rx(b, 1.0, MAIN, PEER)
    rx(b, 1.6, HB, PEER_HB)                    # more than a quarter interval later
    assert b.master_ip == PEER_HB


def equal_masters(a_local, a_hb, b_local, b_hb):
    a = make(local=a_local, src=a_hb, peers=(b_hb,))
    b = make(local=b_local, src=b_hb, peers=(a_hb,))
    for inst in (a, b):
        inst.handle_timer(inst.next_deadline())
        assert inst.state is State.MASTER
    return a, b


@pytest.mark.parametrize("a_hb,b_hb", [("203.0.113.9", "203.0.113.1"),
                                       ("203.0.113.1", "203.0.113.9")])
def test_equal_priority_masters_meeting_only_on_the_path_exactly_one_yields(a_hb, b_hb):
    a, b = equal_masters(ME, a_hb, PEER, b_hb)
    rx(a, 10.0, HB, b_hb)
    rx(b, 10.0, HB, a_hb)
    states = sorted(str(i.state) for i in (a, b))
    assert states == ["BACKUP", "MASTER"]
    winner = a if a.state is State.MASTER else b
    assert winner.paths.paths[0].source == max(a_hb, b_hb, key=lambda s: int(s.split(".")[-1]))


def test_a_known_path_peer_is_compared_by_its_vip_segment_address():
    """After the path peer is paired with its VIP-segment address, an equal-priority master heard
    over the path alone is compared as on the VIP segment: here ME < PEER although ME_HB is the
    higher path address, so we yield, as we would on the VIP segment."""
    a = make(local=ME, src="203.0.113.9", peers=(PEER_HB,))
    rx(a, 1.0, MAIN, PEER, priority=100)        # a backup hears the other router (then master)
    rx(a, 1.0001, HB, PEER_HB, priority=100)
    a.handle_timer(100.0)                       # the other one went away: we are master
    assert a.state is State.MASTER
    acts = rx(a, 101.0, HB, PEER_HB, priority=100)
    assert a.state is State.BACKUP and a.master_ip == PEER
    assert any(isinstance(x, Transition) and PEER in x.reason for x in acts)


def test_path_addresses_ordered_unlike_the_vip_segment_are_warned_about_once():
    a = make(local=ME, src="203.0.113.9", peers=(PEER_HB,), priority=50)
    first = rx(a, 1.0, MAIN, PEER) + rx(a, 1.0001, HB, PEER_HB)
    again = rx(a, 2.0, MAIN, PEER) + rx(a, 2.0001, HB, PEER_HB)
    assert len([m for m in logs(first, "warning") if "ordered unlike" in m]) == 1
    assert logs(again) == []
    same = make(local=ME, src=ME_HB, peers=(PEER_HB,), priority=50)
    assert logs(rx(same, 1.0, MAIN, PEER) + rx(same, 1.0001, HB, PEER_HB)) == []


def test_a_path_silent_while_another_delivers_is_degraded_and_logged_once():
    b = make(priority=50)
    mdi = b.master_down_interval
    out = []
    for k in range(1, 4):                        # both paths deliver
        out += rx(b, k, MAIN, PEER) + rx(b, k + 1e-4, HB, PEER_HB)
    assert logs(out) == [] and b.paths.states(3.5, mdi) == ["ok", "ok"]
    for k in range(4, 20):                       # the VIP segment goes silent
        out += rx(b, k)
    # logged at the first advert more than Master_Down_Interval after eth0's last (at 3 s)
    first = next(k for k in range(4, 20) if k - 3 > mdi)
    assert logs(out) == [f"heartbeat path eth0 degraded: no advert for {first - 3:.3f}s"
                         " while eth1 delivers"]
    st = {p["interface"]: p for p in b.paths.status(19.5, mdi)}
    assert st["eth0"]["state"] == "degraded" and st["eth0"]["last_heard_age"] == 16.5
    assert st["eth1"]["state"] == "ok" and st["eth1"]["peers"] == [PEER_HB]
    back = rx(b, 20.0, MAIN, PEER)
    assert logs(back, "info") == ["heartbeat path eth0 delivers adverts again"]
    assert logs(rx(b, 21.0)) == []


def test_all_paths_silent_is_not_degraded():
    """No path hears anything: no master (or we are it; backups send nothing), not a path fault."""
    b = make(priority=50)
    rx(b, 1.0, MAIN, PEER)
    rx(b, 1.0001, HB, PEER_HB)
    assert b.paths.states(30.0, b.master_down_interval) == ["silent", "silent"]
    fresh = make(priority=50)
    assert fresh.paths.states(0.1, fresh.master_down_interval) == ["silent", "silent"]


def test_a_path_never_heard_is_degraded_one_down_interval_after_another_delivers():
    b = make(priority=50)
    mdi = b.master_down_interval
    assert logs(rx(b, 0.5, MAIN, PEER)) == []
    assert b.paths.states(0.5, mdi) == ["ok", "silent"]   # just started: not yet a fault
    out = rx(b, 0.5 + mdi - 0.1, MAIN, PEER)   # measured from the first advert heard
    assert b.paths.states(0.5 + mdi - 0.1, mdi) == ["ok", "silent"]
    out = rx(b, 0.5 + mdi + 0.1, MAIN, PEER)
    assert b.paths.states(0.5 + mdi + 0.1, mdi) == ["ok", "degraded"]
    assert [m for m in logs(out) if "eth1 degraded" in m]


def test_paths_silent_together_are_measured_from_the_first_advert_after():
    """After a time with no adverts at all (a master back after a takeover, a late start), the
    first advert arrives on one path a moment before the other: not a degraded path."""
    b = make(priority=50)
    mdi = b.master_down_interval
    t = 30.0                                    # nothing heard for long, on any path
    assert logs(rx(b, t, MAIN, PEER)) == []     # eth0 first: eth1 is not degraded for that
    assert b.paths.states(t + 0.001, mdi) == ["ok", "silent"]
    rx(b, t + 0.001, HB, PEER_HB)
    out = []
    for k in range(1, 6):                       # from now on eth1 stays silent
        out += rx(b, t + k, MAIN, PEER)
    assert b.paths.states(t + 5, mdi) == ["ok", "degraded"]
    assert logs(out) == ["heartbeat path eth1 degraded: no advert for 3.999s while eth0 delivers"]
