#!/usr/bin/env python3
"""Data-safety benchmark for the Redis pair (issue 8; docs/benchmarks.md, docs/data-safety.md).

The scenarios of tests/lab/test_data_safety.py (tests/lab/datasafety.py), with the shipped
etc/redis-pair configs at a realistic advert interval and the fault at a random phase of the
master's advert cycle, several trials each; per scenario: writes lost that WAIT 1 acknowledged,
writes lost that the final primary answered OK, writes the stale side answered OK and lost (and
how long after the fault the last one came: the write guard's bound), READONLY answers through
the VIP, and the longest write outage. The partition row also gives the client's outage after the
heal (the last OK write before the heal to the first after it).

    .venv/bin/python netns-lab/bench_datasafety.py [--trials 3] [--interval 1.0] [--scenarios ...]
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "tests", "lab")]
from lab import REPO, Lab  # noqa: E402
import datasafety as ds  # noqa: E402

SCENARIOS = {
    "vipd-killed": ("master vipd SIGKILLed, restarted 2 s later", ds.vipd_killed),
    "redis-killed": ("master Redis SIGKILLed, restarted with its data 0.5 s later",
                     lambda p: ds.redis_killed(p, wipe=False)),
    "redis-empty": ("master Redis SIGKILLed, restarted empty 0.5 s later",
                    lambda p: ds.redis_killed(p, wipe=True)),
    "redis-at-once": ("master Redis SIGKILLed, restarted with its data at once",
                      lambda p: ds.redis_killed(p, wipe=False, down=0.0)),
    "redis-at-once-no-hold": ("the same without the redis-hold drop-in (what it prevents)",
                              lambda p: ds.redis_killed(p, wipe=False, down=0.0, hold=False)),
    "host-redis-first": ("master host restarted: link down 3 s, Redis (empty) then vipd",
                         lambda p: ds.host_restarted(p, redis_first=True)),
    "host-vipd-first": ("master host restarted: link down 3 s, vipd then Redis (empty)",
                        lambda p: ds.host_restarted(p, redis_first=False)),
    "vipd-frozen": ("master vipd frozen (SIGSTOP) 3 s", ds.vipd_frozen),
    "partition": ("partition between the hosts (both reach the client) 3 s, healed",
                  ds.hosts_partitioned),
}


KEEPALIVED_CONF = """global_defs {{
    vrrp_version 3
    vrrp_garp_master_delay 0
    enable_script_security
    script_user root
}}
vrrp_script orphan {{
    script "{repo}/checks/redis-orphan --port 6379 --peer {peer}{prefer}"
    interval 1
    weight 0
}}
vrrp_script guard {{
    script "{repo}/checks/redis-guard --port 6379"
    interval 1
    weight 0
}}
vrrp_instance redis {{
    state BACKUP
    nopreempt
    interface eth0
    virtual_router_id 53
    priority {priority}
    advert_int {interval}
    virtual_ipaddress {{
        198.51.100.100/24
    }}
    track_script {{
        orphan
        guard
    }}
    notify "{repo}/etc/hooks/redis-role-keepalived --port 6379 --peer {peer}"
}}
"""


class KeepalivedPair(ds.Pair):
    """The same pair with keepalived in vipd's place: the redis-role hook through
    etc/hooks/redis-role-keepalived, the redis-orphan and redis-guard checks as vrrp_scripts,
    nopreempt for failback none. keepalived has no data-aware decision, and after a heal the VIP
    can stay dead until the client's ARP entry expires: wait that long."""

    back_within = 60.0

    def __init__(self, lab, interval: float):
        self.lab, self.interval = lab, interval
        self.redis = ds.ShippedRedis(lab)
        for h in ("h1", "h2"):
            self.redis.start(h)
        for h, prio, peer in (("h1", 150, ds.H2), ("h2", 100, ds.H1)):
            lab.start_keepalived(h, KEEPALIVED_CONF.format(
                repo=REPO, peer=peer, prefer=" --prefer" if h == "h1" else "", priority=prio,
                interval=int(interval)))
            if h == "h1":
                assert lab.wait_for(lambda: lab.holder(ds.VIP4) == ["h1"], timeout=15)
        assert lab.wait_for(lambda: ds.linked_replica_of(lab, "h2", ds.H1), timeout=15)
        self.writer = ds.Writer(lab)
        assert lab.wait_for(lambda: len(self.writer.acked()) >= 100, timeout=15), \
            self.writer.records()[-5:]

    def at_phase(self, phase: float) -> float:
        return time.monotonic()    # no advert counter to read: a random moment

    def outcome(self, master: str, t_fault: float) -> ds.Outcome:
        return self.classify(master, t_fault)


