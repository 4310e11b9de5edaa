"""Start-up figures (issue 9), from a capture on the bridge: vipd started on h1 as the address
owner (priority 255, so it is MASTER at once: VIP added, GARP, then the advert), N times.

  start -> first GARP     exec of `vipd run` to its first gratuitous ARP for the VIP on the wire
  start -> first advert   exec to its first advert on the wire
  GARP -> advert          the VIP add and announce done before the first advert

    .venv/bin/python netns-lab/benchstart.py [--runs 10] [--instances 1]

With --instances N (N VRIDs, all owned), "first advert" is the last of the N first adverts:
start-up with a large config. Results go into docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from bench import capture, read_capture
from lab import Lab

VIP_NET = "198.51.100."


def config(n: int) -> str:
    out = ["[global]", 'log_level = "warning"', ""]
    for v in range(1, n + 1):
        out += ["[[instance]]", f'name = "vr{v}"', 'interface = "eth0"', f"vrid = {v}",
                "priority = 255", "version = 3", "advert_interval = 1.0",
                f'vips = ["{VIP_NET}{v + 2}/24"]', ""]
    return "\n".join(out)


def one(lab: Lab, n: int) -> dict:
    h1 = lab.hosts[0]
    cap = capture(lab)
    t0 = time.time()
    proc = lab.start_vipd(h1, config(n))
    lab.wait_for(lambda: len(lab.addrs(h1)) >= n + 2, timeout=30)
    time.sleep(0.5)
    proc.stop()
    frames, _ = read_capture(cap)
    mac = h1.mac
    adverts: dict[int, float] = {}
    garp = None
    for f in frames:
        if f.mac != mac:
            continue
        if f.proto == "vrrp" and f.prio:
            adverts.setdefault(f.vrid, f.t)
        elif f.proto == "arp" and f.src.startswith(VIP_NET) and garp is None:
            garp = f.t
    first_advert = max(adverts.values()) if len(adverts) == n else None
    return {"garp_ms": 1000 * (garp - t0) if garp else None,
            "advert_ms": 1000 * (first_advert - t0) if first_advert else None,
            "garp_to_advert_ms": 1000 * (min(adverts.values()) - garp) if garp and adverts
            else None}


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--instances", type=int, default=1)
    a = p.parse_args(argv)
    runs = []
    with Lab(hosts=1) as lab:
        for _ in range(a.runs):
            runs.append(one(lab, a.instances))
    out = {"instances": a.instances, "runs": a.runs}
    for key in ("garp_ms", "advert_ms", "garp_to_advert_ms"):
        vals = [r[key] for r in runs if r[key] is not None]
        out[key] = {"median": round(statistics.median(vals), 2) if vals else None,
                    "min": round(min(vals), 2) if vals else None,
                    "max": round(max(vals), 2) if vals else None, "n": len(vals)}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
