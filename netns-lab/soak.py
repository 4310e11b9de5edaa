"""Soak (issue 9): many instances at a short interval while interfaces and addresses churn under
some of them. Prints what matters and exits 1 when it is wrong:

  - spurious transitions: instances on eth0 must never move while eth1 flaps, is deleted and
    re-created, and addresses come and go on eth0 (a secondary address added and removed);
  - churned instances (on eth1) must end where the election puts them, VIPs restored counted;
  - RSS of each vipd sampled every 10 s; the slope (MB per minute, least squares) is reported.

    .venv/bin/python netns-lab/soak.py [--minutes 10] [--instances 200] [--churned 20]
                                       [--interval 0.1] [--period 3]

Not a test (it runs for minutes); results go into docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import sys
import time

import labsegment
from bench import usage
from lab import VIPD, CommandError, Lab

log = logging.getLogger("soak")
NET0 = "198.51.100."


def config(host: str, n: int, churned: int, interval: float, mine) -> str:
    out = ["[global]", f'router_id = "{host}"', 'log_level = "warning"', ""]
    for v in range(1, n + 1):
        on_eth1 = v <= churned
        vip = f"{labsegment.SEGMENT_NET}{100 + v}/24" if on_eth1 else f"{NET0}{v + 2}/24"
        out += ["[[instance]]", f'name = "vr{v}"',
                f'interface = "{labsegment.IFNAME if on_eth1 else "eth0"}"', f"vrid = {v}",
                f"priority = {150 if mine(v) else 100}", "version = 3",
                f"advert_interval = {interval}", f'vips = ["{vip}"]', ""]
    return "\n".join(out)


def status(lab: Lab, proc) -> dict[str, dict]:
    out = lab.run(proc.host, [VIPD, "status", "--json", "--socket", proc.socket], timeout=30)
    return {i["name"]: i for i in json.loads(out.stdout)["instances"]}


def slope_per_minute(samples: list[tuple[float, float]]) -> float:
    if len(samples) < 2:
        return 0.0
    ts, ys = [t for t, _ in samples], [y for _, y in samples]
    mt, my = statistics.fmean(ts), statistics.fmean(ys)
    den = sum((t - mt) ** 2 for t in ts)
    return 60 * sum((t - mt) * (y - my) for t, y in zip(ts, ys)) / den if den else 0.0


def churn(lab: Lab, rng: random.Random, counts: dict[str, int], churned: int) -> None:
    host = rng.choice(lab.hosts)
    what = rng.choice(["flap", "recreate", "address", "vip"])
    counts[what] = counts.get(what, 0) + 1
    if what == "flap":
        lab.run(host, ["ip", "link", "set", labsegment.IFNAME, "down"])
        time.sleep(rng.uniform(0.2, 1.5))
        lab.run(host, ["ip", "link", "set", labsegment.IFNAME, "up"])
    elif what == "recreate":
        labsegment.del_leg(lab, host)
        time.sleep(rng.uniform(0.2, 1.5))
        labsegment.add_leg(lab, host)
    elif what == "address":      # on eth0, under the instances that must not move
        lab.run(host, ["ip", "addr", "add", f"{NET0}250/24", "dev", "eth0"])
        time.sleep(rng.uniform(0.1, 1.0))
        lab.run(host, ["ip", "addr", "del", f"{NET0}250/24", "dev", "eth0"])
    else:                        # someone deletes an eth1 VIP wherever it is
        v = rng.randint(1, churned)
        lab.run(host, ["ip", "addr", "del", f"{labsegment.SEGMENT_NET}{100 + v}/24", "dev",
                       labsegment.IFNAME], check=False)


def elected(lab: Lab, procs: dict) -> bool:
    """Every instance in the state the election gives it (h1 masters the odd VRIDs)."""
    for h, p in procs.items():
        try:
            instances = status(lab, p)
        except CommandError:       # still starting: its control socket does not answer yet
            return False
        for name, i in instances.items():
            odd = int(name[2:]) % 2 == 1
            if i["state"] != ("MASTER" if odd == (h == "h1") else "BACKUP"):
                return False
    return True


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--instances", type=int, default=200)
    p.add_argument("--churned", type=int, default=20, help="instances on eth1 (the churned one)")
    p.add_argument("--interval", type=float, default=0.1)
    p.add_argument("--period", type=float, default=3.0, help="seconds between churn events")
    p.add_argument("--seed", type=int, default=None)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1 << 30)
    rng = random.Random(seed)
    with Lab(hosts=2) as lab:
        h1, h2 = lab.hosts
        for h in (h1, h2, lab.client):
            labsegment.add_leg(lab, h)
        procs = {h.name: lab.start_vipd(h, config(
            h.name, a.instances, a.churned, a.interval,
            (lambda v: v % 2 == 1) if h is h1 else (lambda v: v % 2 == 0))) for h in (h1, h2)}
        # Settled, not a fixed time: a 200-instance start takes seconds on a loaded machine, and
        # a backup whose master was still starting moves once (MDI) -- that is start-up, not
        # what this soak counts.
        lab.wait_for(lambda: elected(lab, procs), timeout=60, interval=0.5)
        time.sleep(1 + 4 * a.interval * 3)
        before = {h: status(lab, p) for h, p in procs.items()}
        not_settled = [n for h, st in before.items() for n, i in st.items()
                       if i["state"] not in ("MASTER", "BACKUP")]
        rss: dict[str, list[tuple[float, float]]] = {h: [] for h in procs}
        counts: dict[str, int] = {}
        t0 = time.monotonic()
        end, next_sample = t0 + 60 * a.minutes, t0
        while time.monotonic() < end:
            if time.monotonic() >= next_sample:
                for h, proc in procs.items():
                    rss[h].append((time.monotonic() - t0, usage(proc)[1]))
                next_sample += 10
            churn(lab, rng, counts, a.churned)
            time.sleep(rng.uniform(0.5, 1.5) * a.period)
        time.sleep(3)                    # the last churn settles
        after = {h: status(lab, p) for h, p in procs.items()}
        alive = all(p.alive() for p in procs.values())
    spurious, churned_moves, restored = {}, 0, 0
    for h in procs:
        for name, i in after[h].items():
            moved = (i["counters"].get("transitions", 0)
                     - before[h][name]["counters"].get("transitions", 0))
            if i["interface"] == "eth0":
                if moved:
                    spurious[f"{h}/{name}"] = moved
            else:
                churned_moves += moved
            restored += i["counters"].get("vip_restored", 0)
    wrong_end = [f"{h}/{n}" for h in after for n, i in after[h].items()
                 if i["state"] != ("MASTER" if (int(n[2:]) % 2 == 1) == (h == "h1") else "BACKUP")]
    result = {
        "seed": seed, "minutes": a.minutes, "instances": a.instances, "churned": a.churned,
        "interval": a.interval, "churn_events": counts, "not_settled_at_start": not_settled,
        "spurious_transitions_eth0": spurious, "transitions_churned": churned_moves,
        "vip_restored": restored, "wrong_state_at_end": wrong_end, "daemons_alive": alive,
        "rss_mb": {h: {"first": s[0][1], "last": s[-1][1], "max": max(y for _, y in s),
                       "slope_mb_per_min": round(slope_per_minute(s), 4)}
                   for h, s in rss.items() if s},
    }
    print(json.dumps(result, indent=1))
    ok = alive and not spurious and not wrong_end and not not_settled
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
