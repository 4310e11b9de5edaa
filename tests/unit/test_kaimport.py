"""vipd import-keepalived: keepalived's grammar (vipd.kaconf) and the mapping (vipd.kaimport).

The sample configs are upstream keepalived's (GPL): they are read from ../shared, never copied.
"""
import subprocess
import sys

import pytest

from kasamples import REPO, SAMPLES
from vipd import config, kaitems
from vipd.kaconf import parse
from vipd.kaimport import convert


# sample -> (instances, checks, sync groups, report entries, [(line, keyword) not carried over])
EXPECTED = {
    "keepalived.conf.SSL_GET": (1, 0, 0, 16, [
        (4, 'notification_email'),
        (7, 'notification_email_from'),
        (8, 'smtp_server'),
        (9, 'smtp_connect_timeout'),
        (14, 'state'),
        (19, 'authentication'),
        (30, 'virtual_server'),
        (55, 'virtual_server'),
    ]),
    "keepalived.conf.conditional_conf": (1, 1, 0, 18, [
        (3, 'net_namespace'),
        (16, 'state'),
    ]),
    "keepalived.conf.sample": (1, 0, 0, 14, [
        (4, 'notification_email'),
        (7, 'notification_email_from'),
        (8, 'smtp_server'),
        (9, 'smtp_connect_timeout'),
        (26, 'virtual_server'),
    ]),
    "keepalived.conf.track_interface": (1, 0, 0, 11, [
        (7, 'static_routes'),
        (15, 'state'),
    ]),
    "keepalived.conf.vrrp": (4, 0, 0, 40, [
        (4, 'notification_email'),
        (7, 'notification_email_from'),
        (8, 'smtp_server'),
        (9, 'smtp_connect_timeout'),
        (14, 'state'),
        (17, 'smtp_alert'),
        (32, 'virtual_ipaddress item 192.168.200.18 label eth0:1'),
        (38, 'smtp_alert'),
        (50, 'state'),
        (52, 'smtp_alert'),
        (69, 'smtp_alert'),
    ]),
    "keepalived.conf.vrrp.localcheck": (9, 5, 0, 77, [
        (44, 'state'),
        (66, 'state'),
        (104, 'state'),
        (115, 'state'),
        (125, 'state'),
        (135, 'state'),
        (145, 'state'),
    ]),
    "keepalived.conf.vrrp.lvs_syncd": (3, 0, 0, 25, [
        (3, 'vrrp_sync_group VG1'),
        (4, 'group member VI_2'),
        (5, 'group member VI_3'),
        (9, 'state'),
        (11, 'lvs_sync_daemon_interface'),
        (50, 'virtual_server'),
    ]),
    "keepalived.conf.vrrp.routes": (1, 0, 0, 11, [
        (7, 'static_routes'),
        (16, 'state'),
        (30, 'virtual_routes item 192.168.113.0/24 via 192.168.100.252 or 192.168.100.253'),
    ]),
    "keepalived.conf.vrrp.rules": (1, 0, 0, 11, [
        (9, 'static_rules'),
        (15, 'state'),
        (26, 'virtual_rules item to 192.168.200./24 table 2'),
    ]),
    "keepalived.conf.vrrp.scripts": (3, 0, 1, 29, [
        (17, 'state'),
        (19, 'smtp_alert'),
        (40, 'state'),
        (50, 'state'),
    ]),
    "keepalived.conf.vrrp.static_ipaddress": (1, 0, 0, 10, [
        (7, 'static_ipaddress'),
        (14, 'state'),
    ]),
    "keepalived.conf.vrrp.sync": (9, 0, 2, 59, [
        (27, 'state'),
        (37, 'state'),
        (64, 'state'),
        (74, 'state'),
        (84, 'state'),
        (94, 'state'),
        (104, 'state'),
    ]),
    "docker/keepalived.conf": (1, 0, 0, 6, [
        (3, 'state'),
    ]),
    "upstream-default/keepalived.conf": (1, 0, 0, 21, [
        (4, 'notification_email'),
        (9, 'notification_email_from'),
        (10, 'smtp_server'),
        (11, 'smtp_connect_timeout'),
        (14, 'vrrp_strict'),
        (20, 'state'),
        (25, 'authentication'),
        (36, 'virtual_server'),
        (61, 'virtual_server'),
        (109, 'virtual_server'),
    ]),
    "upstream-default/keepalived.conf.sample.in": (1, 0, 0, 22, [
        (4, 'notification_email'),
        (9, 'notification_email_from'),
        (10, 'smtp_server'),
        (11, 'smtp_connect_timeout'),
        (14, 'vrrp_strict'),
        (20, 'state'),
        (25, 'authentication'),
        (36, 'accept'),
        (39, 'virtual_server'),
        (64, 'virtual_server'),
        (112, 'virtual_server'),
    ]),
}


