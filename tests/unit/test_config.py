"""vipd.config: what check-config tells an operator, and what the daemon gets from a good file."""
from __future__ import annotations

import dataclasses
import ipaddress
import pathlib
import socket
import tomllib

import pytest

from vipd.config import (
    CheckConfig, Config, ConfigError, ConfigIssue, GlobalConfig, InstanceConfig, NotifyConfig,
    TrackCheck, TrackInterface, diff_instances, load, loads,
)

REPO = pathlib.Path(__file__).resolve().parents[2]
PATH = "/etc/vipd/test.toml"

BASE_INSTANCE = {
    "name": '"web"', "interface": '"eth0"', "vrid": "51", "vips": '["198.51.100.100/24"]',
}
NGINX_CHECK = '[checks.nginx]\ncommand = ["/usr/lib/vipd/checks/nginx"]\n'


def doc(inst: dict[str, str | None] | None = None, *, checks: str = NGINX_CHECK,
        glob: str = "", notify: str = "", extra: str = "") -> str:
    """A valid config with one instance; ``inst`` overrides (None drops) instance keys, given as
    TOML value text."""
    fields = {**BASE_INSTANCE, **(inst or {})}
    body = "\n".join(f"{k} = {v}" for k, v in fields.items() if v is not None)
    notify_table = f"[instance.notify]\n{notify}\n" if notify else ""
    return f"[global]\nrouter_id = \"lb1\"\n{glob}\n{checks}\n[[instance]]\n{body}\n" \
           f"{notify_table}{extra}"


def issues_of(text: str) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as err:
        loads(text, PATH)
    return err.value.issues


def cases(rows: list[tuple], ids: list[str] | None = None) -> list:
    """Rows of (input, key, reason fragment, ...) as pytest params (input, key, fragments)."""
    ids = ids or [str(row[0]) for row in rows]
    return [pytest.param(row[0], row[1], row[2:], id=i) for row, i in zip(rows, ids)]


def assert_issue(text: str, key: str, *fragments: str) -> None:
    """The config is rejected with exactly one issue, at ``key``, whose reason has the fragments."""
    issues = issues_of(text)
    assert len(issues) == 1, issues
    issue = issues[0]
    assert (issue.file, issue.key) == (PATH, key), issue
    for fragment in fragments:
        assert fragment in issue.reason, issue
    assert str(issue) == f"{PATH}: {key}: {issue.reason}"


# ---- a good config ----------------------------------------------------------------------------

DESIGN_SAMPLE = """
[global]
router_id = "lb1"                     # default: host name
socket = "/run/vipd/vipd.sock"

[checks.nginx]                         # a named check: argv, no shell
command = ["/usr/lib/vipd/checks/nginx", "--url", "http://127.0.0.1/"]
interval = 1.0
timeout = 1.0
rise = 2
fall = 2
weight = 0

[[instance]]
name = "web"
interface = "eth0"
vrid = 51
priority = 150
version = 3
advert_interval = 1.0
vips = ["198.51.100.100/24"]
failback = "auto"
preempt_delay = 0.0
track_checks = ["nginx"]
track_interfaces = []
unicast_peers = []

[instance.notify]
master = ["/etc/vipd/hooks/redis-role"]
backup = ["/etc/vipd/hooks/redis-role"]
fault = ["/etc/vipd/hooks/redis-role"]
stop = ["/etc/vipd/hooks/redis-role"]
"""


def test_design_sample_loads_to_the_expected_dataclasses():
    hook = ("/etc/vipd/hooks/redis-role",)
    nginx = CheckConfig(name="nginx", command=("/usr/lib/vipd/checks/nginx", "--url",
                                               "http://127.0.0.1/"))
    web = InstanceConfig(
        name="web", interface="eth0", vrid=51, priority=150, version=3, advert_interval=1.0,
        vips=(ipaddress.IPv4Interface("198.51.100.100/24"),), family=4, failback="auto",
        track_checks=(TrackCheck("nginx"),),
        notify=NotifyConfig(master=hook, backup=hook, fault=hook, stop=hook))
    cfg = loads(DESIGN_SAMPLE, PATH)
    assert cfg == Config(path=PATH, global_=GlobalConfig(router_id="lb1"),
                         checks={"nginx": nginx}, instances=(web,))
    assert cfg.instance("web") is cfg.instances[0]
    assert web.adver_int_cs == 100
    assert web.track_checks[0].weight is None       # the check's own weight applies


