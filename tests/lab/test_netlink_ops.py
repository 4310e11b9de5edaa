"""vipd/net/netlink (pyroute2) beyond addresses, against a real kernel: macvlan links (VMAC), routes and
policy rules, each checked with `ip -j` (what an operator would see) and taken away again."""

import json

import pytest

from vipd.net.netlink import NoSuchInterface

from netpair import SyncNetlink
from netpair import lab  # noqa: F401  (fixture, used by name)

pytestmark = pytest.mark.lab

VMAC = bytes.fromhex("00005e000133")    # RFC 5798 7.3: 00-00-5E-00-01-{VRID}, VRID 51


def _links(host) -> dict[str, dict]:
    return {link["ifname"]: link for link in json.loads(host.ip("-j", "-d", "link", "show"))}


def test_macvlan_is_made_up_with_the_vmac_and_removed(lab):
    nl = lab.make(lab.a, SyncNetlink)
    assert nl.add_macvlan("vrrp.51", lab.a.ifname, VMAC) is True
    link = _links(lab.a)["vrrp.51"]
    assert link["address"] == "00:00:5e:00:01:33"
    assert link["linkinfo"]["info_kind"] == "macvlan"
    assert link["linkinfo"]["info_data"]["mode"] == "private"
    assert link["link"] == lab.a.ifname and "UP" in link["flags"]
    assert nl.add_macvlan("vrrp.51", lab.a.ifname, VMAC) is False    # already there
    assert nl.add_macvlan("vrrp.52", lab.a.ifname, up=False) is True
    assert "UP" not in _links(lab.a)["vrrp.52"]["flags"]
    with pytest.raises(NoSuchInterface):
        nl.add_macvlan("vrrp.53", "nosuchif0")
    assert nl.del_link("vrrp.51") is True and nl.del_link("vrrp.52") is True
    assert "vrrp.51" not in _links(lab.a) and "vrrp.52" not in _links(lab.a)
    assert nl.del_link("vrrp.51") is False


def _routes(host, *args) -> list[dict]:
    return json.loads(host.ip("-j", *args, "route", "show", "table", "all"))


def test_routes_with_gateway_table_metric_and_device(lab):
    nl = lab.make(lab.a, SyncNetlink)
    dev = lab.a.ifname
    assert nl.add_route("203.0.113.0/24", via="198.51.100.2", table=100, metric=10) is True
    assert nl.add_route("203.0.113.0/24", via="198.51.100.2", table=100, metric=10) is False
    assert nl.add_route("192.0.2.0/24", dev=dev) is True                   # main table
    assert nl.add_route("2001:db8:1::/48", via="2001:db8::2", dev=dev, table=1000) is True
    mine = {(r["dst"], r.get("gateway"), r.get("table", "main"), r.get("metric"), r.get("dev"))
            for r in _routes(lab.a, "-4") + _routes(lab.a, "-6")}
    assert ("203.0.113.0/24", "198.51.100.2", "100", 10, dev) in mine
    assert ("192.0.2.0/24", None, "main", None, dev) in mine
    assert ("2001:db8:1::/48", "2001:db8::2", "1000", 1024, dev) in mine
    assert nl.del_route("203.0.113.0/24", via="198.51.100.2", table=100, metric=10) is True
    assert nl.del_route("203.0.113.0/24", via="198.51.100.2", table=100, metric=10) is False
    assert nl.del_route("192.0.2.0/24", dev=dev) is True
    assert nl.del_route("2001:db8:1::/48", table=1000) is True
    left = {r["dst"] for r in _routes(lab.a, "-4") + _routes(lab.a, "-6")}
    assert not left & {"203.0.113.0/24", "192.0.2.0/24", "2001:db8:1::/48"}


def _rules(host, family: str) -> list[dict]:
    return json.loads(host.ip("-j", family, "rule", "show"))


def test_rules_from_and_to_with_priority(lab):
    nl = lab.make(lab.a, SyncNetlink)
    assert nl.add_rule(100, src="203.0.113.10/32", priority=100) is True
    assert nl.add_rule(100, src="203.0.113.10/32", priority=100) is False
    assert nl.add_rule(1000, dst="2001:db8:1::/48", priority=200) is True
    v4 = [r for r in _rules(lab.a, "-4") if r["priority"] == 100]
    assert v4 == [{"priority": 100, "src": "203.0.113.10", "table": "100"}]
    v6 = [r for r in _rules(lab.a, "-6") if r["priority"] == 200]
    assert v6 == [{"priority": 200, "src": "all", "dst": "2001:db8:1::", "dstlen": 48,
                   "table": "1000"}]
    assert nl.del_rule(100, src="203.0.113.10/32", priority=100) is True
    assert nl.del_rule(100, src="203.0.113.10/32", priority=100) is False
    assert nl.del_rule(1000, dst="2001:db8:1::/48", priority=200) is True
    assert not [r for r in _rules(lab.a, "-4") + _rules(lab.a, "-6")
                if r["priority"] in (100, 200)]
