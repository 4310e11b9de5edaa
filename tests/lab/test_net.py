"""vipd/net raw sockets and GARP/NA against real kernels (namespaces from netpair.py)."""

import errno
import socket

import pytest
from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6
from scapy.layers.l2 import ARP, Ether

from vipd.net.announce import Announcer, garp_frame, ipv6_forwarding, unsolicited_na_frame
from vipd.net.rawsock import VrrpSocket


from netpair import A4, A6, B4, B6, GROUP4, GROUP6, VIP4, VIP6, WRONG_MAC, in_ns, recv_wait, wait_for
from netpair import ifindex_in, any_lab, lab  # noqa: F401  (fixtures, used by name)

pytestmark = pytest.mark.lab


def test_v4_multicast_arrives_with_ttl_255_and_is_not_looped_back(lab):
    sa = lab.make(lab.a, VrrpSocket, lab.a.ifname, 4)
    sb = lab.make(lab.b, VrrpSocket, lab.b.ifname, 4)
    sa.join_multicast()
    sa.join_multicast()  # idempotent
    sb.join_multicast()
    payload = bytes(range(20))
    sa.send(payload, GROUP4)
    assert recv_wait(sb) == (A4, GROUP4, 255, payload)
    assert recv_wait(sa, timeout=0.3) is None  # IP_MULTICAST_LOOP is off
    assert sb.recv() is None  # nothing else queued: recv() does not block


def test_v4_unicast_and_per_message_source(lab):
    lab.a.ip("addr", "add", "198.51.100.11/24", "dev", lab.a.ifname)  # a secondary address
    sa = lab.make(lab.a, VrrpSocket, lab.a.ifname, 4)
    sb = lab.make(lab.b, VrrpSocket, lab.b.ifname, 4)
    sb.join_multicast()
    # One socket receives both unicast and multicast adverts.
    sa.send(b"unicast", B4)
    assert recv_wait(sb) == (A4, B4, 255, b"unicast")
    sa.send(b"from secondary", B4, src="198.51.100.11")
    assert recv_wait(sb) == ("198.51.100.11", B4, 255, b"from secondary")
    sa.send(b"group from secondary", GROUP4, src="198.51.100.11")
    assert recv_wait(sb) == ("198.51.100.11", GROUP4, 255, b"group from secondary")
    sa.send(b"primary again", GROUP4, src=A4)
    assert recv_wait(sb) == (A4, GROUP4, 255, b"primary again")
    with pytest.raises(OSError) as e:
        sa.send(b"x", B4, src="198.51.100.77")  # not an address of this host
    assert e.value.errno == errno.ENETUNREACH


@pytest.mark.parametrize("family", [4, 6])
def test_multicast_is_delivered_only_after_join(any_lab, family):
    """Answers the driver's question for plain veths and for veths on a Linux bridge (IGMP/MLD
    snooping on, its default): a raw socket bound to the interface gets nothing for the VRRP group
    until the interface joins it."""
    lab = any_lab
    sa = lab.make(lab.a, VrrpSocket, lab.a.ifname, family)
    sb = lab.make(lab.b, VrrpSocket, lab.b.ifname, family)
    src, group = (A4, GROUP4) if family == 4 else (lab.link_local(lab.a), GROUP6)
    sa.send(b"before join", group, src=src)
    assert recv_wait(sb, timeout=0.5) is None
    sb.join_multicast()
    # The bridge forwards the group only once it has seen the IGMP/MLD report, which takes a
    # moment we do not know: resend (a new payload each time) until one arrives.
    sent = []

    def delivered():
        sent.append(f"after join {len(sent)}".encode())
        sa.send(sent[-1], group, src=src)
        return recv_wait(sb, timeout=0.1)
    got = wait_for(delivered, timeout=5)
    assert got is not None and got[:3] == (src, group, 255) and got[3] in sent, (got, sent)
    sb.leave_multicast()
    sb.leave_multicast()  # idempotent
    sa.send(b"after leave", group, src=src)
    # a late copy of an "after join" send may still come in; "after leave" must not
    late = []
    while (got := recv_wait(sb, timeout=0.5)) is not None:
        late.append(got[3])
    assert b"after leave" not in late and set(late) <= set(sent), late


def test_v4_ttl_is_reported_as_sent(lab):
    """A sender that does not set TTL 255 is visible to the driver, which must discard it."""
    sb = lab.make(lab.b, VrrpSocket, lab.b.ifname, 4)
    sb.join_multicast()
    plain = lab.make(lab.a, socket.socket, socket.AF_INET, socket.SOCK_RAW, 112)
    plain.sendto(b"default ttl", (B4, 0))  # net.ipv4.ip_default_ttl = 64
    assert recv_wait(sb) == (A4, B4, 64, b"default ttl")
    plain.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 64)
    plain.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, lab.a.ifname.encode())
    plain.sendto(b"group ttl 64", (GROUP4, 0))
    assert recv_wait(sb) == (A4, GROUP4, 64, b"group ttl 64")


def test_v6_multicast_from_link_local_with_hop_limit_255(lab):
    ll = lab.link_local(lab.a)
    sa = lab.make(lab.a, VrrpSocket, lab.a.ifname, 6)
    sb = lab.make(lab.b, VrrpSocket, lab.b.ifname, 6)
    sa.join_multicast()
    sb.join_multicast()
    sb.join_multicast()
    payload = bytes(range(40))
    sa.send(payload, GROUP6, src=ll)
    assert recv_wait(sb) == (ll, GROUP6, 255, payload)
    assert recv_wait(sa, timeout=0.3) is None  # IPV6_MULTICAST_LOOP is off


