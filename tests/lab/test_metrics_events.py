"""Prometheus metrics and `vipd events` during a real failover and failback (issue 12).

h1 (priority 150) and h2 (100) form one router; h2 serves /metrics and a `vipd events` follower
runs against h2's control socket. h1 is cut (h2 takes over) and healed (h2 gives the role back).
"""
import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import VIP4, VIPD, instance_status, vipd_config, wait_holder, wait_state

pytestmark = pytest.mark.lab

METRICS = "127.0.0.1:9650"
KEEPALIVED_SERIES = [
    "keepalived_advertisements_received_total", "keepalived_advertisements_sent_total",
    "keepalived_become_master_total", "keepalived_release_master_total",
    "keepalived_ip_ttl_errors_total", "keepalived_packet_length_errors_total",
    "keepalived_invalid_type_received_total", "keepalived_advertisements_interval_errors_total",
    "keepalived_address_list_errors_total", "keepalived_authentication_mismatch_total",
    "keepalived_priority_zero_received_total", "keepalived_priority_zero_sent_total",
]


def scrape(lab, host) -> dict:
    """{(name, frozenset(labels.items())): value} from an HTTP GET of /metrics in host's netns."""
    text = lab.run(host, ["curl", "-sf", "--max-time", "3", f"http://{METRICS}/metrics"]).stdout
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def value(samples: dict, metric: str, **labels) -> float | None:
    return samples.get((metric, frozenset(labels.items())))


def hook_runs(lab, host, state: str) -> float | None:
    """vipd_hook_runs_total of instance web in state; None while /metrics cannot be read."""
    try:
        return value(scrape(lab, host), "vipd_hook_runs_total", iname="web", state=state)
    except Exception:
        return None


def events(proc) -> list[dict]:
    return [json.loads(line) for line in proc.output().splitlines() if line.startswith("{")]


def test_metrics_and_events_follow_a_failover(pair):
    lab = pair
    h1, h2 = lab.hosts
    lab.start_vipd(h1, vipd_config(priority=150))
    extra = ('[global]\nmetrics = "%s"\n[checks.alive]\ncommand = ["/bin/true"]\n'
             "interval = 0.2\n" % METRICS)
    notify = '[instance.notify]\nmaster = ["/bin/true"]\nbackup = ["/bin/false"]\n'
    vp = lab.start_vipd(h2, vipd_config(priority=100, extra=extra, instances_extra=notify,
                                        track_checks=["alive"]))
    assert wait_state(lab, vp, "BACKUP")
    ids = dict(iname="web", intf="eth0", vrid="51")
    # h2 runs its BACKUP hook twice at start (on entering BACKUP, then again when it learns h1
    # is master): both runs are over before the follower subscribes, so that the stream holds
    # only what the failover does
    assert lab.wait_for(lambda: hook_runs(lab, h2, "BACKUP") == 2, timeout=5), scrape(lab, h2)
    follower = lab.spawn(h2, [VIPD, "events", "--socket", vp.socket], name="events")
    # the stream is live once the first check result arrives (every 0.2 s)
    assert lab.wait_for(lambda: any(e["event"] == "check" for e in events(follower)), timeout=5), \
        follower.output()

    before = scrape(lab, h2)
    assert value(before, "keepalived_vrrp_state", ip_address=VIP4, **ids) == 1      # BACKUP
    assert value(before, "keepalived_become_master_total", **ids) == 0
    assert value(before, "keepalived_advertisements_received_total", **ids) > 0
    assert value(before, "keepalived_script_status", name="alive") == 1
    for name in KEEPALIVED_SERIES:
        assert value(before, name, **ids) is not None, name
    assert value(before, "vipd_effective_priority", **ids) == 100
    assert value(before, "vipd_check_runs_total", name="alive") >= 1
    assert value(before, "vipd_check_duration_seconds", name="alive") > 0

    lab.cut(h1)
    assert wait_state(lab, vp, "MASTER", timeout=8)
    during = scrape(lab, h2)
    assert value(during, "keepalived_vrrp_state", ip_address=VIP4, **ids) == 2      # MASTER
    assert value(during, "keepalived_become_master_total", **ids) == 1
    assert value(during, "keepalived_advertisements_sent_total", **ids) > 0
    assert value(during, "vipd_transitions_total", iname="web", from_state="BACKUP",
                 to_state="MASTER", reason="master down timer expired") == 1

    lab.heal(h1)
    assert wait_state(lab, vp, "BACKUP", timeout=8)
    assert wait_holder(lab, VIP4, ["h1"], timeout=5)
    assert lab.wait_for(lambda: [e["state"] for e in events(follower)
                                 if e["event"] == "hook"] == ["MASTER", "BACKUP"], timeout=5), \
        follower.output()
    after = scrape(lab, h2)
    assert value(after, "keepalived_vrrp_state", ip_address=VIP4, **ids) == 1
    assert value(after, "keepalived_release_master_total", **ids) == 1
    assert value(after, "vipd_hook_runs_total", iname="web", state="MASTER") == 1
    assert value(after, "vipd_hook_failures_total", iname="web", state="MASTER") == 0
    # two BACKUP runs at start (startup, then the master learned); one after the failback
    failed_backup = [value(m, "vipd_hook_failures_total", iname="web", state="BACKUP")
                     for m in (before, after)]
    assert failed_backup[1] - failed_backup[0] == 1, failed_backup

    follower.stop()
    evs = events(follower)
    moves = [(e["from"], e["to"]) for e in evs if e["event"] == "transition"]
    assert moves == [("BACKUP", "MASTER"), ("MASTER", "BACKUP")], evs
    hooks = [(e["state"], e["returncode"]) for e in evs if e["event"] == "hook"]
    assert hooks == [("MASTER", 0), ("BACKUP", 1)]
    # in order: the takeover, its hook, the failback, its hook
    order = [e["event"] + ":" + (e.get("to") or e.get("state")) for e in evs
             if e["event"] in ("transition", "hook")]
    assert order == ["transition:MASTER", "hook:MASTER", "transition:BACKUP", "hook:BACKUP"]
    assert all(e["ok"] for e in evs if e["event"] == "check")
    assert [e["time"] for e in evs] == sorted(e["time"] for e in evs)
    # anything but GET /metrics gets an HTTP error, not a crash
    codes = [lab.run(h2, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", *args,
                          f"http://{METRICS}{path}"]).stdout for args, path in
             [([], "/nothing"), (["-X", "POST"], "/metrics"), (["-I"], "/metrics")]]
    assert codes == ["404", "405", "200"]
    # the daemon noticed the follower leave and keeps running
    assert instance_status(lab, vp)["state"] == "BACKUP"
