#!/usr/bin/env python3
"""Takeover times with a heartbeat path (issue 14; docs/heartbeat.md, docs/benchmarks.md).

h1 (priority 150) and h2 (100) run vipd with the VIP on eth0 (br0, with the client) and a heartbeat
path on eth1 (br1, Lab.add_segment). Each trial waits a random fraction of an advert interval (the
fault's phase against h1's advert timer), then:

  client-cut  h1's eth0 loses carrier: h1 goes FAULT and its priority-0 advert reaches h2 over
              eth1 only; figure: h1's priority-0 advert on br1 -> h2's first advert on br0,
              against Skew_Time
  both-cut    h1's eth1, then its eth0 lose carrier: no priority-0 advert gets through; figure:
              h1's last advert on br0 -> h2's first advert on br0, against Master_Down_Interval

then heals h1 (it takes the role back: failback auto) for the next trial. Times come from captures
on the two bridges (the wire, not the daemons' logs).

    .venv/bin/python netns-lab/bench_heartbeat.py [--trials N] [--intervals 1.0 0.1]
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time

from bench import read_pcap
from benchtable import master_down_interval, skew_time
from lab import Lab

from vipd import control

PRIO = {"h1": 150, "h2": 100}
VIP = "198.51.100.100/24"


def config(lab: Lab, name: str, interval: float, sock: str) -> str:
    me = lab.host(name)
    peer = next(h for h in lab.hosts if h is not me)

    def hb(host) -> str:
        return f"203.0.113.{host.id}"
    return f"""[global]
socket = "{sock}"
[[instance]]
name = "web"
interface = "eth0"
vrid = 51
priority = {PRIO[name]}
advert_interval = {interval}
vips = ["{VIP}"]
heartbeat = [{{ interface = "eth1", peers = ["{hb(peer)}"], source = "{hb(me)}" }}]
"""


def state(proc) -> str:
    try:
        return control.request(proc.socket, {"cmd": "status"})["status"]["instances"][0]["state"]
    except (OSError, ValueError, KeyError):
        return "?"


def wait(lab: Lab, cond, what: str, timeout: float = 20.0) -> None:
    if not lab.wait_for(cond, timeout=timeout, interval=0.005):
        raise RuntimeError(f"timed out waiting for {what}\n{lab.logs()[-4000:]}")


def run(lab: Lab, interval: float, trials: int) -> dict:
    procs = {}
    for name in ("h1", "h2"):
        sock = str(lab.workdir / name / f"vipd-{interval}.sock")
        procs[name] = lab.start_vipd(name, config(lab, name, interval, sock))
        if name == "h1":
            wait(lab, lambda: state(procs["h1"]) == "MASTER", "h1 MASTER")
    wait(lab, lambda: state(procs["h2"]) == "BACKUP", "h2 BACKUP")
    main, path = lab.capture("br0", "ip proto 112"), lab.capture("br1", "ip proto 112")
    marks = []     # (scenario, wall time of the cut)
    for _ in range(trials):
        for scenario in ("client-cut", "both-cut"):
            time.sleep(2 * interval + random.uniform(0, interval))
            if scenario == "both-cut":
                lab.set_port("h1b", False)
                time.sleep(random.uniform(0, interval))
            marks.append((scenario, time.time()))
            lab.cut("h1")
            wait(lab, lambda: state(procs["h2"]) == "MASTER", f"h2 MASTER ({scenario})")
            lab.set_port("h1b", True)
            lab.heal("h1")
            wait(lab, lambda: state(procs["h1"]) == "MASTER" and state(procs["h2"]) == "BACKUP",
                 "h1 back as MASTER")
    time.sleep(0.2)
    on_main, on_path = read_pcap(main.stop()), read_pcap(path.stop())
    for p in procs.values():
        p.stop()
    out = {"client-cut": [], "both-cut": []}
    for k, (scenario, t_cut) in enumerate(marks):
        end = marks[k + 1][1] if k + 1 < len(marks) else float("inf")
        h2 = next(f.t for f in on_main if t_cut < f.t < end and f.src == "198.51.100.2"
                  and f.prio == PRIO["h2"])
        if scenario == "client-cut":
            start = next(f.t for f in on_path if t_cut < f.t < end and f.src == "203.0.113.1"
                         and f.prio == 0)
        else:
            start = [f.t for f in on_main if f.t < t_cut and f.src == "198.51.100.1"][-1]
        out[scenario].append(h2 - start)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--intervals", type=float, nargs="+", default=[1.0, 0.1])
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    results = {}
    print(f"{'interval':>8}  {'scenario':<10}  {'theory ms':>9}  {'median ms':>9}  "
          f"{'min ms':>7}  {'max ms':>7}  median-theory")
    for interval in a.intervals:
        with Lab(hosts=2) as lab:
            lab.add_segment()
            res = results[interval] = run(lab, interval, a.trials)
        for scenario, theory in (("client-cut", skew_time(PRIO["h2"], interval)),
                                 ("both-cut", master_down_interval(PRIO["h2"], interval))):
            xs = [x * 1000 for x in res[scenario]]
            med = statistics.median(xs)
            print(f"{interval:>8}  {scenario:<10}  {theory * 1000:>9.1f}  {med:>9.1f}  "
                  f"{min(xs):>7.1f}  {max(xs):>7.1f}  {med - theory * 1000:+.1f} ms", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({str(k): v for k, v in results.items()}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
