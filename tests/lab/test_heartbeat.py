"""Redundant heartbeat paths (issue 14) on real kernels.

h1 (priority 150) and h2 (100) share the VIP's segment (eth0, br0, with the client) and a second
segment (eth1 on br1, 203.0.113.0/24, Lab.add_segment; the client is on it too but nothing of the
VIP's is): `heartbeat` sends h1's adverts over both.
A split brain then needs both paths to fail; one broken path is shown as degraded.
"""
import random
import re
import subprocess
import sys
import time

import pytest

import redispair as rp
from conftest import VIP4, HttpProber, example_config, instance_status, never_two_holders, \
    vipd_cli, vipd_config, wait_holder, wait_state

pytestmark = pytest.mark.lab

INTERVAL = 0.2
PRIO = {"h1": 150, "h2": 100}
H1_MAIN = "198.51.100.1"


def skew(priority: int) -> float:
    return (256 - priority) * INTERVAL / 256


def mdi(priority: int) -> float:
    return 3 * INTERVAL + skew(priority)


def segments(lab_factory):
    lab = lab_factory(hosts=2)
    lab.add_segment()
    return lab


def heartbeat_ip(host) -> str:
    return f"203.0.113.{host.id}"


def heartbeat_config(lab, host, **kw) -> str:
    peers = [heartbeat_ip(h) for h in lab.hosts if h.name != host]
    hb = (f'heartbeat = [{{ interface = "eth1", peers = ["{peers[0]}"],'
          f' source = "{heartbeat_ip(lab.host(host))}" }}]')
    return vipd_config(priority=PRIO[host], interval=INTERVAL, instances_extra=hb, **kw)


def start(lab_factory, nginx=True):
    lab = segments(lab_factory)
    if nginx:
        for h in lab.hosts:
            lab.start_nginx(h)
    p1 = lab.start_vipd("h1", heartbeat_config(lab, "h1"))
    assert wait_state(lab, p1, "MASTER")
    p2 = lab.start_vipd("h2", heartbeat_config(lab, "h2"))
    assert wait_state(lab, p2, "BACKUP")
    assert wait_holder(lab, VIP4, ["h1"])
    # both paths deliver h1's adverts; the path peer is known as h1's VIP-segment address
    assert lab.wait_for(lambda: all(p["state"] == "ok" for p in instance_status(lab, p2)["paths"]),
                        timeout=5), instance_status(lab, p2)
    return lab, p1, p2


def path(st: dict, ifname: str) -> dict:
    return next(p for p in st["paths"] if p["interface"] == ifname)


def degraded_lines(proc, ifname: str) -> list[str]:
    return [line for line in proc.output().splitlines()
            if re.search(rf"heartbeat path {ifname} degraded", line)]


def recreate_eth1(lab, host) -> None:
    ip = ["ip", "-n", lab.bridge_ns]
    for argv in (["ip", "-n", host.ns, "link", "del", "eth1"],     # takes the bridge side too
                 # the MAC it had (Lab.add_segment's): the peer's ARP entry stays right
                 ip + ["link", "add", f"{host.name}b", "type", "veth", "peer", "name", "eth1",
                       "address", f"02:76:6c:01:00:{host.id:02x}", "netns", host.ns],
                 ip + ["link", "set", f"{host.name}b", "master", "br1", "up"],
                 ["ip", "-n", host.ns, "addr", "add", f"{heartbeat_ip(host)}/24", "dev", "eth1"],
                 ["ip", "-n", host.ns, "link", "set", "eth1", "up"]):
        subprocess.run(argv, check=True, capture_output=True, timeout=10)


def since(proc_status: dict, state: str) -> float:
    assert proc_status["state"] == state, proc_status
    return proc_status["since"]