def test_defaults_of_an_instance_with_only_the_required_keys():
    cfg = loads(doc(checks=""))
    inst = cfg.instances[0]
    assert cfg.path == "<string>"
    assert (inst.priority, inst.version, inst.advert_interval, inst.failback) == \
        (100, 3, 1.0, "auto")
    assert (inst.checksum, inst.garp_repeat, inst.garp_interval, inst.garp_refresh) == \
        ("pseudo-header", 5, 0.05, 0.0)
    assert inst.notify == NotifyConfig() and inst.notify.timeout == 10.0
    assert dict(cfg.checks) == {}


def test_router_id_defaults_to_the_host_name():
    cfg = loads(doc().replace('router_id = "lb1"', ""))
    assert cfg.global_ == GlobalConfig(router_id=socket.gethostname(), socket="/run/vipd/vipd.sock",
                                       script_user=None, log_level="info")


def test_loaded_config_cannot_be_changed():
    cfg = loads(doc())
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.instances[0].priority = 1       # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.checks["other"] = cfg.checks["nginx"]  # type: ignore[index]


def test_instance_lookup_by_unknown_name_names_it():
    with pytest.raises(KeyError, match="nope"):
        loads(doc()).instance("nope")


def test_bare_vips_get_host_prefixes_and_set_the_family():
    v4 = loads(doc({"vips": '["198.51.100.100", "198.51.100.101/24"]'})).instances[0]
    assert [str(v) for v in v4.vips] == ["198.51.100.100/32", "198.51.100.101/24"]
    v6 = loads(doc({"vips": '["fe80::100", "2001:db8::100/64"]'})).instances[0]
    assert [str(v) for v in v6.vips] == ["fe80::100/128", "2001:db8::100/64"]
    assert (v4.family, v6.family) == (4, 6)


def test_unicast_addresses_are_canonical_strings():
    inst = loads(doc({"vips": '["2001:db8::100/64"]', "unicast_src": '"2001:DB8:0::1"',
                      "unicast_peers": '["2001:0db8::2", "fe80::2"]'})).instances[0]
    assert inst.unicast_src == "2001:db8::1"
    assert inst.unicast_peers == ("2001:db8::2", "fe80::2")


def test_track_entries_as_names_or_inline_tables():
    inst = loads(doc(
        {"track_checks": '["nginx", {name = "redis", weight = -20}]',
         "track_interfaces": '["eth1", {name = "eth2", weight = -10}]',
         "failback_gate": '["redis"]'},
        checks=NGINX_CHECK + '[checks.redis]\ncommand = ["/bin/true"]\nweight = 5\n')).instances[0]
    assert inst.track_checks == (TrackCheck("nginx", None), TrackCheck("redis", -20))
    assert inst.track_interfaces == (TrackInterface("eth1", 0), TrackInterface("eth2", -10))
    assert inst.failback_gate == ("redis",)


@pytest.mark.parametrize("interval, version, cs", [
    ("0.01", 3, 1), ("0.07", 3, 7), ("40.95", 3, 4095), ("3", 2, 300), ("255.0", 2, 25500)])
def test_advert_interval_limits_that_are_accepted(interval, version, cs):
    inst = loads(doc({"advert_interval": interval, "version": str(version)})).instances[0]
    assert inst.adver_int_cs == cs


def test_v2_instance_with_auth_pass_of_eight_bytes():
    inst = loads(doc({"version": "2", "auth_pass": '"12345678"'})).instances[0]
    assert (inst.version, inst.auth_pass) == (2, "12345678")


def test_same_vrid_is_fine_on_another_interface_or_family():
    extra = ('[[instance]]\nname = "web6"\ninterface = "eth0"\nvrid = 51\nvips = ["2001:db8::1"]\n'
             '[[instance]]\nname = "web-eth1"\ninterface = "eth1"\nvrid = 51\n'
             'vips = ["203.0.113.1"]\n')
    cfg = loads(doc(extra=extra))
    assert [i.name for i in cfg.instances] == ["web", "web6", "web-eth1"]


