#!/usr/bin/env python3
"""vipd against keepalived and against the RFC's own limits (issue 5; docs/benchmarks.md).

Each scenario runs with vipd, then with keepalived, in one lab (lab.py: h1, h2 and a client c on a
bridge) with equivalent configs: VRRPv3, h1 priority 150, h2 100, preemption on, 5 gratuitous ARPs
on becoming master. Protocol times come from a capture on the bridge (adverts and ARP as the wire
saw them, never the daemons' logs); what users notice from a prober on the client starting an HTTP
GET of the VIP every 5 ms (50 ms timeout; the body names the host that answered).

  host-failure     h1's link cut (--cut silent: its bridge port drops all, like a dead host)
  clean-stop       SIGTERM to h1
  service-failure  nginx stopped on h1; both daemons run checks/nginx (1 s, fall 2, weight 0)
  scale            N instances at 0.1 s, odd VRIDs master on h1 and even ones on h2
  vmac-failure     host-failure at 0.1 s with use_vmac on both daemons (issue 11)
  na6-failure      host-failure at 0.1 s with an IPv6 VIP (unsolicited NA, no VMAC)
  vmac6-failure    na6-failure with use_vmac on both daemons (IPv6 VMAC)

    .venv/bin/python netns-lab/bench.py [--quick] [--json out.json] [--scenarios ...] [--trials N]
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import logging
import os
import pathlib
import re
import random
import signal
import socket
import statistics
import struct
import sys
import time
from typing import NamedTuple

import psutil

from benchtable import (BACKUP_PRIORITY, CHECK_FALL, CHECK_INTERVAL, CHECK_RISE, PRIORITY,
                        PROBE_PERIOD, machine, master_down_interval, rows, table, theory_for)
from lab import REPO, Capture, Lab, Proc

log = logging.getLogger("vipd.bench")

SCENARIOS = ("host-failure", "clean-stop", "service-failure", "scale", "vmac-failure",
             "na6-failure", "vmac6-failure")
DAEMONS = ("vipd", "keepalived")
VIP, VRID = "198.51.100.100", 51
VIP6 = "2001:db8::100"
SCALE_NET = "203.0.113."
CHECK_CMD = [str(REPO / "checks" / "nginx"), "--url", "http://127.0.0.1/", "--timeout", "0.5"]
PROBE_TIMEOUT = 0.05

# One HTTP GET of the VIP every PERIOD seconds, each on its own non-blocking socket so a lost
# one never delays the next; prints "<send time> <body or ->" as each one ends.
PROBER = r"""
import selectors, signal, socket, struct, sys, time
vip, port, period, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
sel, live, stop = selectors.DefaultSelector(), {}, []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
linger = struct.pack("ii", 1, 0)   # close with RST: no TIME_WAIT pile-up at 200 probes a second
def done(s, result):
    sel.unregister(s)
    s.close()
    sys.stdout.write(f"{live.pop(s)[0]:.6f} {result}\n")
    sys.stdout.flush()
nxt = time.time()
while not stop:
    now = time.time()
    if now >= nxt:
        s = socket.socket(socket.AF_INET6 if ":" in vip else socket.AF_INET)
        s.setblocking(False)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        s.connect_ex((vip, port))
        live[s] = [now, b""]
        sel.register(s, selectors.EVENT_WRITE)
        nxt = max(nxt + period, now)   # fell behind: skip, never burst
    for s in [s for s, v in live.items() if now - v[0] > limit]:
        done(s, "-")
    for key, ev in sel.select(max(0.0, nxt - time.time())):
        s = key.fileobj
        try:
            if ev & selectors.EVENT_WRITE:
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    raise OSError
                s.send(b"GET / HTTP/1.0\r\n\r\n")
                sel.modify(s, selectors.EVENT_READ)
            elif data := s.recv(4096):
                live[s][1] += data
            else:
                head, _, body = live[s][1].partition(b"\r\n\r\n")
                done(s, body.decode(errors="replace").strip() or "-"
                     if head.split(b" ")[1:2] == [b"200"] else "-")
        except OSError:
            done(s, "-")