def test_vrrp_dropped_on_vip_segment_one_master_stays(lab_factory):
    """VRRP dropped between h1 and h2 on the VIP's segment only (both reach the client): no second
    master, the VIP stays, the client keeps reaching it, h2 shows eth0 degraded and logs it once.
    Then the heartbeat link is cut too: the split brain this guards against happens (which shows
    the checks above can fail)."""
    lab, p1, p2 = start(lab_factory)
    prober = HttpProber(lab, period=0.02)
    t0 = time.monotonic()
    lab.partition("h1", "h2")
    two = never_two_holders(lab, VIP4, 5 * mdi(100))
    st1, st2 = instance_status(lab, p1), instance_status(lab, p2)
    assert two == [], two
    assert st1["state"] == "MASTER" and st2["state"] == "BACKUP", (st1, st2)
    assert st2["counters"]["transitions"] == 1          # INIT -> BACKUP only
    assert st2["master_ip"] == H1_MAIN                  # still named by its VIP-segment address
    # the client keeps reaching the VIP, always at h1 (a lone request may time out when the
    # shared machine is loaded: the bound is on the longest gap, not on single requests)
    answered = {s[2] for s in prober.samples() if s[0] >= t0 and s[2] in ("h1", "h2")}
    assert answered == {"h1"}, answered
    assert prober.outage(t0, time.monotonic()) < 2.0, prober.failures(since=t0)
    assert path(st2, "eth0")["state"] == "degraded" and path(st2, "eth1")["state"] == "ok", st2
    assert st2["paths_down"] == ["eth0"]
    assert len(degraded_lines(p2, "eth0")) == 1, p2.output()[-2000:]
    table = vipd_cli(lab, p2, "status").stdout
    assert re.search(r"^paths of web: eth0 degraded \(last advert [\d.]+s ago\), eth1 ok .*"
                     r"; DOWN: eth0$", table, re.M), table

    lab.set_port("h2b", False)
    assert wait_state(lab, p2, "MASTER", timeout=5)
    assert len(never_two_holders(lab, VIP4, 0.5)) > 0     # both hold the VIP: a split brain
    lab.set_port("h2b", True)
    assert wait_state(lab, p2, "BACKUP", timeout=5)     # heard h1 again over eth1: it yields
    assert wait_holder(lab, VIP4, ["h1"], timeout=5)
    assert lab.wait_for(lambda: path(instance_status(lab, p2), "eth1")["state"] == "ok")
    assert "heartbeat path eth1 delivers adverts again" not in p2.output()  # never degraded:
    # it went silent with every other path, so nothing delivered while it was silent


def test_master_client_link_cut_backup_takes_over_at_skew_time(lab_factory):
    """Carrier lost on h1's client-side link: h1 goes FAULT and its priority-0 advert reaches h2
    over the heartbeat path, so h2 takes over at Skew_Time, not at Master_Down_Interval."""
    lab, p1, p2 = start(lab_factory, nginx=False)
    lab.cut("h1")
    assert wait_state(lab, p1, "FAULT", timeout=5)
    assert wait_state(lab, p2, "MASTER", timeout=5)
    st2 = instance_status(lab, p2)
    took = since(st2, "MASTER") - since(instance_status(lab, p1), "FAULT")
    print(f"\nclient link cut: h2 master {took * 1000:.1f} ms after h1 FAULT;"
          f" Skew_Time {skew(100) * 1000:.1f} ms, Master_Down_Interval {mdi(100) * 1000:.1f} ms")
    # The counter shows h2 heard h1's priority-0 advert (over eth1, the only path left). The time
    # is bounded generously (Skew_Time is 122 ms; a loaded machine may delay h2 by a few hundred
    # ms) by Master_Down_Interval: a priority-0 advert taken as an ordinary one (the down timer
    # restarted, not set to Skew_Time) has h2 master only a full Master_Down_Interval after it.
    assert st2["counters"]["priority0_received"] >= 1, st2["counters"]
    assert took < mdi(100), took
    assert wait_holder(lab, VIP4, ["h2"])


def test_heartbeat_cut_alone_nothing_moves_then_both_down_timer(lab_factory):
    """The heartbeat link alone cut: nothing moves, h2 shows eth1 degraded and without carrier.
    h2's eth1 re-created: the path delivers again. Then h1's heartbeat and client-side links cut:
    no path carries its priority-0 advert, so h2 takes over when its down timer expires
    (Master_Down_Interval after h1's last advert)."""
    lab, p1, p2 = start(lab_factory, nginx=False)
    lab.set_port("h2b", False)
    assert lab.wait_for(lambda: instance_status(lab, p2)["paths_down"] == ["eth1"], timeout=5)
    two = never_two_holders(lab, VIP4, 4 * mdi(100))
    st1, st2 = instance_status(lab, p1), instance_status(lab, p2)
    assert two == [] and lab.holder(VIP4) == ["h1"]
    assert st1["state"] == "MASTER" and st2["state"] == "BACKUP", (st1, st2)
    assert st2["counters"]["transitions"] == 1
    assert path(st2, "eth1")["state"] == "degraded" and path(st2, "eth1")["link"] is False, st2
    assert path(st2, "eth0")["state"] == "ok"
    assert len(degraded_lines(p2, "eth1")) == 1, p2.output()[-2000:]

    # h2's eth1 deleted and made anew (a new ifindex): vipd reopens its socket when the new link
    # comes up, and the path delivers again without a restart
    recreate_eth1(lab, lab.host("h2"))
    assert lab.wait_for(lambda: instance_status(lab, p2)["paths_down"] == [], timeout=5), \
        instance_status(lab, p2)["paths"]
    assert "heartbeat path eth1 re-created: socket reopened" in p2.output()

    lab.set_port("h1b", False)
    t_cut = time.time()     # status times are wall clock
    lab.cut("h1")
    assert wait_state(lab, p2, "MASTER", timeout=5)
    took = since(instance_status(lab, p2), "MASTER") - t_cut
    print(f"\nboth paths cut: h2 master {took * 1000:.1f} ms after the cut;"
          f" Master_Down_Interval {mdi(100) * 1000:.1f} ms (h1's last advert up to"
          f" {INTERVAL * 1000:.0f} ms before the cut)")
    # h2's down timer runs from h1's last advert, an interval before the cut if h1 was on time
    # (0.522 s); 0.3 s leaves room for h1 being late by over 0.2 s on a loaded machine and is
    # still far beyond Skew_Time's 0.122 s (a priority-0 advert taken from a path that is cut).
    # The counter shows no priority-0 advert arrived: the down timer is what moved the role.
    assert 0.3 < took < mdi(100) + 1.0, took
    assert instance_status(lab, p2)["counters"].get("priority0_received", 0) == 0


