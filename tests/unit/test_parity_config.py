"""The parity keys (DESIGN.md "Parity keys"): what check-config accepts and rejects, each error
with file, key path and reason, and keepalived's track_file / reverse arithmetic."""
from __future__ import annotations

import ipaddress

import pytest

from test_config import PATH, assert_issue, doc, issues_of
from vipd.config import HeldVip, TrackFile, VirtualRoute, VirtualRule, diff_instances, loads
from vipd.core.tracking import track_file_effect, track_file_value, tracked_applies
from vipd.net import iproute

GROUP = """
[[instance]]
name = "inside"
interface = "eth1"
vrid = 52
vips = ["203.0.113.100/24"]
"""


def test_placed_and_excluded_vips():
    cfg = loads(doc({
        "vips": '["198.51.100.100/24", {address = "203.0.113.10/24", dev = "eth1", '
                'label = "eth1:vip", scope = "link"}]',
        "excluded_vips": '["2001:db8::10/64", {address = "198.51.100.7/32", dev = "eth2"}]'}),
        PATH).instances[0]
    # adverts list the vips only (both placed and plain), in order
    assert [str(v) for v in cfg.vips] == ["198.51.100.100/24", "203.0.113.10/24"]
    assert [str(v) for v in cfg.excluded_vips] == ["2001:db8::10/64", "198.51.100.7/32"]
    assert cfg.held == (
        HeldVip(ipaddress.ip_interface("198.51.100.100/24")),
        HeldVip(ipaddress.ip_interface("203.0.113.10/24"), dev="eth1", label="eth1:vip",
                scope="link"),
        HeldVip(ipaddress.ip_interface("2001:db8::10/64"), excluded=True),
        HeldVip(ipaddress.ip_interface("198.51.100.7/32"), dev="eth2", excluded=True))
    assert cfg.vip_dev == "eth0"


def test_routes_rules_files_vmac_and_garp_delay():
    cfg = loads(doc({
        "virtual_routes": '[{to = "203.0.113.0/24", via = "198.51.100.254", dev = "eth0", '
                          'table = 100, metric = 10}, {to = "default", type = "blackhole", '
                          'table = 7}]',
        "virtual_rules": '[{from = "203.0.113.10/32", table = 100, priority = 100}]',
        "track_files": '[{path = "/run/vipd/web.weight"}, '
                       '{path = "/run/vipd/maint", weight = 0, reverse = true}]',
        "track_checks": '[{name = "nginx", weight = 20, reverse = true}]',
        "track_interfaces": '[{name = "eth1", weight = -5, reverse = true}]',
        "use_vmac": "true", "vmac_interface": '"vm51"', "garp_delay": "5.0"}), PATH).instances[0]
    assert cfg.virtual_routes == (
        VirtualRoute(to="203.0.113.0/24", via="198.51.100.254", dev="eth0", table=100, metric=10),
        VirtualRoute(to="default", type="blackhole", table=7))
    assert cfg.virtual_rules == (VirtualRule(table=100, from_="203.0.113.10/32", priority=100),)
    assert cfg.track_files == (TrackFile("/run/vipd/web.weight"),
                               TrackFile("/run/vipd/maint", weight=0, reverse=True))
    assert cfg.track_checks[0].reverse and cfg.track_interfaces[0].reverse
    assert (cfg.vmac_name, cfg.vip_dev, cfg.garp_delay) == ("vm51", "vm51", 5.0)
    assert loads(doc({"use_vmac": "true"}), PATH).instances[0].vmac_name == "vrrp.51"


