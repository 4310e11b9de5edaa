"""VMAC (keepalived use_vmac) on real kernels: the client's neighbour entry for the VIP is the
virtual router MAC, a failover moves the switch's forwarding entry and never the client's ARP
entry, nothing is left behind, and vipd and keepalived share one virtual router both ways."""
import json

import pytest

from conftest import VIP4, instance_status, keepalived_config, vipd_config, wait_state

pytestmark = pytest.mark.lab

VMAC = "00:00:5e:00:01:33"        # VRID 51


def vmac_config(priority):
    return vipd_config(priority=priority, interval=0.1, use_vmac=True)


def keepalived_vmac_config(priority):
    return keepalived_config(priority=priority, interval=0.1).replace(
        "    interface eth0\n", "    interface eth0\n    use_vmac\n")


def client_neigh(lab, vip=VIP4) -> str | None:
    out = lab.run(lab.client, ["ip", "-j", "neigh", "show", vip]).stdout
    entries = json.loads(out or "[]")
    return entries[0].get("lladdr") if entries else None


def fdb_port(lab, mac, bridge="br0") -> list[str]:
    """Bridge ports the switch forwards mac to (learned entries)."""
    out = subprocess_run(["ip", "netns", "exec", lab.bridge_ns, "bridge", "-j", "fdb", "show",
                          "br", bridge])
    return sorted({e["ifname"] for e in json.loads(out or "[]") if e.get("mac") == mac})


def subprocess_run(argv):
    import subprocess
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=10).stdout


def vip_dev(lab, host, vip=VIP4) -> list[str]:
    out = lab.run(host, ["ip", "-j", "addr", "show"]).stdout
    return [link["ifname"] for link in json.loads(out)
            for a in link.get("addr_info", []) if a["local"] == vip]


def reach(lab, want):
    return lab.wait_for(lambda: lab.http_get(lab.client, f"http://{VIP4}/", timeout=0.5) == want,
                        timeout=5)


def test_vmac_failover_moves_the_switch_not_the_client_arp_entry(pair):
    lab = pair
    h1, h2 = lab.hosts
    lab.run(h2, ["ip", "link", "add", "vrrp.51", "link", "eth0", "type", "macvlan"])  # leftover
    igmp = lab.capture(filter=f"ether src {VMAC} and igmp")
    p1 = lab.start_vipd(h1, vmac_config(150))
    p2 = lab.start_vipd(h2, vmac_config(100))
    assert wait_state(lab, p1, "MASTER") and wait_state(lab, p2, "BACKUP")
    assert "removed leftover VMAC interface vrrp.51" in p2.output()
    assert vip_dev(lab, h1) == ["vrrp.51"] and vip_dev(lab, h2) == []
    assert reach(lab, "h1\n")
    assert client_neigh(lab) == VMAC
    assert fdb_port(lab, VMAC) == ["h1"]
    st = instance_status(lab, p1)
    assert st["vmac"] == "vrrp.51" and st["held"][0]["dev"] == "vrrp.51"

    lab.cut(h1, silent=True)              # h1 keeps its VMAC up but nobody hears it
    assert wait_state(lab, p2, "MASTER", timeout=5)
    assert reach(lab, "h2\n")
    assert client_neigh(lab) == VMAC      # the client's entry never changed
    assert fdb_port(lab, VMAC) == ["h2"]  # the switch followed
    lab.heal(h1)
    assert wait_state(lab, p1, "MASTER", timeout=5) and wait_state(lab, p2, "BACKUP", timeout=5)
    assert reach(lab, "h1\n") and client_neigh(lab) == VMAC
    # joining 224.0.0.18 sent no IGMP report from the virtual MAC (vipd/net/vmac.py drops them;
    # the parent joins instead); test_vmac6_lab.py shows such a capture catching one
    assert igmp.stop().stat().st_size == 24, "IGMP from the virtual MAC (24: the pcap header)"
    assert "224.0.0.18" in lab.run(h2, ["ip", "-4", "maddr", "show", "dev", "eth0"]).stdout
    # the host's own address is still answered with the host's MAC, not the VMAC
    lab.run(lab.client, ["ip", "neigh", "flush", "all"])
    assert lab.ping(lab.client, h1.ip4)
    own = json.loads(lab.run(lab.client, ["ip", "-j", "neigh", "show", h1.ip4]).stdout)
    assert own[0]["lladdr"] == h1.mac

    p1.stop()
    p2.stop()
    for h in (h1, h2):
        assert lab.run(h, ["ip", "link", "show", "vrrp.51"], check=False).returncode != 0, \
            "VMAC interface left behind after stop"


def start_mixed(lab, vipd_master, vipd_conf, keepalived_conf):
    """vipd on one host and keepalived on the other, h1's at priority 150 (the master-to-be);
    vipd_conf / keepalived_conf make a config from a priority. Returns vipd's Proc."""
    h1, h2 = lab.hosts
    if vipd_master:
        vipd = lab.start_vipd(h1, vipd_conf(150))
        lab.start_keepalived(h2, keepalived_conf(100))
    else:
        lab.start_keepalived(h1, keepalived_conf(150))
        vipd = lab.start_vipd(h2, vipd_conf(100))
    return vipd


@pytest.mark.parametrize("vipd_master", [True, False], ids=["vipd-master", "keepalived-master"])
def test_vmac_interop_with_keepalived(pair, vipd_master):
    lab = pair
    h1, h2 = lab.hosts
    # keepalived leaves its host's arp_announce alone: that host's own ARP requests then carry
    # the VIP as sender with the base MAC and, within the client's 1 s locktime, can hide the
    # new master's GARP after a failback (seen once in a clean run: the client kept h2's base
    # MAC for more than 5 s). Its operators set arp_announce=2 for use_vmac; so does vipd itself
    # on the parent (vipd/net/vmac.py).
    ka_host = h2 if vipd_master else h1
    lab.run(ka_host, ["sysctl", "-qw", "net.ipv4.conf.eth0.arp_announce=2"])
    vipd = start_mixed(lab, vipd_master, vmac_config, keepalived_vmac_config)
    assert lab.wait_for(lambda: vip_dev(lab, h1) == ["vrrp.51"] and vip_dev(lab, h2) == [],
                        timeout=10)
    if not vipd_master:
        assert wait_state(lab, vipd, "BACKUP")
    # The client's entry is asserted while vipd holds the VIP (keepalived's use_vmac sends its
    # GARP from the VMAC too, but not every one of its ARP packets).
    assert reach(lab, "h1\n") and (not vipd_master or client_neigh(lab) == VMAC)
    lab.cut(h1, silent=True)
    assert lab.wait_for(lambda: vip_dev(lab, h2) == ["vrrp.51"], timeout=10)
    assert reach(lab, "h2\n") and (vipd_master or client_neigh(lab) == VMAC)
    assert fdb_port(lab, VMAC) == ["h2"]
    lab.heal(h1)
    assert lab.wait_for(lambda: vip_dev(lab, h1) == ["vrrp.51"] and vip_dev(lab, h2) == [],
                        timeout=10)
    assert reach(lab, "h1\n")
    assert fdb_port(lab, VMAC) == ["h1"]
    if vipd_master:
        assert not {k: v for k, v in instance_status(lab, vipd)["counters"].items()
                    if k.startswith("discard_")}