"""


class BenchError(RuntimeError):
    pass


@dataclasses.dataclass
class Settings:
    scenarios: tuple[str, ...] = SCENARIOS
    daemons: tuple[str, ...] = DAEMONS
    intervals: tuple[float, ...] = (1.0, 0.1, 0.02)
    trials: int = 10
    cut: str = "silent"
    scale_instances: int = 200
    scale_seconds: float = 60.0
    scale_interval: float = 0.1
    service_interval: float = 0.1   # the check's interval dominates: one advert interval will do


# --- the wire: a pcap read with struct ------------------------------------------------------

class Frame(NamedTuple):
    t: float
    mac: str        # Ethernet source
    proto: str      # "vrrp" or "arp" (an unsolicited NA counts as "arp")
    src: str        # IP source, or the ARP sender / NA target address
    vrid: int = 0
    prio: int = 0


def read_pcap(path: pathlib.Path) -> list[Frame]:
    """VRRP, ARP and NA frames of an Ethernet pcap (µs or ns timestamps, either byte order)."""
    data = path.read_bytes()
    for order in "<>":
        magic = struct.unpack(order + "I", data[:4])[0] if len(data) >= 24 else 0
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            break
    else:
        raise BenchError(f"{path}: not a pcap file")
    scale = 1e-6 if magic == 0xA1B2C3D4 else 1e-9
    record, off, out = struct.Struct(order + "IIII"), 24, []
    while off + 16 <= len(data):
        sec, frac, caplen, _ = record.unpack_from(data, off)
        pkt, off = data[off + 16:off + 16 + caplen], off + 16 + caplen
        if len(pkt) < caplen or len(pkt) < 42:
            continue
        t, mac, etype = sec + frac * scale, pkt[6:12].hex(":"), pkt[12:14]
        if etype == b"\x08\x00" and pkt[23] == 112:
            v = 14 + (pkt[14] & 15) * 4
            if len(pkt) >= v + 3:
                out.append(Frame(t, mac, "vrrp", socket.inet_ntoa(pkt[26:30]), pkt[v + 1], pkt[v + 2]))
        elif etype == b"\x08\x06":
            out.append(Frame(t, mac, "arp", socket.inet_ntoa(pkt[28:32])))
        elif etype == b"\x86\xdd" and len(pkt) >= 78:   # IPv6 header 14..54, no extensions
            src = socket.inet_ntop(socket.AF_INET6, pkt[22:38])
            if pkt[20] == 112:
                out.append(Frame(t, mac, "vrrp", src, pkt[55], pkt[56]))
            elif pkt[20] == 58 and pkt[54] == 136:       # NA: its target is the VIP
                out.append(Frame(t, mac, "arp", socket.inet_ntop(socket.AF_INET6, pkt[62:78])))
    return out


# --- configs: the same virtual routers for both daemons ------------------------------------

@dataclasses.dataclass(frozen=True)
class Inst:
    vrid: int
    priority: int
    interval: float
    vip: str            # with its prefix length
    vmac: bool = False  # use_vmac


def vipd_conf(host: str, insts: list[Inst], check: bool) -> str:
    out = ["[global]", f'router_id = "{host}"', ""]
    if check:
        out += ["[checks.nginx]", f"command = {json.dumps(CHECK_CMD)}",
                f"interval = {CHECK_INTERVAL}", "timeout = 1.0", f"rise = {CHECK_RISE}",
                f"fall = {CHECK_FALL}", "weight = 0", ""]
    for i in insts:
        out += ["[[instance]]", f'name = "vr{i.vrid}"', 'interface = "eth0"', f"vrid = {i.vrid}",
                f"priority = {i.priority}", "version = 3", f"advert_interval = {i.interval}",
                f'vips = ["{i.vip}"]', 'track_checks = ["nginx"]' if check else "",
                "use_vmac = true" if i.vmac else "", ""]
    return "\n".join(out)


def keepalived_conf(insts: list[Inst], check: bool) -> str:
    out = ["global_defs {", "    vrrp_version 3", "    vrrp_garp_master_repeat 5",
           "    vrrp_garp_master_delay 0", "    enable_script_security", "    script_user root",
           "}"]
    if check:
        out += ["vrrp_script nginx {", f'    script "{" ".join(CHECK_CMD)}"',
                f"    interval {CHECK_INTERVAL}", "    timeout 1", f"    rise {CHECK_RISE}",
                f"    fall {CHECK_FALL}", "}"]
    for i in insts:
        out += [f"vrrp_instance vr{i.vrid} {{", "    state BACKUP", "    interface eth0",
                f"    virtual_router_id {i.vrid}", f"    priority {i.priority}",
                f"    advert_int {i.interval}", f"    virtual_ipaddress {{ {i.vip} }}",
                "    use_vmac" if i.vmac else "",
                "    track_script { nginx }" if check else "", "}"]
    return "\n".join(out) + "\n"


def start(lab: Lab, kind: str, host: str, insts: list[Inst], check: bool) -> Proc:
    if kind == "vipd":
        return lab.start_vipd(host, vipd_conf(host, insts, check))
    return lab.start_keepalived(host, keepalived_conf(insts, check))


@contextlib.contextmanager
def running(lab: Lab, kind: str, insts: dict[str, list[Inst]], check: bool = False):
    """The daemon on every host of insts; stopped afterwards, and any VIP it left removed."""
    procs: dict[str, Proc] = {}
    try:
        for host, mine in insts.items():
            procs[host] = start(lab, kind, host, mine, check)
        yield procs
    finally:
        for host, p in procs.items():
            if p.stop(timeout=20) != 0:
                log.warning("%s on %s exited with %s on SIGTERM", kind, host, p.returncode)
        for host, mine in insts.items():
            vips = {i.vip for i in mine}
            left = [a for a in lab.addrs(host) if a in vips]
            if left:    # the next run must start clean
                log.warning("%s left %d VIPs on %s after SIGTERM", kind, len(left), host)
                lab.run(host, ["ip", "-force", "-batch", "-"], check=False, input="".join(
                    f"addr del {a} dev eth0\n" for a in left))


def capture(lab: Lab) -> Capture:
    """Adverts and ARP on the bridge (lab.capture sizes its ring for thousands of frames a second;
    tcpdump's defaults dropped a fifth of the scale scenario's)."""
    return lab.capture(filter="ip proto 112 or arp or ip6 proto 112 or icmp6")


def read_capture(cap: Capture) -> tuple[list[Frame], int]:
    """Stops the capture: its frames, and how many the kernel dropped (they are not measured)."""
    frames = read_pcap(cap.stop())
    m = re.search(r"(\d+) packets? dropped by kernel", cap.proc.output())
    if m is None or int(m[1]):
        log.warning("capture: %s", m[0] if m else "tcpdump did not report its drops")
    return frames, int(m[1]) if m else -1


def held(lab: Lab, host: str, prefix: str) -> set[str]:
    return {a.split("/")[0] for a in lab.addrs(host) if a.startswith(prefix)}


def holders(lab: Lab, vip: str = VIP) -> list[str]:
    """Hosts holding the VIP on eth0 or on the VMAC interface (vmac-failure)."""
    return sorted(set(lab.holder(vip)) | set(lab.holder_on(vip, f"vrrp.{VRID}")))


def wait_holder(lab: Lab, host: str, timeout: float, vip: str = VIP) -> None:
    if not lab.wait_for(lambda: holders(lab, vip) == [host], timeout=timeout):
        raise BenchError(f"{vip} is on {holders(lab, vip)}, not only on {host}, after "
                         f"{timeout:.1f}s\n{lab.logs(1500)}")


class Prober:
    """The client's view: HTTP GETs of the VIP every PROBE_PERIOD seconds (see PROBER)."""

    def __init__(self, lab: Lab, vip: str = VIP):
        self.proc = lab.spawn(lab.client, [sys.executable, "-I", "-S", "-c", PROBER, vip, 80,
                                           PROBE_PERIOD, PROBE_TIMEOUT], name="prober")

    def results(self) -> list[tuple[float, str]]:
        out = []
        for line in self.proc.output().splitlines():
            t, _, r = line.partition(" ")
            with contextlib.suppress(ValueError):    # a line still being written
                if r:
                    out.append((float(t), r))
        return out

    def first(self, after: float, host: str, timeout: float) -> float | None:
        """Send time of the first probe after `after` that host answered (waits for it)."""
        end = time.monotonic() + timeout
        while True:
            t = min((t for t, r in self.results() if t > after and r == host), default=None)
            if t is not None or time.monotonic() > end or not self.proc.alive():
                return t
            time.sleep(0.01)

    def stop(self) -> list[tuple[float, str]]:
        self.proc.stop()
        return sorted(self.results())


