"""Parity keys on real kernels: placed and excluded VIPs, virtual routes and rules (present
exactly while MASTER, leftovers cleaned at start), track_file and reverse weights."""
import contextlib
import json
import struct
import time

import pytest

from conftest import REPO, VIP4, instance_status, vipd_config, wait_holder, wait_state
from test_tracking import add_dummy

pytestmark = pytest.mark.lab

PLACED = "203.0.113.10"
EXCLUDED6 = "2001:db8::10"
ROUTE = "203.0.113.128/25 via 198.51.100.254 dev eth0 table 100"
RULE_FROM = "203.0.113.10"
HELD = f"""
vips = ["{VIP4}/24", {{ address = "{PLACED}/24", dev = "uplink0", label = "uplink0:vip", scope = "link" }}]
excluded_vips = ["{EXCLUDED6}/64"]
virtual_routes = [{{ to = "203.0.113.128/25", via = "198.51.100.254", dev = "eth0", table = 100 }}]
virtual_rules = [{{ from = "{RULE_FROM}/32", table = 100, priority = 100 }}]
"""


def held_on(lab, host) -> dict:
    """What of the instance's holdings the kernel of host has now."""
    routes = lab.run(host, ["ip", "route", "show", "table", "100"]).stdout
    rules = lab.run(host, ["ip", "rule", "show"]).stdout
    addrs = lab.run(host, ["ip", "-j", "addr", "show"]).stdout
    found = {(a["local"], link["ifname"], a.get("label"), a.get("scope"))
             for link in json.loads(addrs) for a in link.get("addr_info", [])}
    return {
        "vip": any(a == VIP4 and dev == "eth0" for a, dev, _, _ in found),
        "placed": (PLACED, "uplink0", "uplink0:vip", "link") in found,
        "excluded": any(a == EXCLUDED6 and dev == "eth0" for a, dev, _, _ in found),
        "route": "203.0.113.128/25 via 198.51.100.254" in routes,
        "rules": rules.count(f"from {RULE_FROM} lookup 100"),
    }


ALL = {"vip": True, "placed": True, "excluded": True, "route": True, "rules": 1}
NONE = {"vip": False, "placed": False, "excluded": False, "route": False, "rules": 0}


def config(priority, extra=""):
    text = vipd_config(priority=priority, instances_extra=extra)
    # replace the plain vips line with the placed set
    return "\n".join(line for line in text.splitlines() if not line.startswith("vips =")) + HELD


def test_routes_rules_and_placed_vips_exactly_while_master(pair):
    lab = pair
    h1, h2 = lab.hosts
    for h in (h1, h2):
        add_dummy(lab, h)
    # leftovers of a crashed run on h2: the route, the rule, the excluded VIP
    lab.run(h2, ["ip", "route", "add", *ROUTE.split()])
    lab.run(h2, ["ip", "rule", "add", "from", RULE_FROM, "table", "100", "priority", "100"])
    lab.run(h2, ["ip", "addr", "add", f"{EXCLUDED6}/64", "dev", "eth0", "nodad"])
    assert held_on(lab, h2) == {**NONE, "route": True, "rules": 1, "excluded": True}
    cap = lab.capture()
    p1 = lab.start_vipd(h1, config(150))
    p2 = lab.start_vipd(h2, config(100))
    assert wait_state(lab, p2, "BACKUP") and wait_state(lab, p1, "MASTER")
    assert lab.wait_for(lambda: held_on(lab, h1) == ALL, timeout=5), held_on(lab, h1)
    assert held_on(lab, h2) == NONE, "leftovers not cleaned at start"

    lab.cut(h1)
    assert wait_state(lab, p2, "MASTER", timeout=5)
    assert lab.wait_for(lambda: held_on(lab, h2) == ALL, timeout=5), held_on(lab, h2)
    assert lab.wait_for(lambda: held_on(lab, h1) == NONE, timeout=5), held_on(lab, h1)
    lab.heal(h1)
    assert wait_state(lab, p1, "MASTER", timeout=5)
    assert lab.wait_for(lambda: held_on(lab, h2) == NONE, timeout=5), held_on(lab, h2)
    assert lab.wait_for(lambda: held_on(lab, h1) == ALL, timeout=5)
    st = instance_status(lab, p1)
    assert st["routes"] == [ROUTE] and st["routes_on"] is True
    assert st["rules"] == [f"from {RULE_FROM}/32 priority 100 table 100"]
    assert [h["dev"] for h in st["held"]] == ["eth0", "uplink0", "eth0"]
    p1.stop()
    assert held_on(lab, h1) == NONE, "a clean stop leaves nothing behind"

    # on the wire: adverts list the VIPs (placed one included), never the excluded address
    from scapy.all import IP, rdpcap
    from vipd.core import packet
    lists = {packet.decode(bytes(p[IP].payload), p[IP].src, p[IP].dst, 4).addresses
             for p in rdpcap(str(cap.stop())) if IP in p and p[IP].proto == 112}
    assert lists == {(VIP4, PLACED)}, lists
    # the check above can fail: an instance that lists the excluded address is seen
    bad = packet.Advert(version=3, vrid=51, priority=100, adver_int_cs=10, family=4,
                        addresses=(VIP4, PLACED, "198.51.100.9"))
    assert packet.decode(packet.encode(bad, h1.ip4, "224.0.0.18"), h1.ip4, "224.0.0.18",
                         4).addresses != (VIP4, PLACED)


