#!/usr/bin/env python3
"""Redis write outage when the primary's host fails (issue 10; docs/benchmarks.md), three ways,
with the same failure-detection time:

  pair          etc/redis-pair: two hosts, vipd elects and its redis-role hook promotes;
                detection = the backup's Master_Down_Interval (3 x advert_interval + Skew_Time)
  sentinel-vip  etc/redis-sentinel: three hosts, Sentinel elects, vipd moves the VIP
                (sentinels check); down-after-milliseconds = that same Master_Down_Interval
  sentinel      the same three hosts without vipd: a Sentinel-aware client (redis-py's
                redis.sentinel) finds the primary by asking the sentinels

The fault: h1 (the primary's host) is cut silently (its switch port drops everything, like a dead
host). A client in the lab's client namespace writes SET w:N N every 5 ms, each command with a
0.5 s timeout and no retry, through the VIP or through Sentinel; the outage is the time from the
last OK before the cut to the first OK after it (the longest gap between OK writes
from then on).

    .venv/bin/python netns-lab/bench_redis.py [--trials 3] [--interval 1.0] [--modes ...]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lab import REPO, Lab  # noqa: E402

VIP = "198.51.100.100"
ADDR = {"h1": "198.51.100.1", "h2": "198.51.100.2", "h3": "198.51.100.3"}
PAIR_BACKUP_PRIORITY = 100          # lb2.toml
MODES = ("pair", "sentinel-vip", "sentinel")

WRITER = r"""
import sys, time
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
how, target = sys.argv[1], sys.argv[2]
opts = dict(socket_timeout=0.5, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
if how == "sentinel":
    from redis.sentinel import Sentinel
    r = Sentinel([(h, 26379) for h in target.split(",")], sentinel_kwargs=opts, **opts
                 ).master_for("mymaster", **opts)
else:
    r = redis.Redis(target, 6379, **opts)
n = 0
while True:
    n += 1
    try:
        r.set(f"w:{n}", n)
        res = "ok"
    except Exception as e:
        res = type(e).__name__
    print(f"{time.monotonic():.4f} {n} {res}", flush=True)
    time.sleep(0.005)
"""


def master_down_interval(interval: float, priority: int) -> float:
    return 3 * interval + (256 - priority) * interval / 256     # RFC 5798 6.1


def example(lab, host, relpath: str, **values) -> str:
    """An etc/ example made runnable in the lab (programs from the checkout, socket in workdir)."""
    text = (REPO / "etc" / relpath).read_text()
    text = text.replace("/usr/lib/vipd/checks/", f"{REPO}/checks/").replace(
        "/etc/vipd/hooks/", f"{REPO}/etc/hooks/")
    values = {"socket": str(lab.workdir / host / "vipd.sock"), **values}
    for key, value in values.items():
        text, n = re.subn(rf"^{key}[ \t]*=[^#\n]*", f"{key} = {json.dumps(value)} ", text,
                          flags=re.M)
        assert n, (relpath, key)
    return text


def redis_conf_args() -> list[str]:
    args = []
    for line in (REPO / "etc" / "redis-sentinel" / "redis.conf").read_text().splitlines():
        if line.strip() and not line.startswith("#") and line.split()[0] not in ("bind", "protected-mode"):
            key, *vals = line.split()
            args += [f"--{key}", *vals]
    return args


def start_sentinels(lab, down_after_ms: int) -> None:
    for h in ADDR:
        d = lab.workdir / h / "sentinel"
        d.mkdir(parents=True, exist_ok=True)
        text = re.sub(r"down-after-milliseconds mymaster \d+",
                      f"down-after-milliseconds mymaster {down_after_ms}",
                      (REPO / "etc" / "redis-sentinel" / "sentinel.conf").read_text())
        conf = lab.write(f"{h}/sentinel/sentinel.conf", text + f'dir {d}\nlogfile ""\n')
        lab.spawn(h, ["redis-sentinel", conf], name="sentinel")

    def known() -> bool:
        for h in ADDR:
            out = lab.run(h, ["redis-cli", "-p", "26379", "SENTINEL", "MASTER", "mymaster"],
                          check=False).stdout.split()
            if dict(zip(out[::2], out[1::2])).get("num-other-sentinels") != "2":
                return False
        return True
    if not lab.wait_for(known, timeout=30, interval=0.2):
        raise RuntimeError("the sentinels did not find each other")


def setup(lab, mode: str, interval: float) -> str:
    """Start the mode's servers and daemons; returns the writer's "how target" arguments."""
    mdi = master_down_interval(interval, PAIR_BACKUP_PRIORITY)
    if mode == "pair":
        for h in ("h1", "h2"):
            lab.start_redis(h, extra=["--repl-diskless-sync-delay", "0"])
        lab.start_vipd("h1", example(lab, "h1", "redis-pair/lb1.toml", advert_interval=interval))
        if not lab.wait_for(lambda: lab.holder(VIP) == ["h1"], timeout=20):
            raise RuntimeError("pair: h1 does not hold the VIP")
        lab.start_vipd("h2", example(lab, "h2", "redis-pair/lb2.toml", advert_interval=interval))
        return "vip", VIP
    for h in ADDR:
        lab.start_redis(h, extra=redis_conf_args() + ([] if h == "h1" else
                                                      ["--replicaof", ADDR["h1"], "6379"]))
    start_sentinels(lab, round(mdi * 1000))
    if mode == "sentinel":
        return "sentinel", ",".join(ADDR.values())
    for h in ADDR:
        lab.start_vipd(h, example(lab, h, "redis-sentinel/vipd.toml"))
    if not lab.wait_for(lambda: lab.holder(VIP) == ["h1"], timeout=20):
        raise RuntimeError("sentinel-vip: h1 does not hold the VIP")
    return "vip", VIP


def replicas_linked(lab, hosts) -> bool:
    for h in hosts:
        info = lab.run(h, ["redis-cli", "INFO", "replication"], check=False).stdout
        if "master_link_status:up" not in info:
            return False
    return True


def trial(mode: str, interval: float) -> dict:
    with Lab(hosts=2 if mode == "pair" else 3) as lab:
        how, target = setup(lab, mode, interval)
        followers = ["h2"] if mode == "pair" else ["h2", "h3"]
        if not lab.wait_for(lambda: replicas_linked(lab, followers), timeout=20, interval=0.2):
            raise RuntimeError(f"{mode}: replicas not linked")
        writer = lab.spawn(lab.client, [sys.executable, "-c", WRITER, how, target], name="writer")
        time.sleep(3)
        cut = time.monotonic()
        lab.cut("h1", silent=True)

        def recs():
            return [(float(t), res) for t, _, res in
                    (line.split() for line in writer.output().splitlines() if line.count(" ") == 2)]
        if not lab.wait_for(lambda: sum(1 for t, r in recs() if t > cut and r == "ok") > 50,
                            timeout=60, interval=0.1):
            raise RuntimeError(f"{mode}: writes did not resume within 60 s")
        writer.stop()
        # the longest time without an OK, from the last one before the cut on (a write answered
        # just after the cut was served before it)
        ok = [t for t, r in recs() if r == "ok"]
        marks = [t for t in ok if t <= cut][-1:] + [t for t in ok if t > cut]
        return {"outage_s": max(b - a for a, b in zip(marks, marks[1:])),
                "failed_writes": sum(1 for t, r in recs() if t > cut and r != "ok")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--interval", type=float, default=1.0,
                    help="pair advert_interval; sets the detection time of all modes")
    ap.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    ap.add_argument("--json")
    args = ap.parse_args()
    mdi = master_down_interval(args.interval, PAIR_BACKUP_PRIORITY)
    results = {m: [trial(m, args.interval) for _ in range(args.trials)] for m in args.modes}
    print(f"\nRedis write outage after the primary's host is cut silently; detection "
          f"{mdi:.3f} s in every mode ({args.trials} trials; load avg {os.getloadavg()[0]:.1f})")
    print(f"{'mode':<14} {'median s':>9} {'min s':>7} {'max s':>7}  outage minus detection (median)")
    for m, rs in results.items():
        out = [r["outage_s"] for r in rs]
        print(f"{m:<14} {statistics.median(out):>9.2f} {min(out):>7.2f} {max(out):>7.2f}  "
              f"{statistics.median(out) - mdi:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"detection_s": mdi, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