# ---- one rule broken at a time: the key path and the reason -----------------------------------

INSTANCE_CASES = [
    # required keys
    ({"name": None}, "instance[0].name", "required key is missing"),
    ({"interface": None}, "instance[0].interface", "required key is missing"),
    ({"vrid": None}, "instance[0].vrid", "required key is missing"),
    ({"vips": None}, "instance[0].vips", "required key is missing"),
    ({"vips": "[]"}, "instance[0].vips", "non-empty array", "got an empty array"),
    ({"vips": '"198.51.100.100"'}, "instance[0].vips", "got \"198.51.100.100\""),
    # names
    ({"name": '"web server"'}, "instance[0].name", "A-Z a-z 0-9 _ . -", 'got "web server"'),
    ({"name": '"' + "x" * 33 + '"'}, "instance[0].name", "1..32 characters"),
    ({"interface": '"averylonginterface"'}, "instance[0].interface", "1..15 characters"),
    ({"interface": '"eth0:1"'}, "instance[0].interface", "Linux interface name"),
    # numbers: range and type (a bool is not an integer)
    ({"vrid": "0"}, "instance[0].vrid", "must be an integer 1..255, got 0"),
    ({"vrid": "256"}, "instance[0].vrid", "must be an integer 1..255, got 256"),
    ({"vrid": "true"}, "instance[0].vrid", "must be an integer 1..255, got true"),
    ({"vrid": '"51"'}, "instance[0].vrid", 'must be an integer 1..255, got "51"'),
    ({"priority": "300"}, "instance[0].priority", "must be an integer 1..255, got 300"),
    ({"priority": "0"}, "instance[0].priority", "must be an integer 1..255, got 0"),
    ({"priority": "150.0"}, "instance[0].priority", "got 150.0"),
    ({"version": "4"}, "instance[0].version", "must be 2 or 3, got 4"),
    ({"version": "3.0"}, "instance[0].version", "must be 2 or 3, got 3.0"),
    # advertisement interval: what the header field of each version can carry
    ({"advert_interval": "0.015"}, "instance[0].advert_interval",
     "0.01..40.95 seconds in steps of 0.01 for version 3, got 0.015"),
    ({"advert_interval": "41"}, "instance[0].advert_interval", "0.01..40.95", "got 41"),
    ({"advert_interval": "0.001"}, "instance[0].advert_interval", "0.01..40.95"),
    ({"advert_interval": "0"}, "instance[0].advert_interval", "> 0, got 0"),
    ({"advert_interval": '"1s"'}, "instance[0].advert_interval", 'got "1s"'),
    ({"advert_interval": "nan"}, "instance[0].advert_interval", "got nan"),
    ({"version": "2", "advert_interval": "0.5"}, "instance[0].advert_interval",
     "whole seconds 1..255 for version 2, got 0.5"),
    ({"version": "2", "advert_interval": "256"}, "instance[0].advert_interval",
     "whole seconds 1..255", "got 256"),
    # VIPs
    ({"vips": '["198.51.100.100/24", "2001:db8::100"]'}, "instance[0].vips[1]",
     '"2001:db8::100" is IPv6 but the first VIP is IPv4'),
    ({"vips": '["2001:db8::100", "198.51.100.100"]'}, "instance[0].vips[1]",
     '"198.51.100.100" is IPv4 but the first VIP is IPv6'),
    ({"vips": '["198.51.100.100/24", "198.51.100.300"]'}, "instance[0].vips[1]",
     'got "198.51.100.300"'),
    ({"vips": '["198.51.100.100/33"]'}, "instance[0].vips[0]", 'got "198.51.100.100/33"'),
    ({"vips": '["fe80::1%eth0"]'}, "instance[0].vips[0]", 'got "fe80::1%eth0"'),
    ({"vips": '["224.0.0.18"]'}, "instance[0].vips[0]", "unicast address"),
    ({"vips": '["198.51.100.100/24", 7]'}, "instance[0].vips[1]", "got 7"),
    ({"vips": '["198.51.100.100/24", "198.51.100.100/25"]'}, "instance[0].vips[1]",
     "listed twice (also at [0])"),
    ({"vips": '["2001:db8::100"]', "version": "2"}, "instance[0].version",
     "IPv6 VIPs need VRRP version 3"),
    # unicast
    ({"unicast_peers": '["2001:db8::2"]'}, "instance[0].unicast_peers[0]",
     '"2001:db8::2" is IPv6 but the VIPs are IPv4'),
    ({"unicast_peers": '["198.51.100.2", "lb2"]'}, "instance[0].unicast_peers[1]",
     'must be an IPv4 or IPv6 address, got "lb2"'),
    ({"unicast_peers": '["198.51.100.2/24"]'}, "instance[0].unicast_peers[0]",
     'got "198.51.100.2/24"'),
    ({"unicast_peers": '["198.51.100.2", "198.51.100.2"]'}, "instance[0].unicast_peers[1]",
     "listed twice"),
    ({"unicast_peers": '"198.51.100.2"'}, "instance[0].unicast_peers", "must be an array"),
    ({"unicast_src": '"2001:db8::1"'}, "instance[0].unicast_src", "is IPv6 but the VIPs are IPv4"),
    ({"unicast_src": '"0.0.0.0"'}, "instance[0].unicast_src", "unicast address"),
    # authentication and checksum
    ({"auth_pass": '"secret"'}, "instance[0].auth_pass", "only valid with version = 2"),
    ({"version": "2", "auth_pass": '"123456789"'}, "instance[0].auth_pass",
     "must be 1..8 bytes, got 9 bytes"),
    ({"version": "2", "auth_pass": '"ééééé"'}, "instance[0].auth_pass", "got 10 bytes"),
    ({"version": "2", "auth_pass": '""'}, "instance[0].auth_pass", "non-empty string"),
    ({"checksum": '"none"'}, "instance[0].checksum",
     'must be "pseudo-header" or "vrrp-only", got "none"'),
    ({"checksum": '"vrrp-only"', "vips": '["2001:db8::1"]'}, "instance[0].checksum",
     "IPv6 always uses the pseudo-header"),
    # failback and preemption
    ({"failback": '"manual"'}, "instance[0].failback",
     'must be "auto", "semi-auto" or "none", got "manual"'),
    ({"preempt_delay": "-1"}, "instance[0].preempt_delay", "0..3600, got -1"),
    ({"preempt_delay": "3601"}, "instance[0].preempt_delay", "0..3600, got 3601"),
    # gratuitous ARP / NA
    ({"garp_repeat": "0"}, "instance[0].garp_repeat", "1..100, got 0"),
    ({"garp_repeat": "101"}, "instance[0].garp_repeat", "1..100, got 101"),
    ({"garp_interval": "-0.05"}, "instance[0].garp_interval", "0..10, got -0.05"),
    ({"garp_refresh": "0.5"}, "instance[0].garp_refresh", "0 (off) or 1..86400 seconds, got 0.5"),
    ({"garp_refresh": "86401"}, "instance[0].garp_refresh", "got 86401"),
    # tracking and gates
    ({"track_checks": '["ngnix"]'}, "instance[0].track_checks[0]",
     'no check "ngnix" is defined in [checks]; did you mean "nginx"?'),
    ({"track_checks": '[{name = "nginx", weight = -255}]'}, "instance[0].track_checks[0].weight",
     "must be an integer -254..254, got -255"),
    ({"track_checks": '[{name = "nginx", wieght = -20}]'}, "instance[0].track_checks[0].wieght",
     'unknown key; did you mean "weight"?'),
    ({"track_checks": '[{weight = -20}]'}, "instance[0].track_checks[0].name",
     "required key is missing"),
    ({"track_checks": "[7]"}, "instance[0].track_checks[0]",
     "must be a name or an inline table", "got 7"),
    ({"track_checks": '["nginx", "nginx"]'}, "instance[0].track_checks[1]", "listed twice"),
    ({"track_interfaces": '["eth/1"]'}, "instance[0].track_interfaces[0]", "interface name"),
    ({"track_interfaces": '[{name = "eth1", weight = 255}]'},
     "instance[0].track_interfaces[0].weight", "-254..254, got 255"),
    ({"failback_gate": '["redis"]'}, "instance[0].failback_gate[0]",
     'no check "redis" is defined'),
    # unknown keys, with a hint when one is close
    ({"prioritty": "100"}, "instance[0].prioritty", 'unknown key; did you mean "priority"?'),
    ({"family": "6"}, "instance[0].family", "unknown key"),
    ({"zzz": "1"}, "instance[0].zzz", "unknown key"),
]


