"""`python netns-lab/lab.py up|list|down`: the lab as a command for a person."""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import pathlib
import sys

from lab import FAMILY, NETNS_DIR, STATE_DIR, Lab, _destroy, _start_time

log = logging.getLogger("vipd.lab")



def _states() -> list[tuple[pathlib.Path, dict]]:
    out = []
    for path in sorted(STATE_DIR.glob("*.json")):
        with contextlib.suppress(OSError, ValueError):
            out.append((path, json.loads(path.read_text())))
    return out


def _owner_alive(state: dict) -> bool:
    return bool(state.get("pid")) and _start_time(state["pid"]) == state.get("start")


def _stale(state: dict) -> bool:
    """Left by a run that died (a detached lab, made by `lab.py up`, is kept until named)."""
    return state["prefix"].startswith(FAMILY) and bool(state.get("pid")) and not _owner_alive(state)


def main(argv: list[str] | None = None) -> int:
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
        lab = Lab(hosts=args.hosts, prefix=args.prefix).up()
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
    states = _states()
    if args.cmd == "list":
        for path, st in states:
            present = sum((NETNS_DIR / n).exists() for n in st.get("namespaces", []))
            owner = (f"pid {st['pid']}" if _owner_alive(st) else
                     "stale" if st.get("pid") else "detached")
            print(f"{st['prefix']}  hosts={st.get('hosts')}  namespaces={present}  {owner}  "
                  f"{st.get('workdir')}")
        return 0
    if not args.prefixes and not args.all_stale:
        ap.error("down needs PREFIX... or --all-stale")
    rc = 0
    for prefix in set(args.prefixes) - {st["prefix"] for _, st in states}:
        log.warning("no lab %s recorded in %s", prefix, STATE_DIR)
        rc = 1
    for path, st in states:
        if st["prefix"] in args.prefixes or (args.all_stale and _stale(st)):
            problems = _destroy(st, path)
            for p in problems:
                log.warning("%s: %s", st["prefix"], p)
            rc |= bool(problems)
            print(f"removed lab {st['prefix']}" + (" (with problems)" if problems else ""))
    return rc


if __name__ == "__main__":
    sys.exit(main())