# --- failover trials ------------------------------------------------------------------------

def pair(interval: float, vmac: bool = False, vip: str = VIP) -> dict[str, list[Inst]]:
    prefix = f"{vip}/64" if ":" in vip else f"{vip}/24"
    return {h: [Inst(VRID, p, interval, prefix, vmac)] for h, p in PRIORITY.items()}


def trials(lab: Lab, kind: str, interval: float, n: int, fault, recover,
           check: bool = False, vmac: bool = False, vip: str = VIP) -> list[dict]:
    """h1 master, h2 backup; per trial: the client answered by h1, fault(procs), wait until h2
    answers the client, recover(procs), h1 holds the VIP again. Figures per trial."""
    records, timeout = [], master_down_interval(BACKUP_PRIORITY, interval) + 3 * CHECK_INTERVAL + 5
    with running(lab, kind, pair(interval, vmac, vip), check) as procs:
        wait_holder(lab, "h1", 2 * timeout, vip)
        time.sleep(3 * interval + 0.2)      # h2 has learned h1's interval and is quiet
        cap = capture(lab)
        time.sleep(1.5 * interval)          # h1's adverts are in the capture before any fault
        for i in range(n):
            rec = {"trial": i + 1}
            lab.run(lab.client, ["ip", "neigh", "flush", "dev", "eth0"])
            prober = Prober(lab, vip)
            try:
                if prober.first(time.time() - 1, "h1", 5) is None:
                    rec["error"] = "h1 did not answer the client before the fault"
                else:
                    time.sleep(random.uniform(0, interval))   # no phase lock to h1's adverts
                    rec["t_fault"] = time.time()
                    fault(procs)
                    if prober.first(rec["t_fault"], "h2", timeout) is None:
                        rec["error"] = f"h2 did not answer the client within {timeout:.1f}s"
                    time.sleep(0.02)
            finally:
                rec["probes"] = prober.stop()
            recover(procs)
            wait_holder(lab, "h1", 2 * timeout, vip)
            records.append(rec)
        frames, dropped = read_capture(cap)
    out = [{**figures(lab, frames, rec, vip), "capture_dropped": dropped} for rec in records]
    for f in out:
        log.info("  %s %gs trial %d: %s", kind, interval, f["trial"], f.get("error") or ", ".join(
            f"{k} {v * 1000:.1f}ms" for k, v in f.items() if k in FIGURES and v is not None))
    return out


