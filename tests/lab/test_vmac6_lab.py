"""IPv6 VMAC (keepalived use_vmac on an IPv6 instance) on real kernels: the VIP answers from
00:00:5e:00:02:VRID, a failover reaches the client with no Neighbour Advertisement at all, the
macvlan carries a copy of the parent's link-local (the adverts' source) and nothing made from
the virtual MAC, a crash's leftover is cleaned at start and a stop leaves nothing, and vipd and
keepalived share one IPv6 virtual router both ways."""
import json
import subprocess

import pytest
from scapy.layers.inet6 import IPv6, ICMPv6ND_NA, ICMPv6NDOptDstLLAddr
from scapy.layers.l2 import Ether
from scapy.utils import rdpcap

import labsegment
from conftest import VIP6, instance_status, keepalived_config, vipd_config, wait_state
from test_vmac_lab import client_neigh, fdb_port, start_mixed, vip_dev

pytestmark = pytest.mark.lab

VMAC6 = "00:00:5e:00:02:33"                  # VRID 51, RFC 5798 7.3
EUI64_OF_VMAC = "fe80::200:5eff:fe00:233"    # what addr_gen_mode eui64 would have made from it

# Classic BPF for `tc filter ... bpf da`: drop ICMPv6 Neighbour Advertisements (type 136), let
# everything else on. Offsets from the Ethernet header: ethertype 12, next header 20, ICMPv6
# type 54 (NDP messages carry no extension headers).
DROP_NA = ("8,40 0 0 12,21 0 5 34525,48 0 0 20,21 0 3 58,48 0 0 54,21 0 1 136,"
           "6 0 0 2,6 0 0 4294967295")


MLD_FROM_VMAC = f"ether src {VMAC6} and ip6 proto 0"   # MLD: ICMPv6 after a Hop-by-Hop header


def maddrs(lab, host, dev) -> set[str]:
    out = lab.run(host, ["ip", "-6", "maddr", "show", "dev", dev]).stdout
    return {line.split()[1] for line in out.splitlines() if line.strip().startswith("inet6")}


def vmac6_config(priority):
    return vipd_config(priority=priority, interval=0.1, vips=(f"{VIP6}/64",), use_vmac=True)


def keepalived_vmac6_config(priority):
    return keepalived_config(priority=priority, interval=0.1, vips=(f"{VIP6}/64",)).replace(
        "    interface eth0\n", "    interface eth0\n    use_vmac\n")


def bridge(*argv) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=10).stdout


def drop_nas_to_client(lab) -> None:
    port = lab.client.port
    bridge("tc", "-n", lab.bridge_ns, "qdisc", "add", "dev", port, "clsact")
    bridge("tc", "-n", lab.bridge_ns, "filter", "add", "dev", port, "egress", "pref", "1",
           "bpf", "da", "bytecode", DROP_NA)


def nas_dropped(lab) -> int:
    """Frames the filter dropped (a direct-action filter's drops are the clsact qdisc's)."""
    out = bridge("tc", "-s", "-j", "-n", lab.bridge_ns, "qdisc", "show", "dev", lab.client.port)
    return sum(q.get("drops", 0) for q in json.loads(out or "[]") if q.get("kind") == "clsact")


def link_locals(lab, host, dev) -> list[tuple[str, bool]]:
    """(address, deprecated) of each link-local address on dev."""
    out = lab.run(host, ["ip", "-j", "-6", "addr", "show", "dev", dev]).stdout
    return [(a["local"], a.get("preferred_life_time") == 0)
            for link in json.loads(out or "[]") for a in link.get("addr_info", [])
            if a["local"].startswith("fe80:")]


def parent_link_local(lab, host, dev="eth0") -> str:
    (ll, _), = link_locals(lab, host, dev)
    return ll


def reach6(lab, want, timeout=5):
    return lab.wait_for(lambda: lab.http_get(lab.client, f"http://[{VIP6}]/", timeout=0.5) == want,
                        timeout=timeout)


def has_vmac(lab, host, name="vrrp.51") -> bool:
    return lab.run(host, ["ip", "link", "show", name], check=False).returncode == 0


