"""Reload of a changed instance with a heartbeat path (issue 9): the old instance's path entry and
socket go with it, also when its last actions (VIPs down) still waited in the applier's queue at
the reload -- which is the case for every MASTER, so this runs one."""
import re
import signal

import pytest

from conftest import instance_status, vipd_config, wait_state

pytestmark = pytest.mark.lab


def vrrp_sockets(lab, host) -> int:
    """Raw IPPROTO_VRRP (112) sockets open in host's namespace (only vipd opens them there): one
    for the VIP segment, one per heartbeat interface."""
    out = lab.run(host, ["ss", "-w", "-a", "-n", "-H"]).stdout
    return sum(1 for line in out.splitlines() if re.search(r":112\s", line))


def test_reload_of_a_changed_master_closes_its_old_heartbeat_path(lab_factory):
    lab = lab_factory(hosts=2)
    lab.add_segment()
    h1 = lab.hosts[0]
    hb = ('heartbeat = [{ interface = "eth1", peers = ["203.0.113.2"],'
          ' source = "203.0.113.1" }]')
    p1 = lab.start_vipd(h1, vipd_config(priority=150, interval=0.2, instances_extra=hb))
    assert wait_state(lab, p1, "MASTER")
    # the check can see the path's socket (so its absence below means something)
    assert lab.wait_for(lambda: vrrp_sockets(lab, h1) == 2, timeout=5), \
        lab.run(h1, ["ss", "-w", "-a", "-n"]).stdout

    # changed: the path is dropped. The MASTER's VIP removal is queued when the old instance goes.
    p1.config_path.write_text(vipd_config(priority=150, interval=0.2))
    p1.send_signal(signal.SIGHUP)
    assert lab.wait_for(lambda: "reloaded" in p1.output(), timeout=5)
    assert wait_state(lab, p1, "MASTER")
    assert "paths" not in instance_status(lab, p1)
    assert lab.wait_for(lambda: vrrp_sockets(lab, h1) == 1, timeout=3), \
        lab.run(h1, ["ss", "-w", "-a", "-n"]).stdout

    # the path back, then a change that keeps it (same interface and VRID): the old instance's
    # late release must leave the new one's path entry and socket alone
    for prio in (150, 160):
        p1.config_path.write_text(vipd_config(priority=prio, interval=0.2, instances_extra=hb))
        n = p1.output().count("reloaded")
        p1.send_signal(signal.SIGHUP)
        assert lab.wait_for(lambda: p1.output().count("reloaded") == n + 1, timeout=5)
        assert wait_state(lab, p1, "MASTER")
        assert lab.wait_for(lambda: vrrp_sockets(lab, h1) == 2, timeout=3), \
            lab.run(h1, ["ss", "-w", "-a", "-n"]).stdout
        assert [p["interface"] for p in instance_status(lab, p1)["paths"]] == ["eth0", "eth1"]
    p1.stop()
    assert p1.returncode == 0