FIGURES = ("detection", "takeover", "answered", "outage", "outage_adv", "garp_lag")


def advert_source(lab: Lab, host: str, vip: str) -> str:
    """Where host's adverts come from: its IPv4 address, or (IPv6) its link-local address."""
    if ":" not in vip:
        return lab.host(host).ip4
    return next(a.split("/")[0] for a in lab.addrs(host) if a.startswith("fe80:"))


def figures(lab: Lab, frames: list[Frame], rec: dict, vip: str = VIP) -> dict:
    """From the capture and the probes of one trial (None where the event is missing):
    detection  h2's first advert - h1's last advert before it
    takeover   h2's first advert - h1's priority-0 advert
    answered   first probe answered by h2 - the fault
    outage     that probe - the last probe answered by h1
    outage_adv that probe - h1's last advert: the outage without the fault's random phase
               against h1's advert timer (up to a whole interval at 1 s, which 10 trials of a
               median do not average out), so the one to compare daemons by
    garp_lag   h2's first gratuitous ARP (or NA) for the VIP - its first advert"""
    h2 = lab.host("h2")
    src1, src2 = advert_source(lab, "h1", vip), advert_source(lab, "h2", vip)
    out = {"trial": rec["trial"], "error": rec.get("error"), **dict.fromkeys(FIGURES)}
    t0 = rec.get("t_fault")
    if t0 is None:
        return out
    adv = [f for f in frames if f.proto == "vrrp" and f.vrid == VRID]
    new = next((f.t for f in adv if f.src == src2 and f.prio and f.t > t0), None)
    zero = next((f.t for f in adv if f.src == src1 and not f.prio and f.t > t0), None)
    old = max((f.t for f in adv if f.src == src1 and f.prio and f.t < (new or 0)), default=None)
    garp = next((f.t for f in frames if f.proto == "arp" and f.mac == h2.mac and f.src == vip
                 and f.t > t0), None)
    probes = rec["probes"]
    ans = next((t for t, r in probes if t > t0 and r == "h2"), None)
    last = max((t for t, r in probes if r == "h1" and t < (ans or 0)), default=None)

    def diff(a, b):
        return None if a is None or b is None else a - b
    out.update(t_fault=t0, detection=diff(new, old), takeover=diff(new, zero),
               answered=diff(ans, t0), outage=diff(ans, last), outage_adv=diff(ans, old),
               garp_lag=diff(garp, new))
    return out


