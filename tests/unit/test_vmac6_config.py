"""IPv6 use_vmac (issue 11): check-config accepts it, still rejects what cannot work, and the
virtual MAC is RFC 5798 7.3's for each family."""
from __future__ import annotations

import pytest

from test_config import PATH, assert_issue, doc
from vipd.config import loads
from vipd.net.vmac import IPV6_SYSCTLS, vmac_address

V6 = {"vips": '["2001:db8::100/64"]', "use_vmac": "true"}
SECOND = """
[[instance]]
name = "{name}"
interface = "{interface}"
vrid = 51
vips = ["{vip}"]
use_vmac = true
{extra}
"""


def test_ipv6_use_vmac_is_accepted():
    cfg = loads(doc(V6), PATH).instances[0]
    assert (cfg.family, cfg.use_vmac, cfg.vmac_name, cfg.vip_dev) == (6, True, "vrrp.51",
                                                                       "vrrp.51")


def test_an_ipv4_and_an_ipv6_router_with_one_vrid_each_get_a_vmac_once_one_is_renamed():
    text = doc({"use_vmac": "true"}) + SECOND.format(
        name="web6", interface="eth0", vip="2001:db8::100/64", extra='vmac_interface = "vrrp6.51"')
    assert [i.vmac_name for i in loads(text, PATH).instances] == ["vrrp.51", "vrrp6.51"]


@pytest.mark.parametrize("second,key,fragment", [
    # IPv4 and IPv6 routers of one VRID are apart (RFC 5798), but both default to vrrp.51
    (SECOND.format(name="web6", interface="eth0", vip="2001:db8::100/64", extra=""),
     "instance[1].use_vmac", "the VMAC interface vrrp.51 is already instance[0]'s"),
    # the same VRID on two parents: two macvlans called vrrp.51
    (SECOND.format(name="other", interface="eth1", vip="203.0.113.10/24", extra=""),
     "instance[1].use_vmac", "already instance[0]'s"),
    (SECOND.format(name="other", interface="eth1", vip="203.0.113.10/24",
                   extra='vmac_interface = "vrrp.51"'),
     "instance[1].vmac_interface", "set vmac_interface to another name"),
])
def test_two_instances_cannot_share_a_vmac_interface(second, key, fragment):
    assert_issue(doc({"use_vmac": "true"}) + second, key, fragment)


@pytest.mark.parametrize("inst,key,fragment", [
    ({**V6, "vmac_interface": '"eth0"'}, "instance[0].vmac_interface",
     "is the instance's own interface"),
    ({**V6, "vmac_interface": '"vrrp.51.too.long"'}, "instance[0].vmac_interface", "15"),
    ({**V6, "use_vmac": '"yes"'}, "instance[0].use_vmac", "true or false"),
    ({**V6, "version": "2"}, "instance[0].version", "IPv6 VIPs need VRRP version 3"),
])
def test_what_is_still_invalid_with_ipv6_vmac(inst, key, fragment):
    assert_issue(doc(inst), key, fragment)


def test_virtual_mac_per_family():
    # RFC 5798 7.3: 00-00-5E-00-01-{VRID} (IPv4), 00-00-5E-00-02-{VRID} (IPv6)
    assert vmac_address(51) == "00:00:5e:00:01:33"
    assert vmac_address(51, 6) == "00:00:5e:00:02:33"
    assert vmac_address(255, 6) == "00:00:5e:00:02:ff"
    # no link-local made from the virtual MAC, no DAD/RS/SLAAC from it (see vipd/net/vmac.py)
    assert IPV6_SYSCTLS == {"addr_gen_mode": "1", "accept_dad": "0", "accept_ra": "0",
                            "router_solicitations": "0"}
