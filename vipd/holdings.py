"""What a MASTER holds besides its adverts: the VIPs (each on its own dev, with label and
scope), the excluded VIPs, and the virtual routes and rules (keepalived's virtual_ipaddress,
virtual_ipaddress_excluded, virtual_routes, virtual_rules).

Order, as keepalived: addresses first, then rules and routes (a route via or from a VIP needs the
address); on leaving, routes and rules first, then addresses. Everything is also removed at
start, because a crashed run may have left it behind and nobody is announcing it now.
"""
from __future__ import annotations

import logging

from vipd.config import HeldVip, InstanceConfig
from vipd.net import iproute
from vipd.net.netlink import Netlink

log = logging.getLogger("vipd")


def dev_of(cfg: InstanceConfig, h: HeldVip) -> str:
    return h.dev or cfg.vip_dev


async def add(nl: Netlink, cfg: InstanceConfig) -> int:
    """Puts up what a MASTER holds; returns how many netlink requests failed (logged here)."""
    scoped, errors = [], 0
    for h in cfg.held:
        if h.scope:
            scoped.append("address replace " + " ".join(iproute.address_words(h, dev_of(cfg, h))))
            continue
        try:
            await nl.add_vip(dev_of(cfg, h), h.address, h.label)
        except OSError as e:
            errors += 1
            log.error("[%s] cannot add VIP %s to %s: %s", cfg.name, h.address, dev_of(cfg, h), e)
    lines = iproute.add_lines(cfg.virtual_routes, cfg.virtual_rules)
    for line in scoped:
        lines[6 if ":" in line.split()[2] else 4].insert(0, line)
    _run(cfg, lines, "add")
    return errors


async def remove(nl: Netlink, cfg: InstanceConfig, leftovers: bool = False) -> int:
    """Removes what ``add`` adds; ``leftovers``: at start, log what was found. Returns how many
    netlink requests failed (logged here)."""
    errors = 0
    lines = iproute.del_lines(cfg.virtual_routes, cfg.virtual_rules,
                              iproute.RULE_DUPLICATES if leftovers else 1)
    if leftovers:
        iproute.run_batch(lines)      # absent routes and rules are the normal case: no errors
    else:
        _run(cfg, lines, "remove")
    for h in cfg.held:
        dev = dev_of(cfg, h)
        try:
            if await nl.del_vip(dev, h.address) and leftovers:
                log.warning("[%s] removed leftover VIP %s from %s", cfg.name, h.address, dev)
        except OSError as e:
            errors += 1
            log.warning("[%s] cannot remove VIP %s from %s: %s", cfg.name, h.address, dev, e)
    return errors


def _run(cfg: InstanceConfig, lines: dict[int, list[str]], what: str) -> None:
    if not any(lines.values()):
        return
    for error in iproute.run_batch(lines):
        log.error("[%s] %s routes/rules: %s", cfg.name, what, error)


def status(cfg: InstanceConfig, on: bool) -> dict:
    """The parity part of an instance's status: where its addresses, routes and rules are."""
    return {
        "held": [{"address": str(h.address), "dev": dev_of(cfg, h), "label": h.label,
                  "scope": h.scope, "excluded": h.excluded} for h in cfg.held],
        "routes": [" ".join(iproute.route_words(r)) for r in cfg.virtual_routes],
        "rules": [" ".join(iproute.rule_words(r)) for r in cfg.virtual_rules],
        "routes_on": on and bool(cfg.virtual_routes or cfg.virtual_rules),
        "vmac": cfg.vmac_name,
    }