def test_vmac6_failover_needs_no_neighbour_advert_and_leaves_nothing(pair):
    lab = pair
    h1, h2 = lab.hosts
    for h in (h1, h2):      # new interfaces run DAD, as on a real host (the lab turns it off)
        lab.run(h, ["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=1",
                    "net.ipv6.conf.default.dad_transmits=3"])
    cap = lab.capture(filter="icmp6 and ip6[40] == 136")      # Neighbour Advertisements
    reports = lab.capture(filter=MLD_FROM_VMAC)
    p1 = lab.start_vipd(h1, vmac6_config(150))
    p2 = lab.start_vipd(h2, vmac6_config(100))
    assert wait_state(lab, p1, "MASTER") and wait_state(lab, p2, "BACKUP")
    assert vip_dev(lab, h1, VIP6) == ["vrrp.51"] and vip_dev(lab, h2, VIP6) == []
    # h1's unsolicited NAs: from the virtual MAC, Override set, the target's link-layer address
    # option the virtual MAC (RFC 4861 7.2.6), so every listener's entry becomes the VMAC
    nas = [p for p in rdpcap(str(cap.stop())) if ICMPv6ND_NA in p and p[ICMPv6ND_NA].tgt == VIP6]
    assert nas
    assert {(p[Ether].src, p[ICMPv6ND_NA].O, p[ICMPv6ND_NA].S, p[ICMPv6NDOptDstLLAddr].lladdr)
            for p in nas} == {(VMAC6, 1, 0, VMAC6)}
    ll1, ll2 = parent_link_local(lab, h1), parent_link_local(lab, h2)
    for host, ll in ((h1, ll1), (h2, ll2)):
        # the parent keeps its own; the macvlan has a deprecated copy and no EUI-64 of the VMAC
        assert link_locals(lab, host, "vrrp.51") == [(ll, True)]
        assert json.loads(lab.run(host, ["ip", "-j", "link", "show", "vrrp.51"]).stdout)[0][
            "address"] == VMAC6
    # The backup heard the master's adverts from its link-local (the source was usable at once:
    # no send error), and the switch learnt the virtual MAC on the master's port only.
    assert instance_status(lab, p2)["master_ip"] == ll1
    assert "send_errors" not in instance_status(lab, p1)["counters"]
    assert reach6(lab, "h1\n")
    assert client_neigh(lab, VIP6) == VMAC6
    assert fdb_port(lab, VMAC6) == ["h1"]

    drop_nas_to_client(lab)             # from now on the client hears no NA from anybody
    lab.cut(h1, silent=True)
    assert wait_state(lab, p2, "MASTER", timeout=5)
    assert reach6(lab, "h2\n")
    assert client_neigh(lab, VIP6) == VMAC6     # its entry never changed
    assert fdb_port(lab, VMAC6) == ["h2"]       # the switch followed the adverts
    assert nas_dropped(lab) > 0, "h2's unsolicited NAs should have met the filter"
    lab.heal(h1)
    assert wait_state(lab, p1, "MASTER", timeout=5) and wait_state(lab, p2, "BACKUP", timeout=5)
    assert reach6(lab, "h1\n") and client_neigh(lab, VIP6) == VMAC6
    assert fdb_port(lab, VMAC6) == ["h1"]
    # The VRRP group and the VIP's solicited-node group are joined on the parent instead (its
    # reports carry its own MAC), also on the backup
    assert {"ff02::12", "ff02::1:ff00:100"} <= maddrs(lab, h2, "eth0")

    # A crash leaves the macvlan (and the VIP on it); the next start removes it first.
    p1.kill()
    assert has_vmac(lab, h1) and vip_dev(lab, h1, VIP6) == ["vrrp.51"]
    p1 = lab.start_vipd(h1, vmac6_config(150))
    assert wait_state(lab, p1, "MASTER", timeout=5)
    assert "removed leftover VMAC interface vrrp.51" in p1.output()
    assert reach6(lab, "h1\n") and link_locals(lab, h1, "vrrp.51") == [(ll1, True)]
    # Not one MLD report left from the virtual MAC: not at either start, nor when h2 took the
    # VIP and gave it back (leaving its solicited-node group), nor at h1's restart.
    assert [p.summary() for p in rdpcap(str(reports.stop()))] == []
    # ... and the capture sees them where the macvlan's filter is gone: h2, a backup, joins a
    # group and its report carries the virtual MAC (what would pull the switch to h2).
    ctl = lab.capture(filter=MLD_FROM_VMAC)
    lab.run(h2, ["tc", "filter", "del", "dev", "vrrp.51", "egress", "pref", "1"])
    lab.run(h2, ["ip", "addr", "add", "2001:db8::77/64", "dev", "vrrp.51", "nodad"])
    assert lab.wait_for(lambda: ctl.path.stat().st_size > 24, timeout=3)
    assert {p[IPv6].src for p in rdpcap(str(ctl.stop()))} == {ll2}
    p1.stop()
    p2.stop()
    for h in (h1, h2):
        assert not has_vmac(lab, h), f"VMAC interface left behind on {h.name} after stop"
        assert parent_link_local(lab, h)       # the parent's link-local is untouched


