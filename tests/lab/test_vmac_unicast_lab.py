"""VMAC (keepalived use_vmac) with unicast peers on real kernels.

keepalived 2.2 turns vmac_xmit_base on for every use_vmac instance with unicast peers
(vrrp_parser.c, vrrp_end_handler: "unicast with use_vmac requires vmac_xmit_base - setting";
keepalived.conf(5): "If using use_vmac with unicast peers, vmac_xmit_base must be set"): adverts
are sent and received on the parent interface, so they leave from the host's own MAC, while the
VIPs live on the VMAC and are announced from the virtual MAC. vipd does the same: a unicast
advert is addressed to the peer's own address, so it reaches the peer's parent interface, never
its macvlan, and a socket on the macvlan would hear nothing (two masters). Since no advert then
comes from the virtual MAC, the master also sends a frame from it to itself with each advert, which
keeps the switch's entry on its port (vipd/net/vmac.py, switch_refresh_frame).
"""
import pytest
from scapy.all import IP, Ether, IPv6, rdpcap

from conftest import VIP4, VIP6, instance_status, keepalived_config, vipd_config, wait_state
from test_vmac_lab import client_neigh, fdb_port, vip_dev

pytestmark = pytest.mark.lab

VMAC = {4: "00:00:5e:00:01:33", 6: "00:00:5e:00:02:33"}     # VRID 51, RFC 5798 7.3
VIP = {4: VIP4, 6: VIP6}
PREFIX = {4: 24, 6: 64}
URL = {4: f"http://{VIP4}/", 6: f"http://[{VIP6}]/"}


def addr(host, family) -> str:
    return host.ip4 if family == 4 else host.ip6


def vipd_unicast_vmac(family, priority, peer, src):
    return vipd_config(priority=priority, interval=0.1, vips=(f"{VIP[family]}/{PREFIX[family]}",),
                       use_vmac=True, unicast_peers=[peer], unicast_src=src)


def keepalived_unicast_vmac(priority, peer, src):
    """use_vmac with unicast peers and no vmac_xmit_base: keepalived sets it by itself."""
    return keepalived_config(priority=priority, interval=0.1).replace(
        "    interface eth0\n", "    interface eth0\n    use_vmac\n"
        f"    unicast_src_ip {src}\n    unicast_peer {{\n        {peer}\n    }}\n")


def counter(lab, proc, name) -> int:
    return instance_status(lab, proc)["counters"].get(name, 0)


def stray_frame_from(lab, host, mac) -> None:
    """One broadcast frame from host's port with the virtual MAC as source (what a backup that
    was master for a moment leaves behind): the switch now forwards the VIP's traffic to host."""
    lab.run(host, ["python3", "-c", "import socket, sys; s = socket.socket(socket.AF_PACKET, "
                   "socket.SOCK_RAW); s.bind(('eth0', 0)); s.send(b'\\xff' * 6 + "
                   "bytes.fromhex(sys.argv[1].replace(':', '')) + b'\\x88\\xb5' + bytes(46))",
                   mac])


def adverts_on_the_wire(cap) -> list[tuple[str, str]]:
    """(source MAC, IP destination) of every VRRP frame the bridge carried."""
    frames = []
    for p in rdpcap(str(cap.stop())):
        ip = p[IP] if IP in p else p[IPv6] if IPv6 in p else None
        if ip is not None and (ip.proto if IP in p else ip.nh) == 112:
            frames.append((p[Ether].src, ip.dst))
    return frames


@pytest.mark.parametrize("peer,family", [("vipd", 4), ("keepalived", 4), ("vipd", 6)],
                         ids=["vipd", "keepalived", "vipd-ipv6"])
