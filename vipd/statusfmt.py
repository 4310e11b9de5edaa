"""``vipd status`` as a table for people."""
from __future__ import annotations


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
    errs = st.get("rx_errors")
    if errs:
        lines.append("dropped before demux: " + ", ".join(f"{k}={v}" for k, v in errs.items()))
    return "\n".join(lines)
