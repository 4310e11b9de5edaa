"""vipd and keepalived 2.2.7 (the Debian package) in one virtual router, both ways round.

Failover and failback in both directions, VRRPv3 and VRRPv2 with a password; once converged the
VIP is never held by both.
"""
import time

import pytest

from conftest import (VIP4, instance_status, keepalived_config, never_two_holders,
                      last_transition_time, vipd_config, wait_holder, wait_state)

pytestmark = pytest.mark.lab

MODES = {
    "v3": dict(version=3, interval=1),
    "v2-password": dict(version=2, interval=1, auth_pass="s3cret"),
}


def vipd_side(mode, priority):
    m = MODES[mode]
    kw = {"auth_pass": m["auth_pass"]} if "auth_pass" in m else {}
    return vipd_config(priority=priority, version=m["version"], interval=m["interval"], **kw)


def keepalived_side(mode, priority):
    return keepalived_config(priority=priority, **MODES[mode])


def heard_and_dropped(st) -> tuple[int, dict]:
    """(adverts received from the peer, discard counters) of one vipd instance's status."""
    c = st["counters"]
    return (c.get("adverts_received", 0) - c.get("own_advert", 0),
            {k: v for k, v in c.items() if k.startswith("discard_")})


@pytest.mark.parametrize("mode", MODES)
def test_vipd_master_keepalived_backup(pair, mode):
    lab = pair
    h1, h2 = lab.hosts
    vp = lab.start_vipd(h1, vipd_side(mode, 150))
    kp = lab.start_keepalived(h2, keepalived_side(mode, 100))
    assert wait_holder(lab, VIP4, ["h1"], timeout=10)
    assert never_two_holders(lab, VIP4, 3.0) == []
    assert lab.holder(VIP4) == ["h1"], kp.output()[-2000:]
    st = instance_status(lab, vp)
    assert st["state"] == "MASTER"
    # vipd fails: keepalived takes over.
    lab.cut(h1)
    assert wait_holder(lab, VIP4, ["h2"], timeout=8)
    assert lab.wait_for(lambda: lab.http_get(lab.client, f"http://{VIP4}/", timeout=0.5) == "h2\n",
                        timeout=5)
    # vipd back: it takes the role back from keepalived (preemption).
    heard_before, _ = heard_and_dropped(instance_status(lab, vp))
    lab.heal(h1)
    assert wait_holder(lab, VIP4, ["h1"], timeout=8)
    assert never_two_holders(lab, VIP4, 2.0) == []
    assert lab.http_get(lab.client, f"http://{VIP4}/") == "h1\n"
    # Only now has keepalived sent vipd anything (a backup is silent): its adverts as master
    # were heard and none was dropped.
    heard, dropped = heard_and_dropped(instance_status(lab, vp))
    assert heard > heard_before, "vipd heard no advert from keepalived"
    assert not dropped, dropped


@pytest.mark.parametrize("mode", MODES)
def test_keepalived_master_vipd_backup(pair, mode):
    lab = pair
    h1, h2 = lab.hosts
    kp = lab.start_keepalived(h1, keepalived_side(mode, 150))
    vp = lab.start_vipd(h2, vipd_side(mode, 100))
    assert wait_holder(lab, VIP4, ["h1"], timeout=10), kp.output()[-2000:]
    assert wait_state(lab, vp, "BACKUP")
    assert never_two_holders(lab, VIP4, 3.0) == []
    st = instance_status(lab, vp)
    assert st["state"] == "BACKUP" and st["master_ip"] == h1.ip4
    heard, dropped = heard_and_dropped(st)
    assert heard > 0 and not dropped, st["counters"]
    # keepalived fails: vipd takes over.
    lab.cut(h1)
    assert wait_state(lab, vp, "MASTER", timeout=8)
    assert wait_holder(lab, VIP4, ["h2"], timeout=5)
    # keepalived back with the higher priority: vipd yields.
    lab.heal(h1)
    assert wait_state(lab, vp, "BACKUP", timeout=8)
    assert wait_holder(lab, VIP4, ["h1"], timeout=5)
    assert never_two_holders(lab, VIP4, 2.0) == []


def test_keepalived_clean_stop_vipd_takes_over_fast(pair):
    lab = pair
    h1, h2 = lab.hosts
    kp = lab.start_keepalived(h1, keepalived_side("v3", 150))
    vp = lab.start_vipd(h2, vipd_side("v3", 100))
    assert wait_state(lab, vp, "BACKUP", timeout=10)
    assert lab.wait_for(lambda: instance_status(lab, vp)["master_ip"] == h1.ip4, timeout=5)
    t_stop = time.time()
    kp.stop()
    # keepalived's priority-0 advert: vipd takes over after Skew_Time (0.61 s), not 3.6 s.
    assert wait_state(lab, vp, "MASTER", timeout=5)
    st = instance_status(lab, vp)
    # from SIGTERM to vipd's own transition time (status polls are not in it); keepalived's last
    # regular advert was at most 1 s before the stop, so without the priority-0 advert vipd's
    # down timer would end 2.61-3.61 s after it
    took = last_transition_time(st, "MASTER") - t_stop
    print(f"\nkeepalived clean stop: vipd master {took:.3f}s after SIGTERM")
    assert 0.6 <= took < 2.4, took
    assert st["counters"].get("priority0_received", 0) >= 1