def test_track_file_weight_and_reverse_interface(pair):
    lab = pair
    h1, h2 = lab.hosts
    add_dummy(lab, h1)
    weight_file = lab.workdir / "h1.weight"
    track = (f'track_files = [{{ path = "{weight_file}", weight = -1 }}]\n'
             'track_interfaces = [{ name = "uplink0", weight = -70, reverse = true }]\n')
    lab.run(h1, ["ip", "link", "set", "uplink0", "down"])   # reverse: no effect while down
    p1 = lab.start_vipd(h1, vipd_config(priority=150, instances_extra=track))
    lab.start_vipd(h2, vipd_config(priority=100))
    assert wait_holder(lab, VIP4, ["h1"])
    assert instance_status(lab, p1)["effective_priority"] == 150     # missing file counts 0
    weight_file.write_text("60\n")                                   # 150 - 60 = 90 < 100
    assert wait_holder(lab, VIP4, ["h2"], timeout=5)
    assert instance_status(lab, p1)["effective_priority"] == 90
    weight_file.write_text("0")
    assert wait_holder(lab, VIP4, ["h1"], timeout=5)
    lab.run(h1, ["ip", "link", "set", "uplink0", "up"])               # reverse: up costs 70
    assert wait_holder(lab, VIP4, ["h2"], timeout=5)
    assert instance_status(lab, p1)["effective_priority"] == 80
    lab.run(h1, ["ip", "link", "set", "uplink0", "down"])
    assert wait_holder(lab, VIP4, ["h1"], timeout=5)
    weight_file.unlink()                                             # gone: 0 again, no change
    weight_file.write_text("300")                                    # clamped 254 x -1: FAULT
    assert wait_state(lab, p1, "FAULT", timeout=5)
    assert instance_status(lab, p1)["faults"] == [f"track file {weight_file} = 254"]


def test_garp_delay_sends_a_second_burst(pair):
    lab = pair
    h1, h2 = lab.hosts
    cap = lab.capture(filter="arp")
    p1 = lab.start_vipd(h1, vipd_config(priority=150, garp_repeat=2, garp_interval=0.01,
                                         garp_delay=0.6))
    assert wait_state(lab, p1, "MASTER")
    assert lab.wait_for(lambda: instance_status(lab, p1)["counters"].get("announce_sent") == 4,
                        timeout=5), instance_status(lab, p1)["counters"]
    # tcpdump (-U) writes each frame as it reads it, and drops what it has not read when told to
    # stop: wait for the pcap itself to hold the 4 GARPs, then watch one garp_delay more (a third
    # burst would come then) before stopping it.
    assert lab.wait_for(lambda: len(garps_in(cap.path)) >= 4, timeout=5), garps_in(cap.path)
    time.sleep(0.7)
    assert instance_status(lab, p1)["counters"].get("announce_sent") == 4
    times = garps_in(cap.stop())
    assert len(times) == 4, times
    first, second = times[:2], times[2:]
    assert first[1] - first[0] < 0.1 and second[1] - second[0] < 0.1
    assert 0.5 < second[0] - first[0] < 1.0, times     # garp_delay after the first burst


def garps_in(pcap) -> list[float]:
    """Times of the gratuitous ARP requests for VIP4 in a pcap that tcpdump may still be
    writing (a record cut short at the end is left for the next read)."""
    from scapy.all import ARP, PcapReader, Scapy_Exception
    times = []      # an empty file (the header not yet flushed) is not a capture file yet
    with contextlib.suppress(EOFError, OSError, struct.error, Scapy_Exception), \
            PcapReader(str(pcap)) as r:
        for p in r:
            if ARP in p and p[ARP].psrc == VIP4 and p[ARP].pdst == VIP4 and p[ARP].op == 1:
                times.append(float(p.time))
    return times


def test_reverse_check_lowers_priority_while_it_passes(pair):
    """A maintenance-style check: while nginx answers on h1, h1 steps back (-60); when it stops
    answering, h1 takes the role again."""
    lab = pair
    h1, h2 = lab.hosts
    checks = (f'[checks.web]\ncommand = ["{REPO}/checks/nginx", "--url", "http://127.0.0.1/"]\n'
              "interval = 0.3\ntimeout = 1.0\nrise = 1\nfall = 1\n")
    track = 'track_checks = [{name = "web", weight = -60, reverse = true}]'
    p1 = lab.start_vipd(h1, vipd_config(priority=150, extra=checks, instances_extra=track))
    lab.start_vipd(h2, vipd_config(priority=100))
    assert wait_holder(lab, VIP4, ["h2"], timeout=10)
    assert lab.wait_for(lambda: instance_status(lab, p1)["effective_priority"] == 90, timeout=5)
    lab.stop_nginx(h1)
    assert wait_holder(lab, VIP4, ["h1"], timeout=10)
    st = instance_status(lab, p1)
    assert st["effective_priority"] == 150 and st["checks"]["web"]["ok"] is False
