"""Routes, policy rules and scoped addresses held while MASTER, through iproute2's `ip -batch`.

keepalived's virtual_routes / virtual_rules map one to one onto `ip route` / `ip rule` syntax, so
vipd hands iproute2 the same words instead of re-implementing their netlink encoding (route
types, tables above 255, rule selectors). One `ip -batch` process per change of role and address
family costs a few milliseconds, and only on a transition, never per packet. `-force` makes ip
carry on past a failed line; the failures are returned for logging.

Commands are built by pure functions (tested without root); ``run_batch`` is the only I/O.
"""
from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable

from vipd.confparity import HeldVip, VirtualRoute, VirtualRule

IP = shutil.which("ip", path="/usr/sbin:/sbin:/usr/bin:/bin") or "/usr/sbin/ip"
TIMEOUT = 5.0
RULE_DUPLICATES = 8       # a crashed run may have added a rule more than once: delete up to this


def _family_of(*addrs: str | None) -> int:
    return 6 if any(a and ":" in a for a in addrs) else 4


def route_family(r: VirtualRoute) -> int:
    return _family_of(r.to, r.via, r.src)


def rule_family(r: VirtualRule) -> int:
    return _family_of(r.from_, r.to)


def route_words(r: VirtualRoute) -> list[str]:
    words = [r.type] if r.type and r.type != "unicast" else []
    words.append(r.to)
    for key, value in (("via", r.via), ("dev", r.dev), ("src", r.src), ("table", r.table),
                       ("metric", r.metric), ("scope", r.scope)):
        if value is not None:
            words += [key, str(value)]
    return words


def rule_words(r: VirtualRule) -> list[str]:
    words: list[str] = []
    for key, value in (("from", r.from_), ("to", r.to), ("iif", r.iif), ("oif", r.oif),
                       ("fwmark", r.fwmark), ("priority", r.priority), ("table", r.table)):
        if value is not None:
            words += [key, str(value)]
    return words


def address_words(h: HeldVip, dev: str) -> list[str]:
    words = [str(h.address), "dev", dev]
    if h.label:
        words += ["label", h.label]
    if h.scope:
        words += ["scope", h.scope]
    if h.address.version == 6:
        words.append("nodad")     # as for every IPv6 VIP: usable at once
    return words


def add_lines(routes: Iterable[VirtualRoute], rules: Iterable[VirtualRule]
              ) -> dict[int, list[str]]:
    """Batch lines per family that make the routes and rules present (idempotent: a rule is
    deleted before it is added, because the kernel keeps duplicate rules)."""
    out: dict[int, list[str]] = {4: [], 6: []}
    for r in rules:
        spec = " ".join(rule_words(r))
        out[rule_family(r)] += [f"rule del {spec}", f"rule add {spec}"]
    for r in routes:
        out[route_family(r)].append("route replace " + " ".join(route_words(r)))
    return out


def del_lines(routes: Iterable[VirtualRoute], rules: Iterable[VirtualRule],
              duplicates: int = 1) -> dict[int, list[str]]:
    """Batch lines per family that remove the routes and rules (routes first: the reverse of
    adding). ``duplicates`` > 1 at start-up clears rules a crashed run added several times."""
    out: dict[int, list[str]] = {4: [], 6: []}
    for r in routes:
        out[route_family(r)].append("route del " + " ".join(route_words(r)))
    for r in rules:
        out[rule_family(r)] += [f"rule del {' '.join(rule_words(r))}"] * duplicates
    return out


def run_batch(lines_by_family: dict[int, list[str]]) -> list[str]:
    """Runs the lines; returns ip's error lines (empty when all succeeded)."""
    errors: list[str] = []
    for family, lines in lines_by_family.items():
        if not lines:
            continue
        try:
            res = subprocess.run([IP, f"-{family}", "-force", "-batch", "-"],
                                 input="\n".join(lines) + "\n", capture_output=True, text=True,
                                 timeout=TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            errors.append(f"ip -batch: {e}")
            continue
        errors += [line for line in res.stderr.splitlines()
                   if line.strip() and not line.startswith("Command failed")]
    return errors
