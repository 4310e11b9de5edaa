"""`python netns-lab/lab.py up|list|down`: the lab as a command for a person. lab.py runs main()
and hands it the Lab class, so this module never imports lab (see lab.py's __main__ block)."""
from __future__ import annotations

import argparse
import logging
import sys

from labproc import NETNS_DIR
from labstate import FAMILY, STATE_DIR, destroy, owner_alive, stale, states

log = logging.getLogger("vipd.lab")


def main(lab_class, argv: list[str] | None = None) -> int:
    """lab_class: lab.Lab, which `up` builds and detaches."""
    ap = argparse.ArgumentParser(prog="lab.py", description="the vipd netns lab")
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="build a lab and leave it running")
    up.add_argument("--hosts", type=int, default=2)
    up.add_argument("--prefix")
    up.add_argument("--nginx", action="store_true", help="start nginx on every host")
    up.add_argument("--redis", action="store_true", help="start redis-server on every host")
    down = sub.add_parser("down", help="remove labs")
    down.add_argument("prefixes", nargs="*")
    down.add_argument("--all-stale", action="store_true",
                      help=f"every {FAMILY}* lab in {STATE_DIR} whose process died")
    sub.add_parser("list", help=f"labs recorded in {STATE_DIR}")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="lab: %(message)s")
    if args.cmd == "up":
        lab = lab_class(hosts=args.hosts, prefix=args.prefix).up()
        for h in lab.hosts:
            if args.nginx:
                lab.start_nginx(h)
            if args.redis:
                lab.start_redis(h)
        lab.detach()
        for m in lab.members:
            print(f"{m.name:>3}  {m.ns:<12} {m.ip4:<16} {m.ip6:<16} {m.mac}  port {m.port}")
        print(f"bridge namespace {lab.bridge_ns}, files in {lab.workdir}\n"
              f"  ip netns exec {lab.client.ns} bash      # a shell on the client\n"
              f"  python {sys.argv[0]} down {lab.prefix}")
        return 0
    recorded = states()
    if args.cmd == "list":
        for path, st in recorded:
            present = sum((NETNS_DIR / n).exists() for n in st.get("namespaces", []))
            owner = (f"pid {st['pid']}" if owner_alive(st) else
                     "stale" if st.get("pid") else "detached")
            print(f"{st['prefix']}  hosts={st.get('hosts')}  namespaces={present}  {owner}  "
                  f"{st.get('workdir')}")
        return 0
    if not args.prefixes and not args.all_stale:
        ap.error("down needs PREFIX... or --all-stale")
    rc = 0
    for prefix in set(args.prefixes) - {st["prefix"] for _, st in recorded}:
        log.warning("no lab %s recorded in %s", prefix, STATE_DIR)
        rc = 1
    for path, st in recorded:
        if st["prefix"] in args.prefixes or (args.all_stale and stale(st)):
            problems = destroy(st, path)
            for p in problems:
                log.warning("%s: %s", st["prefix"], p)
            rc |= bool(problems)
            print(f"removed lab {st['prefix']}" + (" (with problems)" if problems else ""))
    return rc