@pytest.mark.parametrize("inst, key, fragments", cases(
    INSTANCE_CASES, [f"{c[1]}={list(c[0].values())[0]}" for c in INSTANCE_CASES]))
def test_instance_rule(inst, key, fragments):
    assert_issue(doc(inst), key, *fragments)


def test_unknown_key_without_a_close_match_gets_no_hint():
    [issue] = issues_of(doc({"zzz": "1"}))
    assert issue.reason == "unknown key"


def test_keys_that_are_not_bare_are_quoted_in_the_path():
    assert_issue(doc({'"my key"': "1"}), 'instance[0]."my key"', "unknown key")


CHECK_CASES = [
    ("command = []", "checks.nginx.command", "non-empty array of strings", "got an empty array"),
    ('command = "/bin/true"', "checks.nginx.command", 'got "/bin/true"'),
    ('command = ["nginx-check"]', "checks.nginx.command[0]",
     'program must be an absolute path, got "nginx-check"'),
    ('command = ["/bin/check", 5]', "checks.nginx.command[1]", "must be a string, got 5"),
    ("interval = 0", "checks.nginx.interval", "> 0, got 0"),
    ("timeout = -1", "checks.nginx.timeout", "> 0, got -1"),
    ("timeout = inf", "checks.nginx.timeout", "got inf"),
    ("rise = 0", "checks.nginx.rise", "must be an integer >= 1, got 0"),
    ("fall = 0", "checks.nginx.fall", "must be an integer >= 1, got 0"),
    ("fall = true", "checks.nginx.fall", "got true"),
    ("weight = 255", "checks.nginx.weight", "must be an integer -254..254, got 255"),
    ("weight = -255", "checks.nginx.weight", "got -255"),
    ("intreval = 2", "checks.nginx.intreval", 'unknown key; did you mean "interval"?'),
]