def test_vmac_with_unicast_peers(pair, peer, family):
    """h1 is vipd (priority 150); h2 is vipd or keepalived (100), both use_vmac with each other
    as unicast peer. The VIP is on the VMAC and the client's entry for it is the virtual MAC;
    adverts are unicast from the parents' MACs, heard (h2 stays BACKUP while h1 lives); a
    silent cut of h1 moves the VIP to h2 with the client's entry unchanged, and back."""
    lab = pair
    h1, h2 = lab.hosts
    vip, vmac = VIP[family], VMAC[family]

    def reach(want):
        return lab.wait_for(lambda: lab.http_get(lab.client, URL[family], timeout=0.5) == want,
                            timeout=5)

    def on_vmac(holder):
        return vip_dev(lab, holder, vip) == ["vrrp.51"]

    cap = lab.capture(filter="ip proto 112 or ip6 proto 112")
    p1 = lab.start_vipd(h1, vipd_unicast_vmac(family, 150, addr(h2, family), addr(h1, family)))
    if peer == "vipd":
        p2 = lab.start_vipd(h2, vipd_unicast_vmac(family, 100, addr(h1, family),
                                                  addr(h2, family)))
    else:
        # keepalived leaves arp_announce alone; see test_vmac_interop_with_keepalived
        lab.run(h2, ["sysctl", "-qw", "net.ipv4.conf.eth0.arp_announce=2"])
        lab.start_keepalived(h2, keepalived_unicast_vmac(100, h1.ip4, h2.ip4))
        p2 = None
    assert wait_state(lab, p1, "MASTER")
    assert lab.wait_for(lambda: on_vmac(h1), timeout=5)
    if p2 is not None:
        assert wait_state(lab, p2, "BACKUP")
        # 20 adverts (2 s at 0.1 s) heard while still BACKUP: over six Master_Down_Intervals
        seen = counter(lab, p2, "adverts_received")
        assert lab.wait_for(lambda: counter(lab, p2, "adverts_received") >= seen + 20,
                            timeout=5)
        assert instance_status(lab, p2)["state"] == "BACKUP"
        assert instance_status(lab, p2)["master_ip"] == addr(h1, family)
    else:
        # A keepalived that did not hear h1 would be master within 0.35 s and send h1 adverts:
        # over 20 of h1's (six Master_Down_Intervals) none came and h1 is still MASTER.
        sent = counter(lab, p1, "adverts_sent")
        assert lab.wait_for(lambda: counter(lab, p1, "adverts_sent") >= sent + 20, timeout=5)
        assert counter(lab, p1, "adverts_received") == 0
        assert instance_status(lab, p1)["state"] == "MASTER"
    assert vip_dev(lab, h2, vip) == []
    assert reach("h1\n") and client_neigh(lab, vip) == vmac
    assert fdb_port(lab, vmac) == ["h1"]

    lab.cut(h1, silent=True)
    assert lab.wait_for(lambda: on_vmac(h2), timeout=5)
    assert reach("h2\n")
    assert client_neigh(lab, vip) == vmac     # the client's entry never changed
    assert fdb_port(lab, vmac) == ["h2"]      # the switch followed the VMAC's GARP/NA
    lab.heal(h1)
    assert lab.wait_for(lambda: on_vmac(h1) and vip_dev(lab, h2, vip) == [], timeout=5)
    assert wait_state(lab, p1, "MASTER")
    # A takeover h1 never heard of (healed before h2's second advert) leaves the switch on h2:
    # unicast adverts come from h1's own MAC, so h1's refresh frame (vipd/net/vmac.py) brings
    # it back; without it the client was cut off for good (3 runs in 6 before it).
    refresh = lab.capture(h1, filter=f"ether src {vmac} and ether dst {vmac}")
    stray_frame_from(lab, h2, vmac)
    assert reach("h1\n") and client_neigh(lab, vip) == vmac
    assert fdb_port(lab, vmac) == ["h1"]
    assert len(rdpcap(str(refresh.stop()))) >= 1       # sent from h1's port

    frames = adverts_on_the_wire(cap)
    by_source = {mac: {dst for m, dst in frames if m == mac} for mac, _ in frames}
    a1, a2 = addr(h1, family), addr(h2, family)
    assert by_source.get(h1.mac) == {a2}, by_source      # h1's, unicast from its own MAC
    assert by_source.get(h2.mac) == {a1}, by_source      # h2's, while it was master
    assert set(by_source) == {h1.mac, h2.mac}, by_source  # none from the VMAC, none multicast


