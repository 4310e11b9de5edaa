"""Hostile input at a running daemon: nothing changes state or VIPs; each is counted by reason."""
import pathlib
import sys

import pytest

from conftest import VIP4, instance_status, status, vipd_config, wait_holder, wait_state

pytestmark = pytest.mark.lab
HOSTILE = str(pathlib.Path(__file__).with_name("hostile.py"))

# A v3 instance (vrid 51) and a v2 instance with a password (vrid 10), on both hosts.
V2 = """
[[instance]]
name = "legacy"
interface = "eth0"
vrid = 10
priority = {prio}
version = 2
advert_interval = 1
vips = ["198.51.100.110/24"]
auth_pass = "s3cret"
"""

CASES = [   # (case, instance it is aimed at, counter that must grow)
    ("ttl", "web", "discard_ttl"),
    ("checksum", "web", "discard_bad_checksum"),
    ("password", "legacy", "discard_auth"),
    ("truncated", "web", "discard_truncated"),
    ("addrcount0", "web", "discard_addr_count"),
]


def counted(lab, proc) -> int:
    """Packets proc dropped and counted: before demultiplexing, or by an instance."""
    st = status(lab, proc)
    return sum(st["rx_errors"].values()) + sum(
        v for i in st["instances"] for k, v in i["counters"].items() if k.startswith("discard_"))


def test_hostile_adverts_change_nothing_and_are_counted(pair):
    lab = pair
    h1, h2 = lab.hosts
    p1 = lab.start_vipd(h1, vipd_config(priority=150, instances_extra=V2.format(prio=150)))
    p2 = lab.start_vipd(h2, vipd_config(priority=100, instances_extra=V2.format(prio=100)))
    assert wait_holder(lab, VIP4, ["h1"])
    assert wait_holder(lab, "198.51.100.110", ["h1"])
    assert wait_state(lab, p2, "BACKUP") and wait_state(lab, p2, "BACKUP", name="legacy")
    before = {p: {i["name"]: i for i in status(lab, p)["instances"]} for p in (p1, p2)}
    counted0 = counted(lab, p1)
    for case, _, _ in CASES + [("random", None, None), ("short", None, None)]:
        lab.run(lab.client, [sys.executable, HOSTILE, case, "5"])
    # each packet is counted once on p1, per instance (by the VRID byte) or before demultiplexing
    sent = 5 * (len(CASES) + 2)
    assert lab.wait_for(lambda: counted(lab, p1) - counted0 >= sent, timeout=5)
    assert counted(lab, p1) - counted0 == sent
    counted1 = counted(lab, p1)
    # scapy takes its time on a loaded machine (over 30 s seen with load 15 on 2 cores)
    lab.run(lab.client, [sys.executable, HOSTILE, "random", "200"], timeout=120)
    assert lab.wait_for(lambda: counted(lab, p1) - counted1 >= 200, timeout=5), \
        f"{counted(lab, p1) - counted1} of 200 random packets counted"
    assert counted(lab, p1) - counted1 == 200
    after = {p: {i["name"]: i for i in status(lab, p)["instances"]} for p in (p1, p2)}
    for p in (p1, p2):
        assert p.alive()
        for name in ("web", "legacy"):
            b, a = before[p][name], after[p][name]
            assert a["state"] == b["state"]
            assert a["counters"].get("transitions") == b["counters"].get("transitions")
            assert a["master_ip"] == b["master_ip"]
        for case, name, counter in CASES:
            got = after[p][name]["counters"].get(counter, 0)
            assert got >= 5, f"{case}: {counter}={got} on {p.host.name}"
    assert sorted(lab.holder(VIP4)) == ["h1"]
    assert lab.http_get(lab.client, f"http://{VIP4}/") == "h1\n"
    assert instance_status(lab, p1)["state"] == "MASTER"