@pytest.mark.parametrize("line, key, fragments", cases(CHECK_CASES))
def test_check_rule(line, key, fragments):
    # the command cases bring their own command line (or, for "missing", none)
    command = "" if key.startswith("checks.nginx.command") else \
        'command = ["/usr/lib/vipd/checks/nginx"]'
    assert_issue(doc(checks=f"[checks.nginx]\n{command}\n{line}\n"), key, *fragments)


def test_check_name_rule_and_quoted_path():
    text = doc(checks='[checks."bad name"]\ncommand = ["/bin/true"]\n')
    assert_issue(text, 'checks."bad name"', "check name must be 1..32 characters")


def test_check_that_is_not_a_table():
    assert_issue(doc(checks="[checks]\nnginx = 1\n"), "checks.nginx", "must be a table, got 1")


NOTIFY_CASES = [
    ('master = ["hook"]', "instance[0].notify.master[0]", 'absolute path, got "hook"'),
    ("backup = []", "instance[0].notify.backup", "got an empty array"),
    ('fault = "/bin/true"', "instance[0].notify.fault", 'got "/bin/true"'),
    ('stop = ["/bin/x", 3]', "instance[0].notify.stop[1]", "must be a string, got 3"),
    ("timeout = 0", "instance[0].notify.timeout", "> 0, got 0"),
    ('mastr = ["/bin/true"]', "instance[0].notify.mastr", 'unknown key; did you mean "master"?'),
]


@pytest.mark.parametrize("line, key, fragments", cases(NOTIFY_CASES))
def test_notify_rule(line, key, fragments):
    assert_issue(doc(notify=line), key, *fragments)


GLOBAL_CASES = [
    ('router_id = ""', "global.router_id", 'must be a non-empty string, got ""'),
    ("router_id = 5", "global.router_id", "got 5"),
    ('socket = "vipd.sock"', "global.socket", 'must be an absolute path, got "vipd.sock"'),
    ('log_level = "trace"', "global.log_level",
     'must be "debug", "info", "warning" or "error", got "trace"'),
    ('script_user = ""', "global.script_user", "non-empty string"),
    ("colour = 1", "global.colour", "unknown key"),
]