def sample_files() -> list[str]:
    assert SAMPLES.is_dir(), f"keepalived samples not found at {SAMPLES} (set VIPD_KA_SAMPLES)"
    return sorted(str(p.relative_to(SAMPLES)) for p in SAMPLES.rglob("*")
                  if p.is_file() and p.name != "README.md")


def test_every_sample_has_an_expected_report():
    assert sample_files() == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_converts_with_the_expected_report(name, tmp_path):
    text, result, errors = convert(str(SAMPLES / name), "high")
    assert errors == []
    doc = result.doc
    instances, checks, groups, entries, dropped = EXPECTED[name]
    assert (len(doc["instance"]), len(doc["checks"]), len(doc["sync_group"])) == \
        (instances, checks, groups)
    assert sorted((e.line, e.keyword) for e in result.entries if not e.mapped) == dropped
    assert len(result.entries) == entries
    assert all(e.detail for e in result.entries)     # every entry says what or why
    # every keyword is accounted for: each top-level block, and each line directly inside the
    # blocks that are mapped, has a report entry on its line
    nodes, _ = parse(str(SAMPLES / name), "high")
    reported = {(e.file, e.line) for e in result.entries}
    want = {(n.file, n.line) for n in nodes}
    for n in nodes:
        if n.keyword in ("global_defs", "vrrp_script", "vrrp_instance", "vrrp_sync_group"):
            want |= {(c.file, c.line) for c in n.child_lines()}
    assert want - reported == set()
    # and the output is a valid vipd config (programs and interfaces are this host's business)
    out = tmp_path / "vipd.toml"
    out.write_text(text)
    cfg = config.load(str(out))
    assert len(cfg.instances) == instances


def write(tmp_path, rel, text):
    p = tmp_path / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def tree(nodes, depth=0):
    out = []
    for n in nodes:
        out.append(("  " * depth) + " ".join([n.keyword, *n.args])
                   + (" {" if n.children is not None else ""))
        out += tree(n.child_lines(), depth + 1)
    return out


def test_grammar(tmp_path):
    write(tmp_path, "conf.d/b.conf", "vrrp_script b { script /bin/true }\n")
    write(tmp_path, "conf.d/a.conf", "vrrp_script a\n{\n  script \"/bin/echo x # y\"\n}\n")
    main = write(tmp_path, "etc/keepalived.conf", """
! a comment
# another
$NET=198.51.100
$PRI=100
@lb1 $PRI=150
@^lb1 interface_of_others x
$BODY= \\
  interface eth0 \\
  virtual_router_id ${VRID}
include ../conf.d/*.conf
vrrp_instance VI_1   # braces on the next line
{
  $VRID=7
  $BODY
  priority $PRI
  virtual_ipaddress {
    ~SEQ(N, 10, 5, 20) ${NET}.${N}/24
    ~SEQx(H, 9, 11) 2001:db8::${H}
  }
  notify_master "/bin/echo MASTER ! not a comment"
  authentication {
    auth_pass "two words"
  }
}
""")
    nodes, reader = parse(str(main), "lb1")
    assert reader.errors == []
    assert tree(nodes) == [
        "vrrp_script a {", "  script /bin/echo x # y",
        "vrrp_script b {", "  script /bin/true",
        "vrrp_instance VI_1 {",
        "  interface eth0", "  virtual_router_id 7", "  priority 150",
        "  virtual_ipaddress {",
        "    198.51.100.10/24", "    198.51.100.15/24", "    198.51.100.20/24",
        "    2001:db8::9", "    2001:db8::a", "    2001:db8::b",
        "  notify_master /bin/echo MASTER ! not a comment",
        "  authentication {", "    auth_pass two words",
    ]
    assert nodes[0].file == str(tmp_path / "conf.d" / "a.conf") and nodes[0].line == 1
    assert nodes[2].line == 12 and nodes[2].child_lines()[2].line == 16
    other, _ = parse(str(main), "lb2")       # @^lb1 lines are for the other hosts
    assert [n.keyword for n in other][:3] == ["interface_of_others", "vrrp_script",
                                              "vrrp_script"]
    assert "  priority 100" in tree(other)


