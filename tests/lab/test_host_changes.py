"""Real hosts change under the daemon (issue 9): interfaces that appear late, are deleted and
re-created; addresses that arrive late (DHCP), are still tentative (DAD), change, or are deleted
by someone else. Each: the instance reaches the right state, the VIP is where it should be and
the client reaches it, and instances on the other interface never move.

A second segment (bridge br1, interface eth1 on each host, 203.0.113.0/24) is added to the lab so
one interface can be broken while the other carries an instance that must not notice.
"""
import json
import time

import labsegment
import pytest

from conftest import VIP4, instance_status, vipd_config, wait_holder, wait_state

pytestmark = pytest.mark.lab

SIDE_VIP = "203.0.113.100"
WEB6_VIP = "2001:db8::100"


def add_eth1(lab, host) -> None:
    labsegment.add_leg(lab, host)


def del_eth1(lab, host) -> None:
    labsegment.del_leg(lab, host)


def holders(lab, vip: str, ifname: str) -> list[str]:
    found = []
    for m in lab.members:
        out = lab.run(m, ["ip", "-j", "addr", "show"]).stdout
        if any(a["local"] == vip for link in json.loads(out) for a in link.get("addr_info", [])
               if link["ifname"] == ifname):
            found.append(m.name)
    return found


def wait_holders(lab, vip, ifname, hosts, timeout=10.0) -> bool:
    return lab.wait_for(lambda: holders(lab, vip, ifname) == hosts, timeout=timeout,
                        interval=0.05)


def instance(name, ifname, vrid, priority, vip, interval=0.1, **kw) -> str:
    return vipd_config(name=name, vrid=vrid, priority=priority, interval=interval,
                       vips=(vip,), **kw).replace('interface = "eth0"', f'interface = "{ifname}"')


def transitions(lab, proc, name) -> int:
    return instance_status(lab, proc, name)["counters"].get("transitions", 0)


def test_interface_late_deleted_and_recreated_as_master_and_backup(lab):
    """eth1 is missing on h1 at start (FAULT, the daemon runs on), appears 3 s later, and is
    deleted and re-created under the MASTER and under the BACKUP; web on eth0 never moves."""
    h1, h2 = lab.hosts
    for h in (h2, lab.client):
        add_eth1(lab, h)
    configs = {h: instance("web", "eth0", 51, prio, f"{VIP4}/24")
               + instance("side", "eth1", 61, prio, f"{SIDE_VIP}/24")
               for h, prio in ((h1, 150), (h2, 100))}
    p1 = lab.start_vipd(h1, configs[h1])
    p2 = lab.start_vipd(h2, configs[h2])
    assert wait_state(lab, p1, "FAULT", "side")
    st = instance_status(lab, p1, "side")
    assert st["faults"] == ["interface eth1 missing"], st
    assert wait_holders(lab, SIDE_VIP, "eth1", ["h2"])
    assert wait_holder(lab, VIP4, ["h1"])
    web = (transitions(lab, p1, "web"), transitions(lab, p2, "web"))

    time.sleep(3)
    add_eth1(lab, h1)                                  # created 3 s after start
    assert wait_holders(lab, SIDE_VIP, "eth1", ["h1"])
    assert instance_status(lab, p1, "side")["state"] == "MASTER"
    assert lab.ping("c", SIDE_VIP, count=3)

    del_eth1(lab, h1)                                  # deleted under the MASTER
    assert wait_state(lab, p1, "FAULT", "side")
    assert instance_status(lab, p1, "side")["faults"] == ["interface eth1 missing"]
    assert wait_holders(lab, SIDE_VIP, "eth1", ["h2"])
    assert lab.ping("c", SIDE_VIP, count=3)
    add_eth1(lab, h1)                                  # re-created: new ifindex and MAC
    assert wait_holders(lab, SIDE_VIP, "eth1", ["h1"])
    # The client follows only if the GARP carried the new interface's MAC.
    assert lab.ping("c", SIDE_VIP, count=3)
    side1 = transitions(lab, p1, "side")

    del_eth1(lab, h2)                                  # deleted and re-created under the BACKUP
    assert wait_state(lab, p2, "FAULT", "side")
    add_eth1(lab, h2)
    assert wait_state(lab, p2, "BACKUP", "side")
    rx = instance_status(lab, p2, "side")["counters"].get("adverts_received", 0)
    # its new socket hears the master (10 adverts/s)
    assert lab.wait_for(lambda: instance_status(lab, p2, "side")["counters"].get(
        "adverts_received", 0) >= rx + 5, timeout=5)
    assert transitions(lab, p1, "side") == side1       # the master never noticed
    assert holders(lab, SIDE_VIP, "eth1") == ["h1"]
    assert (transitions(lab, p1, "web"), transitions(lab, p2, "web")) == web
    assert holders(lab, VIP4, "eth0") == ["h1"]
    assert p1.alive() and p2.alive()