@pytest.mark.parametrize("inst,key,fragment", [
    ({"vips": '[{address = "198.51.100.1/24", dev = "a:b"}]'}, "instance[0].vips[0].dev",
     "Linux interface name"),
    ({"vips": '[{dev = "eth1"}]'}, "instance[0].vips[0].address", "required key is missing"),
    ({"vips": '["198.51.100.1/24", {address = "2001:db8::1/64"}]'}, "instance[0].vips[1].address",
     "is IPv6 but the first VIP is IPv4"),
    ({"vips": '[{address = "198.51.100.1/24", scope = "galaxy"}]'}, "instance[0].vips[0].scope",
     '"global", "site", "link", "host" or "nowhere"'),
    ({"vips": '[{address = "198.51.100.1/24", label = "eth0:a-very-long-one"}]'},
     "instance[0].vips[0].label", "at most 15 bytes"),
    ({"vips": '[{address = "198.51.100.1/24", lable = "x"}]'}, "instance[0].vips[0].lable",
     'did you mean "label"?'),
    ({"excluded_vips": '["198.51.100.100/24"]'}, "instance[0].excluded_vips[0]",
     "198.51.100.100 is also in vips"),
    ({"excluded_vips": '[{address = "2001:db8::1/64", label = "eth0:x"}]'},
     "instance[0].excluded_vips[0].label", "IPv4 addresses only"),
    ({"virtual_routes": '[{to = "203.0.113.1/24", via = "198.51.100.1"}]'},
     "instance[0].virtual_routes[0].to", "no host bits"),
    ({"virtual_routes": '[{to = "203.0.113.0/24", via = "2001:db8::1"}]'},
     "instance[0].virtual_routes[0].via", "is IPv6 but the route is to IPv4"),
    ({"virtual_routes": '[{to = "203.0.113.0/24"}]'}, "instance[0].virtual_routes[0].to",
     "needs via or dev"),
    ({"virtual_routes": '[{to = "203.0.113.0/24", dev = "eth0", table = 0}]'},
     "instance[0].virtual_routes[0].table", "an integer 1..4294967295"),
    ({"virtual_rules": '[{table = 100}]'}, "instance[0].virtual_rules[0].table",
     "needs a selector"),
    ({"virtual_rules": '[{from = "203.0.113.10/32"}]'}, "instance[0].virtual_rules[0].table",
     "required key is missing"),
    ({"track_files": '[{path = "relative"}]'}, "instance[0].track_files[0].path",
     "absolute path"),
    ({"track_files": '[{path = "/a", weight = 255}]'}, "instance[0].track_files[0].weight",
     "-254..254"),
    ({"track_files": '[{path = "/a"}, {path = "/a"}]'}, "instance[0].track_files[1]",
     "listed twice"),
    ({"track_checks": '[{name = "nginx", reverse = "yes"}]'},
     "instance[0].track_checks[0].reverse", "true or false"),
    ({"garp_delay": "-1"}, "instance[0].garp_delay", "0..3600"),
    ({"vmac_interface": '"vm1"'}, "instance[0].vmac_interface", "only valid with use_vmac"),
])
def test_parity_key_rule(inst, key, fragment):
    assert_issue(doc(inst), key, fragment)


def test_sync_group_loads_and_names_its_members():
    cfg = loads(doc(extra=GROUP + '[[sync_group]]\nname = "edge"\ninstances = ["web", "inside"]\n'
                              '[sync_group.notify]\nmaster = ["/bin/true"]\n'), PATH)
    (group,) = cfg.sync_groups
    assert (group.name, group.instances, group.notify.master) == (
        "edge", ("web", "inside"), ("/bin/true",))
    assert cfg.sync_group_of("inside") is group and cfg.sync_group_of("nope") is None


@pytest.mark.parametrize("groups,key,fragment", [
    ('[[sync_group]]\nname = "edge"\ninstances = ["web", "insid"]\n',
     "sync_group[0].instances[1]", 'no [[instance]] is named "insid"; did you mean "inside"?'),
    ('[[sync_group]]\nname = "edge"\ninstances = []\n', "sync_group[0].instances",
     "non-empty array"),
    ('[[sync_group]]\ninstances = ["web"]\n', "sync_group[0].name", "required key is missing"),
    ('[[sync_group]]\nname = "a"\ninstances = ["web"]\n[[sync_group]]\nname = "b"\n'
     'instances = ["inside", "web"]\n', "sync_group[1].instances[1]",
     '"web" is already in sync_group[0]'),
    ('[[sync_group]]\nname = "a"\ninstances = ["web"]\n[[sync_group]]\nname = "a"\n'
     'instances = ["inside"]\n', "sync_group[1].name", '"a" is already the name of sync_group[0]'),
    ('[[sync_group]]\nname = "a"\ninstances = ["web"]\n[sync_group.notify]\nmaster = ["x"]\n',
     "sync_group[0].notify.master[0]", "absolute path"),
    ('[[sync_group]]\nname = "a"\ninstances = ["web"]\npriority = 3\n',
     "sync_group[0].priority", "unknown key"),
])
def test_sync_group_rule(groups, key, fragment):
    assert_issue(doc(extra=GROUP + groups), key, fragment)