def test_grammar_errors_name_file_and_line(tmp_path):
    main = write(tmp_path, "k.conf", "include nothere*.conf\nvrrp_instance X {\n  priority 1\n"
                                     "}\n}\n{\nglobal_defs {\n")
    _, reader = parse(str(main), "x")
    assert [(e.line, e.reason.split(":")[0]) for e in reader.errors] == [
        (1, "include nothere*.conf"), (5, "'}' without a '{'"), (6, "'{' without a keyword"),
        (7, "global_defs { is never closed")]


def convert_text(tmp_path, text, cid="x"):
    return convert(str(write(tmp_path, "k.conf", text)), cid)


INSTANCE = """vrrp_instance web {
  state %s
  interface eth0
  virtual_router_id 51
  %s
  virtual_ipaddress {
    198.51.100.100/24
  }
}
"""


def test_keepalived_defaults_that_differ_from_vipds(tmp_path):
    _, r, _ = convert_text(tmp_path, INSTANCE % ("BACKUP", "nopreempt"))
    inst = r.doc["instance"][0]
    assert (inst["version"], inst["priority"], inst["advert_interval"], inst["failback"],
            inst["garp_delay"]) == (2, 100, 1.0, "none", 5.0)
    _, r, _ = convert_text(tmp_path, INSTANCE % ("MASTER", "nopreempt"))
    assert "failback" not in r.doc["instance"][0]
    assert [e.detail for e in r.entries if e.keyword == "nopreempt"] == [
        "keepalived ignores nopreempt unless state is BACKUP"]
    _, r, _ = convert_text(tmp_path, "global_defs {\n vrrp_version 3\n}\n"
                           + INSTANCE % ("BACKUP", "authentication {\n auth_type PASS\n"
                                                   " auth_pass 123456789\n}"))
    inst = r.doc["instance"][0]
    assert inst["version"] == 3 and "auth_pass" not in inst
    _, r, _ = convert_text(tmp_path, INSTANCE % ("BACKUP", "authentication {\n auth_type PASS"
                                                          "\n auth_pass 123456789\n}"))
    assert r.doc["instance"][0]["auth_pass"] == "12345678"     # keepalived uses 8 bytes
    _, r, _ = convert_text(tmp_path, INSTANCE.replace("198.51.100.100/24", "2001:db8::1")
                           % ("BACKUP", "advert_int 0.5"))
    assert (r.doc["instance"][0]["version"], r.doc["instance"][0]["advert_interval"]) == (3, 0.5)
    _, r, _ = convert_text(tmp_path, INSTANCE % ("BACKUP", "advert_int 1.6"))
    assert r.doc["instance"][0]["advert_interval"] == 2.0
    assert "advert_interval = 2: VRRPv2 carries whole seconds" in [
        e.detail for e in r.entries if e.keyword == "advert_int"]
    _, r, _ = convert_text(tmp_path, "vrrp_script s {\n script /bin/true\n interval 3\n}\n"
                           + INSTANCE % ("BACKUP", "track_script {\n s weight -10 reverse\n}"))
    assert r.doc["checks"]["s"] == {"command": ["/bin/true"], "interval": 3.0, "timeout": 3.0,
                                    "rise": 1, "fall": 1}
    assert r.doc["instance"][0]["track_checks"] == [{"name": "s", "weight": -10,
                                                     "reverse": True}]