def keepalived_partition(pair) -> str:
    """hosts_partitioned for keepalived: whoever keeps the role is the final primary."""
    pair.lab.isolate("h1", "h2")
    assert pair.lab.wait_for(lambda: sorted(pair.lab.holder(ds.VIP4)) == ["h1", "h2"], timeout=10)
    time.sleep(3)    # the fault's length
    pair.lab.unisolate("h1", "h2")
    assert pair.lab.wait_for(lambda: len(pair.lab.holder(ds.VIP4)) == 1, timeout=10)
    return pair.lab.holder(ds.VIP4)[0]


def guard_bound(interval: float) -> float:
    """Seconds from cutting h1 off from h2 (both still reach the client) to the last write that
    h1's Redis answered OK, for a writer aimed straight at h1 (not the VIP): the write guard."""
    with Lab(hosts=2) as lab:
        pair = ds.Pair(lab, interval)
        pair.writer.proc.stop()
        direct = ds.Writer(lab, target=ds.H1)
        assert lab.wait_for(lambda: len(direct.acked()) >= 50, timeout=10)
        t = pair.at_phase(random.random())
        lab.isolate("h1", "h2")
        assert lab.wait_for(lambda: direct.errors().get("NOREPLICAS", 0) >= 5, timeout=15), \
            direct.records()[-3:]
        last_ok = max(r.t for r in direct.records() if r.res == "ok")
        return last_ok - t


def trial(fault, interval: float, pair_class=ds.Pair) -> dict:
    with Lab(hosts=2) as lab:
        pair = pair_class(lab, interval)
        t = pair.at_phase(random.random())
        master = fault(pair)
        t_heal = time.monotonic()    # for the faults that end with a heal: just after it
        o = pair.outcome(master, t)
        after_heal = pair.writer.outage(t_heal, within=90.0)
        return {"o": o, "after_heal": after_heal}


def fmt(xs: list[float]) -> str:
    return f"{statistics.median(xs):.2f} / {max(xs):.2f}" if xs else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--interval", type=float, default=1.0, help="advert interval (s)")
    ap.add_argument("--scenarios", nargs="+", choices=list(SCENARIOS) + ["keepalived-partition"],
                    default=list(SCENARIOS) + ["keepalived-partition"])
    ap.add_argument("--guard-trials", type=int, default=3)
    args = ap.parse_args()
    bounds = [guard_bound(args.interval) for _ in range(args.guard_trials)]
    if bounds:
        print(f"write guard: h1's last OK {', '.join(f'{b:.2f}' for b in bounds)} s after it was"
              f" cut off from h2 (min-replicas-max-lag 2)", flush=True)
    rows = []
    for key in args.scenarios:
        what, fault = SCENARIOS.get(key) or (
            "keepalived instead of vipd: partition between the hosts 3 s, healed",
            keepalived_partition)
        results, failures = [], []
        for i in range(args.trials):
            try:
                results.append(trial(fault, args.interval, KeepalivedPair
                                     if key.startswith("keepalived") else ds.Pair))
                print(f"{key} trial {i + 1}: {results[-1]['o'].line()}", flush=True)
            except AssertionError as e:
                failures.append(str(e).splitlines()[0][:160])
                print(f"{key} trial {i + 1}: FAILED {failures[-1]}", flush=True)
        os_ = [r["o"] for r in results]
        rows.append((what, len(results), len(failures),
                     sum(len(o.lost_acked) for o in os_), sum(len(o.lost_final) for o in os_),
                     sum(len(o.stale_lost_at) for o in os_),
                     max((max(o.stale_lost_at) for o in os_ if o.stale_lost_at), default=None),
                     sum(len(o.readonly_at) for o in os_), fmt([o.outage for o in os_]),
                     fmt([r["after_heal"] for r in results]) if key.endswith("partition") else "",
                     failures))
    print(f"\nadvert_interval {args.interval} s, {args.trials} trials per scenario, random phase\n")
    print("| fault on the master host | trials ok | lost, acked by WAIT 1 | lost, OK from the final"
          " primary | stale OK lost (last after fault) | READONLY | longest write outage s"
          " (median / max) |")
    print("|---|---|---|---|---|---|---|")
    for what, n, nf, la, lf, st, st_last, ro, out, heal, fails in rows:
        last = f" ({st_last:.2f} s)" if st_last is not None else ""
        extra = f"; after the heal {heal}" if heal else ""
        bad = f" ({nf} failed: {fails[0]})" if nf else ""
        print(f"| {what} | {n}{bad} | {la} | {lf} | {st}{last} | {ro} | {out}{extra} |")


if __name__ == "__main__":
    main()