def test_v6_unicast_and_foreign_hop_limit(lab):
    sa = lab.make(lab.a, VrrpSocket, lab.a.ifname, 6)
    sb = lab.make(lab.b, VrrpSocket, lab.b.ifname, 6)
    sb.join_multicast()
    sa.send(b"unicast", B6, src=A6)
    assert recv_wait(sb) == (A6, B6, 255, b"unicast")
    # A plain socket's multicast hop limit is 1: reported from IPV6_HOPLIMIT, not assumed.
    ll = lab.link_local(lab.a)
    plain = lab.make(lab.a, socket.socket, socket.AF_INET6, socket.SOCK_RAW, 112)
    plain.sendto(b"hop limit 1", (GROUP6, 0, 0, ifindex_in(lab.a)))
    assert recv_wait(sb) == (ll, GROUP6, 1, b"hop limit 1")
    with pytest.raises(OSError) as e:
        sa.send(b"x", B6, src="2001:db8::77")
    assert e.value.errno == errno.EINVAL


def test_send_on_a_down_interface_raises(lab):
    ll = lab.link_local(lab.a)
    sa = lab.make(lab.a, VrrpSocket, lab.a.ifname, 4)
    sa6 = lab.make(lab.a, VrrpSocket, lab.a.ifname, 6)
    ann = lab.make(lab.a, Announcer, lab.a.ifname)
    lab.a.ip("link", "set", lab.a.ifname, "down")
    with pytest.raises(OSError) as e:
        sa.send(b"x", GROUP4)
    assert e.value.errno == errno.ENETUNREACH
    with pytest.raises(OSError) as e:
        sa6.send(b"x", GROUP6, src=ll)
    assert e.value.errno == errno.EINVAL
    with pytest.raises(OSError) as e:
        ann.send(garp_frame(lab.a.mac(), VIP4))
    assert e.value.errno == errno.ENETDOWN


# ---- Netlink -----------------------------------------------------------------------------


def test_garp_moves_an_existing_neighbour_entry(lab):
    lab.b.ip("neigh", "replace", VIP4, "lladdr", WRONG_MAC, "dev", lab.b.ifname, "nud", "stale")
    assert lab.b.neigh_mac(VIP4) == WRONG_MAC
    mac = lab.a.mac()
    ann = lab.make(lab.a, Announcer, lab.a.ifname)
    ann.send(garp_frame(mac, VIP4))
    assert wait_for(lambda: lab.b.neigh_mac(VIP4) == mac.hex(":")), lab.b.neigh_mac(VIP4)


def test_unsolicited_na_moves_an_existing_neighbour_entry(lab):
    lab.b.ip("-6", "neigh", "replace", VIP6, "lladdr", WRONG_MAC, "dev", lab.b.ifname,
             "nud", "stale")
    assert lab.b.neigh_mac(VIP6) == WRONG_MAC
    mac = lab.a.mac()
    ann = lab.make(lab.a, Announcer, lab.a.ifname)
    ann.send(unsolicited_na_frame(mac, VIP6))
    assert wait_for(lambda: lab.b.neigh_mac(VIP6) == mac.hex(":")), lab.b.neigh_mac(VIP6)


# Frames keepalived 2.2.7 sent for 198.51.100.100 and 2001:db8::100 from MAC 3a:ec:e4:84:8b:72
# (captured with tcpdump on the peer of a veth, interface not forwarding).
KEEPALIVED_MAC = bytes.fromhex("3aece4848b72")
KEEPALIVED_GARP = bytes.fromhex(
    "ffffffffffff3aece4848b72080600010800060400013aece4848b72c6336464ffffffffffffc6336464")
KEEPALIVED_NA = bytes.fromhex(
    "3333000000013aece4848b7286dd6000000000203aff20010db8000000000000000000000100ff0200000000"
    "0000000000000000000188004e4a2000000020010db800000000000000000000010002013aece4848b72")


def test_frames_match_keepalived_and_scapy():
    assert garp_frame(KEEPALIVED_MAC, VIP4) == KEEPALIVED_GARP
    assert unsolicited_na_frame(KEEPALIVED_MAC, VIP6) == KEEPALIVED_NA
    mac, smac = bytes.fromhex("020000000001"), "02:00:00:00:00:01"
    arp = Ether(dst="ff:ff:ff:ff:ff:ff", src=smac) / ARP(
        op=1, hwsrc=smac, psrc="203.0.113.9", hwdst="ff:ff:ff:ff:ff:ff", pdst="203.0.113.9")
    assert garp_frame(mac, "203.0.113.9") == bytes(arp)
    for src, router in ((None, False), ("fe80::1", True)):
        na = Ether(dst="33:33:00:00:00:01", src=smac) / IPv6(
            src=src or "2001:db8:5::9", dst="ff02::1", hlim=255) / ICMPv6ND_NA(
            R=int(router), S=0, O=1, tgt="2001:db8:5::9") / ICMPv6NDOptDstLLAddr(lladdr=smac)
        assert unsolicited_na_frame(mac, "2001:db8:5::9", src, router) == bytes(na)


def test_router_flag_source(lab):
    ifname = lab.a.ifname
    with in_ns(lab.a.ns):
        assert ipv6_forwarding(ifname) is False
    lab.a.sysctl(f"net.ipv6.conf.{ifname}.forwarding=1")
    with in_ns(lab.a.ns):
        assert ipv6_forwarding(ifname) is True
        assert ipv6_forwarding("nosuchif0") is False
