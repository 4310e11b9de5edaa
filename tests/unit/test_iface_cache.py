"""The interface registry's address cache, kept from address events (vipd/interfaces.py): what
the advert source and the VIP-restore check read between dumps."""
import socket

from vipd.interfaces import Interface
from vipd.net.netlink import IFA_F_SECONDARY, IFA_F_TENTATIVE, pick_link_local6, pick_primary_ipv4
from vipd.net.nlmonitor import AddrEvent

V4, V6 = socket.AF_INET, socket.AF_INET6


def ev(address, prefixlen=24, flags=0, deleted=False, family=V4, scope=0):
    return AddrEvent(7, family, address, prefixlen, flags, scope, deleted)


def test_events_add_change_and_remove_addresses_in_the_kernels_order():
    iface = Interface("eth0")
    assert iface.apply(ev("198.51.100.1")) and iface.apply(ev("198.51.100.100",
                                                              flags=IFA_F_SECONDARY))
    assert not iface.apply(ev("198.51.100.1"))          # the same again: no change
    assert pick_primary_ipv4(iface.addrs, ["198.51.100.100"]) == "198.51.100.1"
    assert iface.addr_set == {"198.51.100.1", "198.51.100.100"}
    # another prefix length is another address (the kernel keeps both)
    assert iface.apply(ev("198.51.100.1", prefixlen=25)) and len(iface.addrs) == 3
    assert iface.apply(ev("198.51.100.1", deleted=True)) and len(iface.addrs) == 2
    assert not iface.apply(ev("198.51.100.1", deleted=True))
    assert iface.apply(ev("198.51.100.1", prefixlen=25, deleted=True))
    # the host's address gone: the VIP is promoted (same entry, flags changed, place kept)
    assert iface.apply(ev("198.51.100.100"))
    assert [(a.address, a.flags) for a in iface.addrs] == [("198.51.100.100", 0)]
    assert pick_primary_ipv4(iface.addrs, ["198.51.100.100"]) is None
    assert iface.addr_set == {"198.51.100.100"}


def test_a_tentative_link_local_becomes_the_source_when_dad_is_done():
    iface = Interface("eth0")
    ll = dict(family=V6, prefixlen=64, scope=253)
    iface.apply(ev("fe80::1", flags=IFA_F_TENTATIVE, **ll))
    assert pick_link_local6(iface.addrs) is None
    assert iface.apply(ev("fe80::1", **ll))
    assert pick_link_local6(iface.addrs) == "fe80::1" and len(iface.addrs) == 1