def test_parity_keys(tmp_path):
    text, r, _ = convert_text(tmp_path, """
vrrp_track_file tf {
  file /run/w
  weight 3
}
vrrp_instance a {
  interface eth0
  virtual_router_id 1
  use_vmac vrrp.1
  virtual_ipaddress {
    198.51.100.1/24 dev eth1 label eth1:v
  }
  virtual_ipaddress_excluded {
    2001:db8::1/64
  }
  virtual_routes {
    src 198.51.100.1 to 203.0.113.0/24 via 198.51.100.254 dev eth0 table 100 metric 5
    blackhole 203.0.113.128/25
  }
  virtual_rules {
    from 203.0.113.10/32 table 100 priority 100
  }
  track_file {
    tf weight -2 reverse
  }
}
vrrp_instance b {
  interface eth0
  virtual_router_id 2
  virtual_ipaddress {
    198.51.100.2
  }
}
vrrp_sync_group g {
  group {
    a
    b
    c
  }
  notify /etc/keepalived/n.sh
  notify_backup "/bin/echo b"
}
""")
    a, b = r.doc["instance"]
    assert a["use_vmac"] is True and a["vmac_interface"] == "vrrp.1"
    assert a["vips"] == [{"address": "198.51.100.1/24", "dev": "eth1", "label": "eth1:v"}]
    assert a["excluded_vips"] == ["2001:db8::1/64"]
    assert a["virtual_routes"] == [
        {"to": "203.0.113.0/24", "via": "198.51.100.254", "dev": "eth0", "src": "198.51.100.1",
         "table": 100, "metric": 5}, {"to": "203.0.113.128/25", "type": "blackhole"}]
    assert a["virtual_rules"] == [{"from": "203.0.113.10/32", "table": 100, "priority": 100}]
    assert a["track_files"] == [{"path": "/run/w", "weight": -2, "reverse": True}]
    assert b["vips"] == ["198.51.100.2/32"]
    g = r.doc["sync_group"][0]
    assert g["instances"] == ["a", "b"]
    assert g["notify"]["master"] == ["/etc/vipd/hooks/keepalived-notify", "--group", "--",
                                     "/etc/keepalived/n.sh"]
    assert g["notify"]["backup"] == ["/etc/vipd/hooks/keepalived-notify", "--group", "--first",
                                     "2", "/bin/echo", "b", "--", "/etc/keepalived/n.sh"]
    assert [e.keyword for e in r.entries if not e.mapped] == ["group member c"]
    cfg = config.load(str(write(tmp_path, "out.toml", text)))
    assert cfg.sync_groups[0].instances == ("a", "b")


@pytest.mark.parametrize("script,argv", [
    ("/bin/true", ["/bin/true"]),
    ('"/usr/bin/curl" -sf http://127.0.0.1/', ["/usr/bin/curl", "-sf", "http://127.0.0.1/"]),
    ("/bin/test -e /run/x && exit 1", ["/bin/sh", "-c", "/bin/test -e /run/x && exit 1"]),
    ("pidof $NAME", ["/bin/sh", "-c", "pidof $NAME"]),
    ("</dev/tcp/127.0.0.1/80", ["/bin/bash", "-c", "</dev/tcp/127.0.0.1/80"]),
    ("no-such-program-anywhere x", ["/bin/sh", "-c", "no-such-program-anywhere x"]),
])
def test_scripts_get_a_shell_only_when_they_need_one(script, argv):
    assert kaitems.command(script)[0] == argv


def test_notify_wrapper_passes_keepalived_arguments(tmp_path):
    env = {"VIPD_INSTANCE": "web", "VIPD_STATE": "MASTER", "VIPD_PRIORITY": "150",
           "VIPD_GROUP": "edge", "PATH": "/usr/bin:/bin"}
    hook = str(REPO / "etc/hooks/keepalived-notify")
    out = subprocess.run([hook, "--", "/bin/echo", "mine"], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert out == "mine INSTANCE web MASTER 150\n"
    out = subprocess.run([hook, "--group", "--", "/bin/echo"], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert out == "GROUP edge MASTER 150\n"
    # notify_master and notify both set: the specific one first, without extra arguments
    text = INSTANCE % ("BACKUP", 'notify_master "/bin/echo specific one"\n'
                                 "notify /bin/echo generic")
    _, r, _ = convert_text(tmp_path, text)
    master = r.doc["instance"][0]["notify"]["master"]
    backup = r.doc["instance"][0]["notify"]["backup"]
    assert master[0] == backup[0] == "/etc/vipd/hooks/keepalived-notify"
    out = subprocess.run([hook, *master[1:]], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert out == "specific one\ngeneric INSTANCE web MASTER 150\n"
    out = subprocess.run([hook, *backup[1:]], env={**env, "VIPD_STATE": "BACKUP"},
                         capture_output=True, text=True, check=True).stdout
    assert out == "generic INSTANCE web BACKUP 150\n"


def test_cli_writes_config_and_report(tmp_path):
    src = write(tmp_path, "k.conf", INSTANCE % ("BACKUP", "smtp_alert"))
    out = tmp_path / "out.toml"
    vipd = [sys.executable, "-m", "vipd.cli"]
    r = subprocess.run([*vipd, "import-keepalived", str(src), "-o", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert f"{src}:5: smtp_alert: not carried over: vipd sends no email" in r.stderr
    assert r.stdout == "" and config.load(str(out)).instances[0].vrid == 51
    bad = write(tmp_path, "bad.conf", "vrrp_instance x {\n")
    r = subprocess.run([*vipd, "import-keepalived", str(bad)], capture_output=True, text=True)
    assert r.returncode == 2 and f"{bad}:1: vrrp_instance {{ is never closed" in r.stderr
