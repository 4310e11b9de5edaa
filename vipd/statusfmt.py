"""``vipd status`` as a table for people."""
from __future__ import annotations

import time


def table(st: dict) -> str:
    head = ("INSTANCE", "STATE", "PRIO/EFF", "MASTER", "VIPS", "FAILBACK", "CHECKS")
    rows = [head]
    for i in st["instances"]:
        state = i["state"]
        if i.get("drained"):
            state += " (drained)"
        if i.get("faults"):
            state += " (" + ", ".join(i["faults"]) + ")"
        failback = i["failback"] + (" PENDING" if i.get("failback_pending") else "")
        checks = i.get("checks") or {}
        up = sum(1 for c in checks.values() if c.get("ok"))
        check_txt = f"{up} up/{len(checks) - up} down" if checks else "-"
        rows.append((i["name"], state, f"{i['priority']}/{i['effective_priority']}",
                     i.get("master_ip") or "-", " ".join(i["vips"]), failback, check_txt))
    widths = [max(len(r[c]) for r in rows) for c in range(len(head))]
    lines = [f"router {st['router_id']}"]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    for i in st["instances"]:
        lines += [f"{i['name']}: {why}" for why in _why(i)]
    lines += [_paths(i) for i in st["instances"] if i.get("paths")]
    lines += [_held(i) for i in st["instances"]
              if i.get("vmac") or i.get("routes") or i.get("rules")
              or any(h.get("excluded") or h["dev"] != i["interface"] for h in i.get("held", ()))]
    lines += [f"sync group {g['name']}: {g['state']} ({', '.join(g['instances'])})"
              + (", yielding: a member is in FAULT" if g.get("yielding") else "")
              for g in st.get("sync_groups", ())]
    errs = st.get("rx_errors")
    if errs:
        lines.append("dropped before demux: " + ", ".join(f"{k}={v}" for k, v in errs.items()))
    return "\n".join(lines)


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


def _why(i: dict) -> list[str]:
    """Under the table, per instance: the last data yield, refused promotion, data verdict and
    hook run, each with its time and reason (what `vipd status` owes an operator after a split)."""
    out = []
    if y := i.get("last_yield"):
        out.append(f"yielded at {_clock(y['time'])}: {y['reason']}")
    if r := i.get("refused_promotion"):
        out.append(f"promotion refused at {_clock(r['time'])}: {r['reason']}")
    if d := i.get("detached_replica"):
        out.append(f"detached replica ({d['source']}): {d['reason']}")
    if d := i.get("data"):
        out.append(f"data vs {d['peer']} at {_clock(d['time'])}: {d['verdict']} ({d['reason']})")
    if h := i.get("hook"):
        code = "timed out" if h["exit"] is None else f"exit {h['exit']}"
        out.append(f"hook {h['state']} at {_clock(h['time'])}: {code}"
                   + (f": {h['output']}" if h["output"] else ""))
    return out


def _paths(i: dict) -> str:
    """One line per instance with heartbeat paths: each path's state and its last advert's age."""
    parts = []
    for p in i["paths"]:
        age = p.get("last_heard_age")
        heard = "never heard" if age is None else f"last advert {age:.1f}s ago"
        link = ", no carrier" if p.get("link") is False else ""
        parts.append(f"{p['interface']} {p['state']} ({heard}{link})")
    down = i.get("paths_down") or []
    return f"paths of {i['name']}: " + ", ".join(parts) + (
        f"; DOWN: {', '.join(down)}" if down else "")


def _held(i: dict) -> str:
    """What the instance holds beyond its VIPs on its interface (parity keys), and whether now."""
    now = "held" if i.get("vips_on") else "not held"
    parts = [f"{h['address']} on {h['dev']}" + (" (excluded)" if h.get("excluded") else "")
             for h in i.get("held", ())]
    if i.get("vmac"):
        parts.insert(0, f"VMAC {i['vmac']}")
    parts += [f"route {r}" for r in i.get("routes", ())]
    parts += [f"rule {r}" for r in i.get("rules", ())]
    return f"{now} by {i['name']}: " + "; ".join(parts)
