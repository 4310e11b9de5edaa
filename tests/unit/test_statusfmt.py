"""`vipd status` for people: one row per instance, each value under its heading."""
import time

from vipd.statusfmt import table

HEAD = ("INSTANCE", "STATE", "PRIO/EFF", "MASTER", "VIPS", "FAILBACK", "CHECKS")


def instance(**kw) -> dict:
    base = {"name": "web", "vrid": 51, "interface": "eth0", "state": "MASTER", "priority": 150,
            "effective_priority": 150, "master_ip": "198.51.100.1", "local_addr": "198.51.100.1",
            "vips": ["198.51.100.100/24"], "vips_on": True, "failback": "auto",
            "failback_pending": False, "drained": False, "faults": [], "checks": {},
            "counters": {}, "since": 1.0, "transitions": []}
    return {**base, **kw}


def check(ok: bool) -> dict:
    return {"ok": ok, "output": "", "runs": 3, "failures": 0 if ok else 3, "timeouts": 0,
            "weight": 0}


def rows(st: dict) -> dict[str, dict[str, str]]:
    """The table read back as a person would: cells under the column headings, by row name."""
    lines = table(st).splitlines()
    assert lines[0] == f"router {st['router_id']}"
    head = lines[1]
    assert head.split() == list(HEAD)
    starts = [head.index(h) for h in HEAD] + [None]
    out = {}
    for line in lines[2:2 + len(st["instances"])]:
        cells = [line[a:b].strip() for a, b in zip(starts, starts[1:])]
        assert all(line[s - 2:s] == "  " for s in starts[1:-1]), f"misaligned: {line!r}"
        out[cells[0]] = dict(zip(HEAD, cells))
    return out


def test_master_with_checks_up():
    st = {"router_id": "lb1", "instances": [instance(checks={"nginx": check(True),
                                                              "disk": check(True)})]}
    assert rows(st)["web"] == {"INSTANCE": "web", "STATE": "MASTER", "PRIO/EFF": "150/150",
                               "MASTER": "198.51.100.1", "VIPS": "198.51.100.100/24",
                               "FAILBACK": "auto", "CHECKS": "2 up/0 down"}


def test_backup_drained_pending_and_fault_rows_say_why():
    st = {"router_id": "lb2", "instances": [
        instance(name="web", state="BACKUP", drained=True, master_ip="198.51.100.2"),
        instance(name="db", vrid=52, state="BACKUP", priority=100, effective_priority=80,
                 failback="semi-auto", failback_pending=True, master_ip="198.51.100.2",
                 vips=["198.51.100.101/24", "2001:db8::101/64"],
                 checks={"redis": check(True), "synced": check(False)}),
        instance(name="cache", vrid=53, state="FAULT", failback="none", master_ip=None,
                 faults=["check redis failing", "link eth1 down"]),
    ]}
    r = rows(st)
    assert r["web"]["STATE"] == "BACKUP (drained)"
    assert r["web"]["MASTER"] == "198.51.100.2"
    assert r["db"]["STATE"] == "BACKUP"
    assert r["db"]["PRIO/EFF"] == "100/80"
    assert r["db"]["FAILBACK"] == "semi-auto PENDING"
    assert r["db"]["VIPS"] == "198.51.100.101/24 2001:db8::101/64"
    assert r["db"]["CHECKS"] == "1 up/1 down"
    assert r["cache"]["STATE"] == "FAULT (check redis failing, link eth1 down)"
    assert r["cache"]["MASTER"] == "-"
    assert r["cache"]["FAILBACK"] == "none"
    assert r["cache"]["CHECKS"] == "-"
    assert "PENDING" not in r["web"]["FAILBACK"] + r["cache"]["FAILBACK"]


def test_drops_before_demux_are_shown_only_when_there_are_some():
    st = {"router_id": "lb1", "instances": [instance()], "rx_errors": {}}
    assert "dropped" not in table(st)
    st["rx_errors"] = {"bad_checksum": 2, "unknown_vrid": 5}
    assert table(st).splitlines()[-1] == "dropped before demux: bad_checksum=2, unknown_vrid=5"


def test_no_instances_still_prints_the_heading():
    lines = table({"router_id": "lb1", "instances": []}).splitlines()
    assert lines == ["router lb1", "  ".join(HEAD)]