def per_interval(lab: Lab, s: Settings, run_one, intervals) -> dict:
    """{"<interval>s": {"interval", "theory": {...}, "<daemon>": [trial figures]}}."""
    out = {}
    for interval in intervals:
        block = out[f"{interval:g}s"] = {"interval": interval, "theory": theory_for(interval)}
        for kind in s.daemons:
            log.info("%s with %s at %gs, %d trials", run_one.__name__, kind, interval, s.trials)
            block[kind] = run_one(lab, kind, interval, s)
    return out


def host_failure(lab: Lab, kind: str, interval: float, s: Settings) -> list[dict]:
    out = trials(lab, kind, interval, s.trials, lambda procs: lab.cut("h1", s.cut == "silent"),
                 lambda procs: lab.heal("h1"))
    mdi = master_down_interval(BACKUP_PRIORITY, interval)
    for t in out:
        t["excess"] = None if t["detection"] is None else t["detection"] - mdi
    return out


def cut_variant(name: str, **options):
    """host-failure with trials() options (vmac, vip), for the VMAC vs GARP/NA comparison."""
    def run_one(lab: Lab, kind: str, interval: float, s: Settings) -> list[dict]:
        return trials(lab, kind, interval, s.trials,
                      lambda procs: lab.cut("h1", s.cut == "silent"),
                      lambda procs: lab.heal("h1"), **options)
    run_one.__name__ = name
    return run_one


# The client's ARP / neighbour entry stays with a VMAC and the switch moves; without one the
# client follows the new master's gratuitous ARP (IPv4) or unsolicited NA (IPv6).
CUT_VARIANTS = {"vmac-failure": cut_variant("vmac_failure", vmac=True),
                "na6-failure": cut_variant("na6_failure", vip=VIP6),
                "vmac6-failure": cut_variant("vmac6_failure", vmac=True, vip=VIP6)}


