"""A VIP change the kernel refuses is logged and counted (``netlink_errors``) and never stops the
daemon (vipd/applier.py, issue 9): the instance stays MASTER, its other addresses stay up and
the control socket answers. The refusal: IPv6 disabled on eth0 under a MASTER holding an IPv6
excluded VIP, so the kernel drops that address and refuses it back (EACCES)."""
import pytest

from conftest import VIP4, instance_status, vipd_config, wait_holder, wait_state

pytestmark = pytest.mark.lab

V6 = "2001:db8::10"


def test_a_refused_vip_is_logged_and_counted_and_the_daemon_runs_on(lab):
    h1 = lab.hosts[0]
    p1 = lab.start_vipd(h1, vipd_config(priority=150, excluded_vips=[f"{V6}/64"]))
    assert wait_state(lab, p1, "MASTER") and wait_holder(lab, VIP4, ["h1"])
    assert lab.wait_for(lambda: f"{V6}/64" in lab.addrs(h1), timeout=5)
    # the control run: everything added, nothing counted
    assert instance_status(lab, p1)["counters"].get("netlink_errors", 0) == 0

    lab.run(h1, ["sysctl", "-qw", "net.ipv6.conf.eth0.disable_ipv6=1"])
    assert lab.wait_for(lambda: instance_status(lab, p1)["counters"].get("netlink_errors", 0)
                        >= 1, timeout=5)
    st = instance_status(lab, p1)
    assert st["state"] == "MASTER" and st["counters"].get("vip_restored", 0) == 0, st
    assert f"{VIP4}/24" in lab.addrs(h1) and f"{V6}/64" not in lab.addrs(h1)
    assert f"cannot put VIP {V6}/64 back on eth0" in p1.output()
    assert lab.ping("c", VIP4, count=2)

    # the kernel takes it again: the next change of eth0's addresses puts it back
    lab.run(h1, ["sysctl", "-qw", "net.ipv6.conf.eth0.disable_ipv6=0"])
    assert lab.wait_for(lambda: f"{V6}/64" in lab.addrs(h1), timeout=5)
    assert instance_status(lab, p1)["counters"].get("vip_restored", 0) >= 1
    p1.stop()
    assert p1.returncode == 0