def test_addresses_late_tentative_changed_and_vip_deleted(lab):
    """h1 starts without its IPv4 address (DHCP late) and with a tentative link-local address
    (DAD running): both instances are FAULT with that reason and leave FAULT by themselves. Then
    its primary address changes (adverts now come from the new one) and a VIP is deleted under
    the MASTER (put back at once, counted). side on eth1 never moves."""
    h1, h2 = lab.hosts
    for h in lab.members:
        add_eth1(lab, h)
    lab.run(h1, ["sysctl", "-qw", "net.ipv4.conf.eth0.promote_secondaries=1",
                 "net.ipv6.conf.eth0.accept_dad=1", "net.ipv6.conf.eth0.dad_transmits=3"])
    lab.run(h1, ["ip", "addr", "del", f"{h1.ip4}/24", "dev", "eth0"])
    lab.run(h1, ["ip", "-6", "addr", "flush", "dev", "eth0", "scope", "link"])
    lab.run(h1, ["ip", "addr", "add", "fe80::1:1/64", "dev", "eth0"])   # DAD: ~3 s tentative
    configs = {h: instance("web", "eth0", 51, prio, f"{VIP4}/24")
               + instance("web6", "eth0", 52, prio, f"{WEB6_VIP}/64")
               + instance("side", "eth1", 61, prio, f"{SIDE_VIP}/24")
               for h, prio in ((h1, 150), (h2, 100))}
    p1 = lab.start_vipd(h1, configs[h1])
    p2 = lab.start_vipd(h2, configs[h2])
    # (read from the history: on a busy machine DAD may be over by the time we look)
    for name in ("web", "web6"):
        first = instance_status(lab, p1, name)["transitions"][0]
        assert (first["from"], first["to"], first["reason"]) == (
            "INIT", "FAULT", "fault at start: no source address on eth0"), first
    assert wait_holders(lab, SIDE_VIP, "eth1", ["h1"])
    side = (transitions(lab, p1, "side"), transitions(lab, p2, "side"))

    # DAD finishes by itself: web6 leaves FAULT and, with the higher priority, takes the VIP.
    assert wait_state(lab, p1, "MASTER", "web6", timeout=10)
    assert instance_status(lab, p1, "web6")["local_addr"] == "fe80::1:1"
    assert holders(lab, WEB6_VIP, "eth0") == ["h1"]
    assert instance_status(lab, p1, "web")["state"] == "FAULT"     # still no IPv4 address

    lab.run(h1, ["ip", "addr", "add", f"{h1.ip4}/24", "dev", "eth0"])   # DHCP, late
    assert wait_holder(lab, VIP4, ["h1"])
    assert instance_status(lab, p1, "web")["local_addr"] == h1.ip4
    assert lab.http_get("c", f"http://{VIP4}/") is not None or lab.ping("c", VIP4, count=3)

    # The primary address changes: the new one is added, the old one removed.
    web_t = transitions(lab, p1, "web")
    lab.run(h1, ["ip", "addr", "add", "198.51.100.21/24", "dev", "eth0"])
    lab.run(h1, ["ip", "addr", "del", f"{h1.ip4}/24", "dev", "eth0"])
    assert lab.wait_for(lambda: instance_status(lab, p2, "web")["master_ip"] == "198.51.100.21",
                        timeout=5)
    assert instance_status(lab, p1, "web")["local_addr"] == "198.51.100.21"
    assert transitions(lab, p1, "web") == web_t

    # Someone deletes the VIP under the MASTER: it is back at once, counted and logged.
    assert instance_status(lab, p1, "web")["counters"].get("vip_restored", 0) == 0
    lab.run(h1, ["ip", "addr", "del", f"{VIP4}/24", "dev", "eth0"])
    assert wait_holder(lab, VIP4, ["h1"], timeout=2)
    assert instance_status(lab, p1, "web")["counters"]["vip_restored"] == 1
    assert "removed from eth0 by another program" in p1.output()
    assert lab.ping("c", VIP4, count=3)
    assert transitions(lab, p1, "web") == web_t
    # A backup does not put back what it does not hold.
    assert holders(lab, VIP4, "eth0") == ["h1"]
    assert instance_status(lab, p2, "web")["counters"].get("vip_restored", 0) == 0

    assert (transitions(lab, p1, "side"), transitions(lab, p2, "side")) == side
    assert holders(lab, SIDE_VIP, "eth1") == ["h1"]