def clean_stop(lab: Lab, kind: str, interval: float, s: Settings) -> list[dict]:
    def recover(procs):
        procs["h1"].stop()
        procs["h1"] = start(lab, kind, "h1", pair(interval)["h1"], False)
    return trials(lab, kind, interval, s.trials,
                  lambda procs: procs["h1"].send_signal(signal.SIGTERM), recover)


def service_failure(lab: Lab, kind: str, interval: float, s: Settings) -> list[dict]:
    return trials(lab, kind, interval, s.trials, lambda procs: lab.stop_nginx("h1"),
                  lambda procs: lab.start_nginx("h1"), check=True)


# --- scale ----------------------------------------------------------------------------------

def usage(proc: Proc) -> tuple[dict[int, float], float]:
    """CPU seconds by pid, and resident MB summed, over the daemon and its children
    (keepalived's VRRP process is a child of its parent)."""
    cpu, rss, tree = {}, 0, []
    with contextlib.suppress(psutil.Error):
        tree = [root := psutil.Process(proc.pid), *root.children(recursive=True)]
    for p in tree:
        with contextlib.suppress(psutil.Error):
            c = p.cpu_times()
            cpu[p.pid], rss = c.user + c.system, rss + p.memory_info().rss
    return cpu, rss / 2**20


def scale_run(lab: Lab, kind: str, s: Settings) -> dict:
    n, interval = s.scale_instances, s.scale_interval
    masters = {v: "h1" if v % 2 else "h2" for v in range(1, n + 1)}
    insts = {h: [Inst(v, 150 if m == h else 100, interval, f"{SCALE_NET}{v}/24")
                 for v, m in masters.items()] for h in PRIORITY}
    want = {h: {f"{SCALE_NET}{v}" for v, m in masters.items() if m == h} for h in PRIORITY}
    with running(lab, kind, insts) as procs:
        t = time.monotonic()
        converged = time.monotonic() - t if lab.wait_for(
            lambda: all(held(lab, h, SCALE_NET) == want[h] for h in want), 60, 0.1) else None
        if converged is None:    # measured all the same: the window shows what it does then
            log.warning("%s: %d instances not as elected 60 s after start", kind, n)
        time.sleep(1 + 3 * interval)
        cap = capture(lab)
        cpu0 = {h: usage(p)[0] for h, p in procs.items()}
        t0 = time.time()
        time.sleep(s.scale_seconds)
        t1 = time.time()
        cpu1, rss = {}, {}
        for h, p in procs.items():
            cpu1[h], rss[h] = usage(p)
        end_ok = all(held(lab, h, SCALE_NET) == want[h] for h in want)
        frames, dropped = read_capture(cap)
    who = {lab.host(h).ip4: h for h in PRIORITY}
    sent: dict[int, list[float]] = {v: [] for v in masters}
    spurious, odd = 0, {}
    for f in frames:
        if f.proto != "vrrp" or f.vrid not in masters or not t0 <= f.t <= t1:
            continue
        if who.get(f.src) == masters[f.vrid] and f.prio:
            sent[f.vrid].append(f.t)
            continue
        # a backup advertising or the master stepping down: one episode per burst
        if f.t - odd.get(f.vrid, -1e9) > master_down_interval(BACKUP_PRIORITY, interval):
            spurious += 1
        odd[f.vrid] = f.t
    gaps = [b - a for ts in sent.values() for a, b in zip(ts, ts[1:])]
    return {"converged_s": converged, "window_s": t1 - t0, "capture_dropped": dropped,
            "spurious": spurious,
            "silent_instances": sum(not ts for ts in sent.values()), "vips_as_elected": end_ok,
            "cpu_percent": {h: 100 * sum(c - cpu0[h].get(pid, 0) for pid, c in cpu1[h].items())
                            / (t1 - t0) for h in procs},
            "rss_mb": rss, "gap": {"p50": statistics.median(gaps) if gaps else None,
                                   "p99": statistics.quantiles(gaps, n=100, method="inclusive")[98]
                                   if len(gaps) > 1 else None,
                                   "max": max(gaps, default=None), "n": len(gaps)}}