def test_every_parity_error_at_once():
    issues = issues_of(doc({"garp_delay": "-1", "track_files": '[{path = "x"}]'},
                           extra='[[sync_group]]\nname = "g"\ninstances = ["nope"]\n'))
    assert [i.key for i in issues] == ["instance[0].track_files[0].path",
                                       "instance[0].garp_delay", "sync_group[0].instances[0]"]


def test_reload_diff_sees_parity_and_membership_changes_not_group_hooks():
    old = loads(doc(extra=GROUP), PATH)
    moved = loads(doc({"vips": '[{address = "198.51.100.100/24", dev = "eth9"}]'},
                      extra=GROUP), PATH)
    assert diff_instances(old, moved)[2] == {"web"}
    group = '[[sync_group]]\nname = "g"\ninstances = ["web", "inside"]\n'
    grouped = loads(doc(extra=GROUP + group), PATH)
    assert diff_instances(old, grouped)[2] == {"web", "inside"}     # now elected as a group
    hooked = loads(doc(extra=GROUP + group + '[sync_group.notify]\nmaster = ["/bin/true"]\n'),
                   PATH)
    assert diff_instances(grouped, hooked)[3] == {"web", "inside"}  # only the group's hook


# ---- keepalived's arithmetic ------------------------------------------------------------------

@pytest.mark.parametrize("text,value", [
    ("5", 5), ("  -3\n", -3), ("0x10", 16), ("010", 8), ("+7 apples", 7), ("abc", 0), ("", 0),
    (None, 0), ("-", 0), ("99999999999999999999999", 254), ("-999", -254)])
def test_track_file_value_reads_like_strtol(text, value):
    assert track_file_value(text) == value


@pytest.mark.parametrize("value,weight,reverse,effect", [
    (0, 0, False, 0), (1, 0, False, None), (-3, 0, False, None),      # weight 0: non-zero faults
    (0, 0, True, None), (1, 0, True, 0),                              # reverse: zero faults
    (5, 2, False, 10), (5, 2, True, -10), (-10, 3, False, -30),
    (-254, 1, False, None), (-127, 2, False, None), (-126, 2, False, -252),   # <= -254: FAULT
    (254, 1, False, 253)])                                            # clamped like keepalived
def test_track_file_effect(value, weight, reverse, effect):
    assert track_file_effect(value, weight, reverse) == effect


@pytest.mark.parametrize("healthy,reverse,applies", [
    (False, False, True), (True, False, False), (True, True, True), (False, True, False),
    (None, False, False), (None, True, False)])
def test_tracked_weight_applies_while_failing_or_reversed_while_passing(healthy, reverse, applies):
    assert tracked_applies(healthy, reverse) is applies


def test_iproute_lines_for_routes_and_rules():
    route = VirtualRoute(to="203.0.113.0/24", via="198.51.100.254", dev="eth0", table=100,
                         metric=10)
    route6 = VirtualRoute(to="2001:db8:1::/48", dev="eth1")
    hole = VirtualRoute(to="default", type="blackhole", table=7)
    rule = VirtualRule(table=100, from_="203.0.113.10/32", priority=100)
    assert iproute.add_lines([route, route6, hole], [rule]) == {
        4: ["rule del from 203.0.113.10/32 priority 100 table 100",
            "rule add from 203.0.113.10/32 priority 100 table 100",
            "route replace 203.0.113.0/24 via 198.51.100.254 dev eth0 table 100 metric 10",
            "route replace blackhole default table 7"],
        6: ["route replace 2001:db8:1::/48 dev eth1"]}
    assert iproute.del_lines([route], [rule], duplicates=2) == {
        4: ["route del 203.0.113.0/24 via 198.51.100.254 dev eth0 table 100 metric 10",
            "rule del from 203.0.113.10/32 priority 100 table 100",
            "rule del from 203.0.113.10/32 priority 100 table 100"], 6: []}