def test_keepalived_master_vipd_backup_with_vmac_and_unicast_peers(pair):
    """The other way round from the [keepalived] case above: keepalived (150) is master on h1,
    vipd (100) backup on h2, both use_vmac with each other as unicast peer. vipd hears
    keepalived's unicast adverts on its parent (stays BACKUP with h1 as master), takes the VIP
    onto its VMAC when h1 is cut with the client's entry unchanged, and gives it back on the heal."""
    lab = pair
    h1, h2 = lab.hosts
    vip, vmac = VIP4, VMAC[4]

    def reach(want):
        return lab.wait_for(lambda: lab.http_get(lab.client, URL[4], timeout=0.5) == want,
                            timeout=5)

    cap = lab.capture(filter="ip proto 112")
    # keepalived leaves arp_announce alone; see test_vmac_interop_with_keepalived
    lab.run(h1, ["sysctl", "-qw", "net.ipv4.conf.eth0.arp_announce=2"])
    lab.start_keepalived(h1, keepalived_unicast_vmac(150, h2.ip4, h1.ip4))
    assert lab.wait_for(lambda: vip_dev(lab, h1, vip) == ["vrrp.51"], timeout=10)
    p2 = lab.start_vipd(h2, vipd_unicast_vmac(4, 100, h1.ip4, h2.ip4))
    assert wait_state(lab, p2, "BACKUP")
    # 20 adverts (2 s at 0.1 s) heard while still BACKUP: over six Master_Down_Intervals
    seen = counter(lab, p2, "adverts_received")
    assert lab.wait_for(lambda: counter(lab, p2, "adverts_received") >= seen + 20, timeout=5)
    st = instance_status(lab, p2)
    assert st["state"] == "BACKUP" and st["master_ip"] == h1.ip4, st
    assert vip_dev(lab, h2, vip) == []
    assert reach("h1\n") and client_neigh(lab, vip) == vmac
    assert fdb_port(lab, vmac) == ["h1"]

    rounds = counter(lab, p2, "announce_sent")
    lab.cut(h1, silent=True)
    assert wait_state(lab, p2, "MASTER")
    assert lab.wait_for(lambda: vip_dev(lab, h2, vip) == ["vrrp.51"], timeout=5)
    assert reach("h2\n")
    assert client_neigh(lab, vip) == vmac     # the client's entry never changed
    assert fdb_port(lab, vmac) == ["h2"]      # the switch followed vipd's GARP from the VMAC
    # The heal comes after vipd's GARP burst (garp_repeat 5, 50 ms apart): a round of it that
    # lands between keepalived's answering GARP and vipd hearing keepalived's advert would point
    # the switch at h2 again, and keepalived sends nothing from the VMAC after that (no refresh
    # frame, no garp_master_refresh here). Two GARP senders racing, as between two keepalived.
    assert lab.wait_for(lambda: counter(lab, p2, "announce_sent") >= rounds + 5, timeout=5)
    lab.heal(h1)
    assert wait_state(lab, p2, "BACKUP")
    assert lab.wait_for(lambda: vip_dev(lab, h2, vip) == [], timeout=5)
    assert vip_dev(lab, h1, vip) == ["vrrp.51"]
    assert reach("h1\n") and client_neigh(lab, vip) == vmac
    assert fdb_port(lab, vmac) == ["h1"]

    frames = adverts_on_the_wire(cap)
    by_source = {mac: {dst for m, dst in frames if m == mac} for mac, _ in frames}
    assert by_source.get(h1.mac) == {h2.ip4}, by_source   # keepalived's, from its parent
    assert by_source.get(h2.mac) == {h1.ip4}, by_source   # vipd's, while it was master
    assert set(by_source) == {h1.mac, h2.mac}, by_source  # none from the VMAC, none multicast