def scale(lab: Lab, s: Settings) -> dict:
    label = f"{s.scale_instances}x{s.scale_interval:g}s"
    block = {"instances": s.scale_instances, "interval": s.scale_interval,
             "seconds": s.scale_seconds, "theory": {"interval": s.scale_interval}}
    for kind in s.daemons:
        log.info("scale with %s: %d instances at %gs for %gs", kind, s.scale_instances,
                 s.scale_interval, s.scale_seconds)
        block[kind] = r = scale_run(lab, kind, s)
        log.info("  %s", json.dumps(r))
    return {label: block}


# --- running it -----------------------------------------------------------------------------

def run(s: Settings, lab: Lab) -> dict:
    """Every scenario of s in lab (2 hosts and a client, up): the results by scenario and label."""
    for h in PRIORITY:
        lab.start_nginx(h)
    results = {}
    for scen in s.scenarios:
        if scen == "scale":
            results[scen] = scale(lab, s)
        elif scen == "service-failure":
            results[scen] = per_interval(lab, s, service_failure, [s.service_interval])
        elif scen in CUT_VARIANTS:
            results[scen] = per_interval(lab, s, CUT_VARIANTS[scen], [0.1])
        else:
            fn = {"host-failure": host_failure, "clean-stop": clean_stop}[scen]
            results[scen] = per_interval(lab, s, fn, s.intervals)
    return results


def parse_args(argv) -> tuple[Settings, argparse.Namespace]:
    ap = argparse.ArgumentParser(prog="bench.py", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--quick", action="store_true",
                    help="2 trials at 0.1 s and 0.02 s, scale 10 instances for 10 s")
    ap.add_argument("--json", type=pathlib.Path, help="write the figures here")
    ap.add_argument("--scenarios", nargs="+", choices=SCENARIOS)
    ap.add_argument("--daemons", nargs="+", choices=DAEMONS)
    ap.add_argument("--trials", type=int, help="trials per scenario, daemon and interval")
    ap.add_argument("--intervals", nargs="+", type=float, help="advert intervals in seconds")
    ap.add_argument("--cut", choices=("silent", "carrier"), help="host-failure: how the link dies")
    ap.add_argument("--scale-instances", type=int, choices=range(1, 255), metavar="1..254")
    ap.add_argument("--scale-seconds", type=float)
    a = ap.parse_args(argv)
    s = Settings(intervals=(0.1, 0.02), trials=2, scale_instances=10, scale_seconds=10.0) \
        if a.quick else Settings()
    for field in ("scenarios", "daemons", "trials", "intervals", "cut", "scale_instances",
                  "scale_seconds"):
        value = getattr(a, field)
        if value is not None:
            setattr(s, field, tuple(value) if isinstance(value, list) else value)
    return s, a


def main(argv: list[str] | None = None) -> int:
    s, a = parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="bench: %(message)s", stream=sys.stderr)
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    t0, load0 = time.monotonic(), os.getloadavg()
    with Lab(hosts=2) as lab:
        results = run(s, lab)
    rs, info = rows(results), machine()
    print(f"vipd {info['vipd_commit']} vs {info['keepalived']}; {info['nproc']} CPUs "
          f"({info['cpu']}), {info['memory_mb']} MB, Linux {info['kernel']}, Python "
          f"{info['python']}; load {load0[0]:.2f} -> {info['loadavg'][0]:.2f}; {s.trials} trials, "
          f"cut {s.cut}\n")
    print(table(rs))
    if a.json:
        a.json.write_text(json.dumps({
            "started": started, "duration_s": round(time.monotonic() - t0, 1), "machine": info,
            "loadavg_start": load0,
            "settings": dataclasses.asdict(s), "rows": rs, "results": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
