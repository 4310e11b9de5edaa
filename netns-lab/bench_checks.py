#!/usr/bin/env python3
"""What a health check costs (issue 10; docs/benchmarks.md): CPU % per host over a window, for the
nginx pair of etc/nginx-pair (two hosts, nginx on both, VRRPv3 at 1 s, one check every 1 s):

  vipd-http         vipd with the built-in check  http = "http://127.0.0.1/"
  vipd-program      vipd running checks/nginx as a command check
  keepalived        keepalived 2.2 running the same checks/nginx as a vrrp_script

CPU is user + system time of the daemon's processes and of the children they reaped (a check
program's CPU is charged to the process that waited for it), read from /proc before and after the
window, divided by the window. The machine is shared: the load average is printed with the figures.

    .venv/bin/python netns-lab/bench_checks.py [--seconds 60] [--variants ...] [--json out.json]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time

import psutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lab import REPO, Lab, Proc  # noqa: E402

VIP = "198.51.100.100"
PROGRAM = [str(REPO / "checks" / "nginx"), "--url", "http://127.0.0.1/", "--timeout", "0.7"]
PRIORITY = {"h1": 150, "h2": 100}
VARIANTS = ("vipd-http", "vipd-program", "keepalived")


def vipd_conf(host: str, builtin: bool) -> str:
    check = 'http = "http://127.0.0.1/"' if builtin else f"command = {json.dumps(PROGRAM)}"
    return f"""[global]
router_id = "{host}"
[checks.nginx]
{check}
interval = 1.0
timeout = 1.0
rise = 2
fall = 2
[[instance]]
name = "web"
interface = "eth0"
vrid = 51
priority = {PRIORITY[host]}
advert_interval = 1.0
vips = ["{VIP}/24"]
track_checks = ["nginx"]
"""


def keepalived_conf(host: str) -> str:
    return f"""global_defs {{
    vrrp_version 3
    enable_script_security
    script_user root
}}
vrrp_script nginx {{
    script "{' '.join(PROGRAM)}"
    interval 1
    timeout 1
    rise 2
    fall 2
}}
vrrp_instance web {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority {PRIORITY[host]}
    advert_int 1
    virtual_ipaddress {{ {VIP}/24 }}
    track_script {{ nginx }}
}}
"""


def cpu_seconds(proc: Proc) -> float:
    """User + system seconds of proc, its live descendants, and the children they reaped."""
    total = 0.0
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(proc.pid)
        for p in (root, *root.children(recursive=True)):
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
    return total


def run(variant: str, seconds: float) -> dict:
    with Lab(hosts=2) as lab:
        procs = {}
        for h in PRIORITY:
            lab.start_nginx(h)
        for h in PRIORITY:
            if variant == "keepalived":
                procs[h] = lab.start_keepalived(h, keepalived_conf(h))
            else:
                procs[h] = lab.start_vipd(h, vipd_conf(h, variant == "vipd-http"))
        if not lab.wait_for(lambda: lab.holder(VIP) == ["h1"], timeout=30):
            raise RuntimeError(f"{variant}: the VIP is not on h1: {lab.holder(VIP)}")
        time.sleep(3)      # past start-up: the window sees the steady state only
        load0 = os.getloadavg()[0]
        cpu0 = {h: cpu_seconds(p) for h, p in procs.items()}
        t0 = time.monotonic()
        time.sleep(seconds)
        window = time.monotonic() - t0
        cpu = {h: 100 * (cpu_seconds(p) - cpu0[h]) / window for h, p in procs.items()}
        holder = lab.holder(VIP)
    return {"variant": variant, "window_s": round(window, 1), "cpu_percent": cpu,
            "vip_held_by": holder, "load_avg": [round(load0, 1), round(os.getloadavg()[0], 1)]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    results = [run(v, args.seconds) for v in args.variants]
    print(f"\nCPU % of one core per host, {args.seconds:g} s window, nginx pair, one check per "
          f"second ({os.cpu_count()} CPUs)")
    print(f"{'variant':<14} {'h1 (master)':>12} {'h2 (backup)':>12}  load avg (start, end)")
    for r in results:
        c = r["cpu_percent"]
        print(f"{r['variant']:<14} {c['h1']:>11.2f}% {c['h2']:>11.2f}%  {r['load_avg']}")
    by = {r["variant"]: r for r in results}
    if "vipd-http" in by and "keepalived" in by:
        for h in PRIORITY:
            ratio = by["vipd-http"]["cpu_percent"][h] / by["keepalived"]["cpu_percent"][h]
            print(f"{h}: vipd-http / keepalived = {ratio:.3f} (target <= 0.1); "
                  f"vipd-http {'<' if by['vipd-http']['cpu_percent'][h] < 1 else '>='} 1 %")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