@pytest.mark.parametrize("line, key, fragments", cases(GLOBAL_CASES))
def test_global_rule(line, key, fragments):
    text = doc(glob=line).replace('router_id = "lb1"', "" if "router_id" in line else
                                  'router_id = "lb1"')
    assert_issue(text, key, *fragments)


def test_duplicate_instance_names():
    extra = '[[instance]]\nname = "web"\ninterface = "eth1"\nvrid = 52\nvips = ["203.0.113.1"]\n'
    assert_issue(doc(extra=extra), "instance[1].name", '"web" is already the name of instance[0]')


def test_same_vrid_on_the_same_interface_and_family():
    extra = '[[instance]]\nname = "api"\ninterface = "eth0"\nvrid = 51\nvips = ["203.0.113.1"]\n'
    assert_issue(doc(extra=extra), "instance[1].vrid",
                 "VRID 51 on eth0 (IPv4) is already used by instance[0]")


@pytest.mark.parametrize("text, key, fragment", [
    ("[global]\n", "instance", "at least one [[instance]] table"),
    ('[instance]\nname = "web"\n', "instance", "[[instance]] tables, got a table"),
    ("instance = []\n", "instance", "got none"),
    (doc() + "[instances]\n", "instances", 'unknown key; did you mean "instance"?'),
    ("checks = 1\n" + doc(checks=""), "checks", "got 1"),
], ids=["none", "single-table", "empty-array", "typo", "checks-not-table"])
def test_top_level_rule(text, key, fragment):
    assert_issue(text, key, fragment)


# ---- every error at once ------------------------------------------------------------------------


def test_every_error_is_reported_not_just_the_first():
    text = doc({"vrid": "0", "priority": "300", "prioritty": "1", "vips": '["x", "2001:db8::1"]',
                "track_checks": '["ngnix"]'},
               checks='[checks.nginx]\ncommand = ["nginx"]\nrise = 0\n',
               glob='log_level = "loud"', notify="timeout = -1",
               extra='[[instance]]\ninterface = "eth1"\nvrid = 999\nvips = ["203.0.113.1"]\n')
    with pytest.raises(ConfigError) as err:
        loads(text, PATH)
    found = {(i.file, i.key) for i in err.value.issues}
    assert found == {(PATH, k) for k in [
        "global.log_level", "checks.nginx.command[0]", "checks.nginx.rise",
        "instance[0].vrid", "instance[0].priority", "instance[0].prioritty",
        "instance[0].vips[0]", "instance[0].track_checks[0]", "instance[0].notify.timeout",
        "instance[1].name", "instance[1].vrid"]}
    # vips[0] is no address, so vips[1] sets the family (IPv6): no second complaint about it
    assert len(err.value.issues) == len(found)
    assert str(err.value).splitlines() == [str(i) for i in err.value.issues]


def test_a_bad_check_does_not_hide_references_to_undefined_checks():
    text = doc({"track_checks": '["nginx", "redis"]'},
               checks='[checks.nginx]\ncommand = ["nginx"]\n')
    assert {i.key for i in issues_of(text)} == {"checks.nginx.command[0]",
                                                "instance[0].track_checks[1]"}


# ---- files ------------------------------------------------------------------------------------


def test_load_reports_the_file_path(tmp_path):
    path = tmp_path / "vipd.toml"
    path.write_text(doc({"priority": "300"}))
    with pytest.raises(ConfigError) as err:
        load(str(path))
    assert str(err.value) == f"{path}: instance[0].priority: must be an integer 1..255, got 300"
    path.write_text(doc())
    assert load(str(path)).path == str(path)


def test_syntax_error_reports_the_line(tmp_path):
    path = tmp_path / "vipd.toml"
    path.write_text('[global]\nrouter_id = "lb1"\npriority = \n')
    with pytest.raises(ConfigError) as err:
        load(str(path))
    [issue] = err.value.issues
    assert (issue.file, issue.key) == (str(path), "line 3, column 12")
    assert issue.reason.startswith("TOML syntax error: ")


