"""The `heartbeat` key (issue 14): parsed paths, and each mistake with its key path."""
import pytest

from test_config import assert_issue, doc
from vipd.config import loads
from vipd.core.paths import HeartbeatPath

GOOD = '[{ interface = "eth1", peers = ["203.0.113.2"], source = "203.0.113.1" }]'


def test_heartbeat_paths_load_as_canonical_strings():
    two = ('[{ interface = "eth1", peers = ["203.0.113.2", "203.0.113.3"],'
           ' source = "203.0.113.1" },'
           ' { interface = "bond1", peers = ["203.0.113.66"], source = "203.0.113.65" }]')
    inst = loads(doc({"heartbeat": two})).instances[0]
    assert inst.heartbeat == (HeartbeatPath("eth1", ("203.0.113.2", "203.0.113.3"), "203.0.113.1"),
                              HeartbeatPath("bond1", ("203.0.113.66",), "203.0.113.65"))
    assert loads(doc()).instances[0].heartbeat == ()
    v6 = '[{ interface = "eth1", peers = ["2001:db8:1::0:2"], source = "2001:db8:1::1" }]'
    inst6 = loads(doc({"vips": '["2001:db8::100/64"]', "heartbeat": v6})).instances[0]
    assert inst6.heartbeat[0].peers == ("2001:db8:1::2",)


@pytest.mark.parametrize("value, key, fragment", [
    ('[{ peers = ["203.0.113.2"], source = "203.0.113.1" }]', "heartbeat[0].interface",
     "required key is missing"),
    ('[{ interface = "eth1", source = "203.0.113.1" }]', "heartbeat[0].peers",
     "required key is missing"),
    ('[{ interface = "eth1", peers = ["203.0.113.2"] }]', "heartbeat[0].source",
     "required key is missing"),
    ('[{ interface = "eth1", peers = [], source = "203.0.113.1" }]', "heartbeat[0].peers",
     "non-empty array"),
    ('[{ interface = "eth1", peers = ["2001:db8::2"], source = "203.0.113.1" }]',
     "heartbeat[0].peers[0]", "is IPv6 but the VIPs are IPv4"),
    ('[{ interface = "eth1", peers = ["203.0.113.2"], source = "224.0.0.18" }]',
     "heartbeat[0].source", "must be a unicast address"),
    ('[{ interface = "eth1", peers = ["203.0.113.1"], source = "203.0.113.1" }]',
     "heartbeat[0].source", "also listed in peers"),
    ('[{ interface = "eth1", peers = ["203.0.113.2"], source = "203.0.113.1", ttl = 1 }]',
     "heartbeat[0].ttl", "unknown key"),
    ('[{ interface = "eth0", peers = ["203.0.113.2"], source = "203.0.113.1" }]',
     "heartbeat[0].interface", "the instance's own interface"),
    (f'{GOOD[:-1]}, {GOOD[1:]}', "heartbeat[1]", "listed twice"),
    ('"eth1"', "heartbeat", "must be an array"),
    ('["eth1"]', "heartbeat[0]", "must be an inline table {interface = ..."),
])
def test_heartbeat_rule(value, key, fragment):
    assert_issue(doc({"heartbeat": value}), f"instance[0].{key}", fragment)


def test_a_path_may_not_share_interface_and_vrid_with_another_instance():
    other = '[[instance]]\nname = "inner"\ninterface = "eth1"\nvrid = 51\nvips = ["203.0.113.10"]\n'
    assert_issue(doc({"heartbeat": GOOD}, extra=other), "instance[0].heartbeat[0].interface",
                 "VRID 51 on eth1 (IPv4) is already used by instance[1]")
    loads(doc({"heartbeat": GOOD}, extra=other.replace("vrid = 51", "vrid = 52")))
