"""Sync groups on real kernels: two instances on two segments of the same two hosts. Cutting
either interface of the master moves both VIPs; healing brings both back (auto). A keepalived
pair with the same vrrp_sync_group gives the same holders after each fault."""
import signal

import pytest

from conftest import VIP4, instance_status, status, wait_state

pytestmark = pytest.mark.lab

VIP_IN = "203.0.113.100"
INTERVAL = 0.1


def vipd_group_config(priority, hook, host):
    def instance(name, ifname, vrid, vip):
        hooks = "".join(f'{state} = ["{hook}", "member", "{host}"]\n'
                        for state in ("master", "backup", "fault"))
        return (f'[[instance]]\nname = "{name}"\ninterface = "{ifname}"\nvrid = {vrid}\n'
                f"priority = {priority}\nadvert_interval = {INTERVAL}\n"
                f'vips = ["{vip}/24"]\n[instance.notify]\n{hooks}\n')
    group_hooks = "".join(f'{state} = ["{hook}", "group", "{host}"]\n'
                          for state in ("master", "backup", "fault"))
    return (instance("outside", "eth0", 51, VIP4) + instance("inside", "eth1", 52, VIP_IN)
            + '[[sync_group]]\nname = "edge"\ninstances = ["outside", "inside"]\n'
            + f"[sync_group.notify]\n{group_hooks}")


def keepalived_group_config(priority):
    inst = lambda name, ifname, vrid, vip: f"""vrrp_instance {name} {{
    state BACKUP
    interface {ifname}
    virtual_router_id {vrid}
    priority {priority}
    advert_int {INTERVAL}
    virtual_ipaddress {{
        {vip}/24
    }}
}}
"""
    return ("global_defs {\n    vrrp_version 3\n    vrrp_garp_master_delay 0\n"
            "    enable_script_security\n}\n"
            + inst("outside", "eth0", 51, VIP4) + inst("inside", "eth1", 52, VIP_IN)
            + "vrrp_sync_group edge {\n    group {\n        outside\n        inside\n    }\n}\n")


def holders(lab):
    return (tuple(lab.holder_on(VIP4, "eth0")), tuple(lab.holder_on(VIP_IN, "eth1")))


H1, H2 = (("h1",), ("h1",)), (("h2",), ("h2",))
# (fault, port, up) and the holders expected once it has settled
SCRIPT = [("cut outside", "h1", False, H2), ("heal outside", "h1", True, H1),
          ("cut inside", "h1b", False, H2), ("heal inside", "h1b", True, H1)]


def run_script(lab):
    seen = []
    for what, port, up, want in SCRIPT:
        lab.set_port(port, up)
        lab.wait_for(lambda: holders(lab) == want, timeout=8)
        seen.append((what, holders(lab)))
    return seen


@pytest.fixture
def two_segments(lab_factory):
    lab = lab_factory(hosts=2)
    lab.add_segment()
    return lab


def test_sync_group_moves_together_and_matches_keepalived(two_segments):
    lab = two_segments
    h1, h2 = lab.hosts
    log = lab.workdir / "hooks.log"
    hook = lab.write("hook", f"#!/bin/sh\necho \"$2 $1 ${{VIPD_GROUP:-$VIPD_INSTANCE}} $VIPD_STATE\""
                             f" >> {log}\n")
    hook.chmod(0o755)
    p1 = lab.start_vipd(h1, vipd_group_config(150, hook, "h1"))
    p2 = lab.start_vipd(h2, vipd_group_config(100, hook, "h2"))
    assert lab.wait_for(lambda: holders(lab) == H1, timeout=8), holders(lab)
    assert wait_state(lab, p2, "BACKUP", name="inside")
    vipd_seen = run_script(lab)
    assert vipd_seen == [(what, want) for what, _, _, want in SCRIPT], vipd_seen
    st = status(lab, p1)
    assert st["sync_groups"][0]["name"] == "edge" and st["sync_groups"][0]["state"] == "MASTER"
    assert [t["to"] for t in st["sync_groups"][0]["transitions"]] == [
        "BACKUP", "MASTER", "FAULT", "BACKUP", "MASTER", "FAULT", "BACKUP", "MASTER"]
    # h1's healthy member was demoted to BACKUP (yielding), not put in FAULT like keepalived's
    moves = [(t["to"], t["reason"]) for t in instance_status(lab, p1, "inside")["transitions"]]
    assert ("BACKUP", "sync group edge: outside in FAULT") in moves
    # the group hook runs once per group transition, after the members' hooks of that step
    lines = [line.split()[1:] for line in log.read_text().splitlines() if line.startswith("h1 ")]
    group_lines = [state for kind, _, state in lines if kind == "group"]
    assert group_lines.count("MASTER") >= 3 and group_lines.count("FAULT") >= 2
    for i, (kind, _, state) in enumerate(lines):
        if kind == "group" and state == "MASTER":
            # each member's latest hook before the group's is its own MASTER hook
            latest = {name: s for k, name, s in lines[:i] if k == "member"}
            assert latest == {"outside": "MASTER", "inside": "MASTER"}, lines[:i + 1]
    # reload with one more (ungrouped) instance and a changed group hook: the members and the
    # group keep their state and history (a changed membership would re-create them)
    before = status(lab, p1)
    text = p1.config_path.read_text()
    p1.config_path.write_text(text.replace('"group", "h1"]', '"group", "h1", "x"]') + (
        '[[instance]]\nname = "spare"\ninterface = "eth0"\nvrid = 60\n'
        'vips = ["198.51.100.160/24"]\n'))
    p1.send_signal(signal.SIGHUP)
    assert lab.wait_for(lambda: len(status(lab, p1)["instances"]) == 3, timeout=5)
    after = status(lab, p1)
    for name in ("outside", "inside"):
        old, new = (next(i for i in st["instances"] if i["name"] == name) for st in (before, after))
        assert (new["since"], new["state"]) == (old["since"], "MASTER")
    assert after["sync_groups"][0]["transitions"] == before["sync_groups"][0]["transitions"]
    p1.stop()
    p2.stop()
    lab.wait_for(lambda: holders(lab) == ((), ()), timeout=5)

    k1 = lab.start_keepalived(h1, keepalived_group_config(150))
    lab.start_keepalived(h2, keepalived_group_config(100))
    assert lab.wait_for(lambda: holders(lab) == H1, timeout=10), (holders(lab), k1.output())
    keepalived_seen = run_script(lab)
    assert keepalived_seen == vipd_seen, keepalived_seen