def with_heartbeat(lab, host, relpath, **values):
    """An etc/redis-pair example (as conftest.example_config makes it) plus a heartbeat path."""
    text = example_config(lab, host, relpath, **values)
    peer = next(h for h in lab.hosts if h is not host)
    line = (f'heartbeat = [{{ interface = "eth1", peers = ["{heartbeat_ip(peer)}"],'
            f' source = "{heartbeat_ip(host)}" }}]')
    text, n = re.subn(r"^track_checks = .*$", lambda m: m[0] + "\n" + line, text, count=1,
                      flags=re.M)
    assert n == 1
    return text


def test_redis_pair_partition_with_heartbeat_promotes_nothing(lab_factory, monkeypatch):
    """The data-safety suite's Redis pair (shipped Redis and vipd configs, a client writing
    through the VIP; tests/lab/test_data_safety.py) with a heartbeat path, VRRP dropped between
    the hosts on the VIP's segment at a random phase of h1's adverts: h2 never becomes master,
    its Redis is never promoted (a watcher polls its role every 20 ms), no write answered OK is
    lost, not even unacknowledged ones. Then the heartbeat link is cut too and h2's Redis is
    promoted: the watcher does see a promotion."""
    from datasafety import Pair

    lab = segments(lab_factory)
    monkeypatch.setattr(rp, "example_config", with_heartbeat)
    pair = Pair(lab, INTERVAL)
    p2, writer = pair.p2, pair.writer
    watcher = lab.spawn("h2", [sys.executable, rp.WRITER, "watch", rp.PORT], name="redis-watch")
    assert lab.wait_for(lambda: "slave" in watcher.output(), timeout=5), watcher.output()

    # h2 started FAULT (the shipped configs' Redis hold, docs/data-safety.md), then BACKUP
    moves = instance_status(lab, p2, rp.NAME)["counters"]["transitions"]
    t0 = pair.at_phase(random.random())
    lab.partition("h1", "h2")
    two = never_two_holders(lab, VIP4, 5 * mdi(100))
    st2 = instance_status(lab, p2, rp.NAME)
    roles = [line.split()[1] for line in watcher.output().splitlines() if len(line.split()) > 1]
    assert two == [] and lab.holder(VIP4) == ["h1"]
    assert st2["state"] == "BACKUP" and st2["counters"]["transitions"] == moves, st2
    assert st2["paths_down"] == ["eth0"], st2["paths"]
    assert set(roles) == {"slave"}, watcher.output()
    assert len(writer.acked(since=t0)) >= 50       # h2's replica still acks over the VIP segment
    writer.proc.stop()
    assert lab.wait_for(lambda: rp.in_step(lab, "h2", "h1"), timeout=15)
    records = writer.records()
    ok = [r.n for r in records if r.res == "ok"]
    assert writer.missing(ok) == []             # not one write answered OK is lost
    assert not [r for r in records if "READONLY" in (r.res, r.acks)]
    print(f"\nRedis partition with a heartbeat path: {len(writer.acked())} acked, {len(ok)} OK,"
          f" none lost; h2's Redis role {sorted(set(roles))}; errors {writer.errors()}")

    lab.set_port("h2b", False)
    assert wait_state(lab, p2, "MASTER", rp.NAME, timeout=10)
    assert lab.wait_for(lambda: " master " in watcher.output(), timeout=10), watcher.output()