def test_vmac6_is_made_again_when_its_interface_comes_back(lab):
    """Deleting an interface deletes the macvlan on it: h1 is in FAULT meanwhile, and once the
    interface is re-created (new ifindex, MAC and link-local) vipd makes the VMAC again, copies
    the new link-local and takes the VIP back on it."""
    h1, h2 = lab.hosts
    vip, vmac = "2001:db8:1::100", "00:00:5e:00:02:3d"       # VRID 61
    for m in (h1, h2, lab.client):
        labsegment.add_leg(lab, m)                          # eth1, on a second bridge
    lab.run(lab.client, ["ip", "addr", "add", "2001:db8:1::200/64", "dev", "eth1", "nodad"])
    procs = [lab.start_vipd(h, vipd_config(vrid=61, priority=prio, vips=(f"{vip}/64",),
                                           use_vmac=True).replace('"eth0"', '"eth1"'))
             for h, prio in ((h1, 150), (h2, 100))]
    assert wait_state(lab, procs[0], "MASTER") and wait_state(lab, procs[1], "BACKUP")
    assert lab.ping(lab.client, vip)
    labsegment.del_leg(lab, h1)
    assert wait_state(lab, procs[0], "FAULT") and wait_state(lab, procs[1], "MASTER")
    assert not has_vmac(lab, h1, "vrrp.61")
    labsegment.add_leg(lab, h1)
    assert wait_state(lab, procs[0], "MASTER") and wait_state(lab, procs[1], "BACKUP")
    assert "VMAC interface vrrp.61 made again on eth1" in procs[0].output()
    assert vip_dev(lab, h1, vip) == ["vrrp.61"] and vip_dev(lab, h2, vip) == []
    assert link_locals(lab, h1, "vrrp.61") == [(parent_link_local(lab, h1, "eth1"), True)]
    assert lab.wait_for(lambda: lab.ping(lab.client, vip, timeout=0.5), timeout=5)
    assert client_neigh(lab, vip) == vmac and fdb_port(lab, vmac, "br1") == ["h1b"]


def test_control_without_vmac_the_same_filter_strands_the_client(pair):
    """The control for the test above: failing over by unsolicited NA alone (no VMAC), the same
    filter keeps the client on h1's MAC, so reaching h2 above was the virtual MAC's doing."""
    lab = pair
    h1, h2 = lab.hosts
    config = vipd_config(interval=0.1, vips=(f"{VIP6}/64",))
    p1 = lab.start_vipd(h1, config.replace("priority = 100", "priority = 150"))
    p2 = lab.start_vipd(h2, config)
    assert wait_state(lab, p1, "MASTER") and wait_state(lab, p2, "BACKUP")
    assert reach6(lab, "h1\n") and client_neigh(lab, VIP6) == h1.mac
    drop_nas_to_client(lab)
    lab.cut(h1, silent=True)
    assert wait_state(lab, p2, "MASTER", timeout=5)
    assert not reach6(lab, "h2\n", timeout=2)
    assert client_neigh(lab, VIP6) == h1.mac and nas_dropped(lab) > 0


@pytest.mark.parametrize("vipd_master", [True, False], ids=["vipd-master", "keepalived-master"])
def test_vmac6_interop_with_keepalived(pair, vipd_master):
    lab = pair
    h1, h2 = lab.hosts
    vipd = start_mixed(lab, vipd_master, vmac6_config, keepalived_vmac6_config)
    assert lab.wait_for(lambda: vip_dev(lab, h1, VIP6) == ["vrrp.51"]
                        and vip_dev(lab, h2, VIP6) == [], timeout=10)
    assert wait_state(lab, vipd, "MASTER" if vipd_master else "BACKUP")
    ll1 = parent_link_local(lab, h1)
    if not vipd_master:     # keepalived's adverts come from its copy of h1's link-local too
        assert instance_status(lab, vipd)["master_ip"] == ll1
    assert reach6(lab, "h1\n") and client_neigh(lab, VIP6) == VMAC6
    lab.cut(h1, silent=True)
    assert lab.wait_for(lambda: vip_dev(lab, h2, VIP6) == ["vrrp.51"], timeout=10)
    assert reach6(lab, "h2\n") and client_neigh(lab, VIP6) == VMAC6
    assert fdb_port(lab, VMAC6) == ["h2"]
    lab.heal(h1)
    assert lab.wait_for(lambda: vip_dev(lab, h1, VIP6) == ["vrrp.51"]
                        and vip_dev(lab, h2, VIP6) == [], timeout=10)
    assert reach6(lab, "h1\n") and client_neigh(lab, VIP6) == VMAC6
    assert fdb_port(lab, VMAC6) == ["h1"]
    if vipd_master:
        assert wait_state(lab, vipd, "MASTER")
        assert not {k: v for k, v in instance_status(lab, vipd)["counters"].items()
                    if k.startswith("discard_")}