def test_why_lines_show_yield_refusal_data_verdict_and_hook_output():
    t = 1_700_000_000.0
    st = {"router_id": "lb1", "instances": [
        instance(state="BACKUP", last_yield={"time": t, "reason": "yield: peer's Redis is the"
                                                                  " successor (promoted at 1235)"},
                 refused_promotion={"time": t, "reason": "local Redis is empty"},
                 data={"peer": "198.51.100.2", "verdict": "peer-newer", "reason": "promoted",
                       "time": t},
                 hook={"state": "BACKUP", "exit": 0, "output": "replica of 198.51.100.2",
                       "time": t, "duration": 0.02}),
        instance(name="api", hook={"state": "MASTER", "exit": None, "output": "", "time": t,
                                   "duration": 10.0})]}
    assert rows(st)["web"]["STATE"] == "BACKUP"          # the table itself is unchanged
    text = table(st)
    hhmmss = time.strftime("%H:%M:%S", time.localtime(t))
    assert f"web: yielded at {hhmmss}: yield: peer's Redis is the successor (promoted at 1235)" \
        in text.splitlines()
    assert f"web: promotion refused at {hhmmss}: local Redis is empty" in text
    assert f"web: data vs 198.51.100.2 at {hhmmss}: peer-newer (promoted)" in text
    assert f"web: hook BACKUP at {hhmmss}: exit 0: replica of 198.51.100.2" in text
    assert f"api: hook MASTER at {hhmmss}: timed out" in text.splitlines()
    assert "yielded" not in table({"router_id": "lb1", "instances": [instance()]})


def test_heartbeat_paths_get_a_line_naming_the_degraded_one():
    paths = [{"interface": "eth0", "state": "degraded", "received": 9, "last_heard_age": 4.2,
              "link": True},
             {"interface": "eth1", "state": "ok", "received": 30, "last_heard_age": 0.04,
              "link": True, "peers": ["203.0.113.1"], "source": "203.0.113.2"}]
    st = {"router_id": "lb2", "instances": [
        instance(state="BACKUP", paths=paths, paths_down=["eth0"]), instance(name="db", vrid=52)]}
    lines = table(st).splitlines()
    assert lines[-1] == ("paths of web: eth0 degraded (last advert 4.2s ago), eth1 ok"
                         " (last advert 0.0s ago); DOWN: eth0")
    assert set(rows(st)) == {"web", "db"}
    quiet = [{**paths[0], "state": "silent", "last_heard_age": None, "link": False}]
    st = {"router_id": "lb1", "instances": [instance(paths=quiet, paths_down=["eth0"])]}
    assert table(st).splitlines()[-1] == ("paths of web: eth0 silent (never heard, no carrier);"
                                          " DOWN: eth0")


def test_table_shows_sync_groups_vmac_routes_and_rules():
    from vipd.statusfmt import table
    inst = {"name": "outside", "state": "MASTER", "priority": 150, "effective_priority": 150,
            "master_ip": "198.51.100.1", "vips": ["198.51.100.100/24"], "failback": "auto",
            "interface": "eth0", "vips_on": True, "vmac": "vrrp.51",
            "held": [{"address": "198.51.100.100/24", "dev": "vrrp.51", "excluded": False},
                     {"address": "2001:db8::10/64", "dev": "vrrp.51", "excluded": True}],
            "routes": ["203.0.113.0/24 via 198.51.100.254 table 100"],
            "rules": ["from 203.0.113.10/32 table 100"]}
    text = table({"router_id": "lb1", "instances": [inst], "sync_groups": [
        {"name": "edge", "state": "FAULT", "instances": ["outside", "inside"], "yielding": True}]})
    assert ("held by outside: VMAC vrrp.51; 198.51.100.100/24 on vrrp.51; 2001:db8::10/64 on "
            "vrrp.51 (excluded); route 203.0.113.0/24 via 198.51.100.254 table 100; "
            "rule from 203.0.113.10/32 table 100") in text
    assert "sync group edge: FAULT (outside, inside), yielding: a member is in FAULT" in text
    plain = dict(inst, vmac=None, routes=[], rules=[],
                 held=[{"address": "198.51.100.100/24", "dev": "eth0", "excluded": False}])
    assert "held by" not in table({"router_id": "lb1", "instances": [plain]})