def test_unreadable_and_non_utf8_files(tmp_path):
    missing = tmp_path / "missing.toml"
    with pytest.raises(ConfigError) as err:
        load(str(missing))
    assert str(err.value) == f"{missing}: cannot read: No such file or directory"
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b'router_id = "\xff"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load(str(binary))


EXAMPLES = sorted(REPO.glob("etc/**/*.toml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[str(p.relative_to(REPO)) for p in EXAMPLES])
def test_example_config_loads(path):
    """Each example loads, and what was loaded is what the file says (a loader that dropped an
    instance or a key, or put a default in its place, fails here)."""
    cfg = load(str(path))
    raw = tomllib.loads(path.read_text())
    assert [i.name for i in cfg.instances] == [i["name"] for i in raw["instance"]]
    assert set(cfg.checks) == set(raw.get("checks", {}))
    for inst, want in zip(cfg.instances, raw["instance"]):
        for key in ("interface", "vrid", "priority", "version", "advert_interval", "failback",
                    "preempt_delay", "unicast_peers", "unicast_src", "auth_pass", "checksum"):
            if key in want:
                got = getattr(inst, key)
                assert (list(got) if isinstance(got, tuple) else got) == want[key], (inst.name, key)
        assert [str(v) for v in inst.vips] == [v for v in want["vips"] if isinstance(v, str)]


@pytest.mark.parametrize("pair", ["nginx-pair", "unicast-pair"])
def test_example_pairs_form_one_virtual_router(pair):
    lb1, lb2 = (load(str(REPO / "etc" / pair / f"{host}.toml")) for host in ("lb1", "lb2"))
    assert (lb1.global_.router_id, lb2.global_.router_id) == ("lb1", "lb2")
    for a, b in zip(lb1.instances, lb2.instances, strict=True):
        assert (a.vrid, a.vips, a.version, a.advert_interval) == \
            (b.vrid, b.vips, b.version, b.advert_interval)
        assert a.vips == (ipaddress.IPv4Interface("198.51.100.100/24"),)
        assert a.priority > b.priority
        if a.unicast_peers:
            assert (a.unicast_src, a.unicast_peers) == ("198.51.100.1", ("198.51.100.2",))
            assert (b.unicast_src, b.unicast_peers) == ("198.51.100.2", ("198.51.100.1",))


# ---- reload diff -----------------------------------------------------------------------------

TWO_CHECKS = NGINX_CHECK + '[checks.redis]\ncommand = ["/bin/true"]\n'
API = '[[instance]]\nname = "api"\ninterface = "eth0"\nvrid = 52\nvips = ["198.51.100.101"]\n'


def test_diff_same_config_is_all_unchanged():
    assert diff_instances(loads(doc(extra=API)), loads(doc(extra=API))) == \
        (set(), set(), set(), {"web", "api"})


def test_diff_added_removed_changed():
    old = loads(doc(extra=API))
    new = loads(doc({"priority": "120"},
                    extra=API.replace('"api"', '"db"')))
    assert diff_instances(old, new) == ({"db"}, {"api"}, {"web"}, set())


def test_diff_tracked_check_definition_change_counts_as_changed():
    old = loads(doc({"track_checks": '["nginx"]'}, checks=TWO_CHECKS, extra=API))
    new = loads(doc({"track_checks": '["nginx"]'}, extra=API,
                    checks=TWO_CHECKS.replace('nginx"]', 'nginx", "--url", "http://127.0.0.1/"]')))
    assert diff_instances(old, new) == (set(), set(), {"web"}, {"api"})


def test_diff_untracked_check_change_leaves_instances_unchanged():
    old = loads(doc({"track_checks": '["nginx"]'}, checks=TWO_CHECKS))
    new = loads(doc({"track_checks": '["nginx"]'}, checks=TWO_CHECKS + "rise = 5\n"))
    assert diff_instances(old, new) == (set(), set(), set(), {"web"})


def test_diff_failback_gate_check_change_counts_as_changed():
    old = loads(doc({"failback_gate": '["redis"]'}, checks=TWO_CHECKS))
    new = loads(doc({"failback_gate": '["redis"]'}, checks=TWO_CHECKS + "timeout = 3.0\n"))
    assert diff_instances(old, new) == (set(), set(), {"web"}, set())
