"""The types of keepalived's parity keys (DESIGN.md "Parity keys"): sync groups, per-VIP placement,
excluded VIPs, virtual routes and rules, track files. vipd.config reads them; the driver uses them.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface

# iproute2's scope names (rtnetlink RT_SCOPE_*), as keepalived accepts them
SCOPES = {"global": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}


@dataclass(frozen=True)
class TrackFile:
    path: str
    weight: int = 1                 # integer in the file x weight is added; 0: non-zero = FAULT
    reverse: bool = False


@dataclass(frozen=True)
class HeldVip:
    """An address the instance holds while MASTER, and where (keepalived virtual_ipaddress with
    dev/label/scope). dev None: the instance's interface (or its VMAC interface)."""
    address: IPInterface
    dev: str | None = None
    label: str | None = None
    scope: str | None = None        # keepalived/iproute2 names: global site link host nowhere
    excluded: bool = False          # virtual_ipaddress_excluded: not listed in adverts


@dataclass(frozen=True)
class VirtualRoute:
    """keepalived virtual_routes: present exactly while MASTER (ip route syntax in the fields)."""
    to: str
    via: str | None = None
    dev: str | None = None
    src: str | None = None
    table: int | None = None
    metric: int | None = None
    scope: str | None = None
    type: str | None = None         # unicast (default) blackhole unreachable prohibit


@dataclass(frozen=True)
class VirtualRule:
    """keepalived virtual_rules: a policy rule present exactly while MASTER."""
    table: int
    from_: str | None = None
    to: str | None = None
    priority: int | None = None
    iif: str | None = None
    oif: str | None = None
    fwmark: int | None = None
