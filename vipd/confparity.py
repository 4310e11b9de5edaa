"""keepalived's parity keys (DESIGN.md "Parity keys"; keepalived.conf(5) semantics): per-VIP
placement, excluded VIPs, virtual routes and rules, track files -- their types, which the driver
uses, and the parsers that read them from an [[instance]] for vipd.config.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vipd.confparse import (
    BAD, REQUIRED, Bad, Table, abs_path, array, boolean, choice, ifname, integer, plain_address,
    seconds, show, string, vip,
)

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


# ---- parity keys (DESIGN.md "Parity keys"; keepalived.conf(5) semantics) -------------------

_HELD_WHAT = "an address or an inline table {address = ..., dev = ..., label = ..., scope = ...}"


def held_vip(address: Callable[[Any], IPInterface], excluded: bool) -> Callable[[Any], HeldVip]:
    """A vips / excluded_vips entry: an address, or a table placing it (keepalived's
    virtual_ipaddress "dev", "label", "scope")."""
    def parse(value: Any) -> HeldVip:
        if isinstance(value, str):
            return HeldVip(address(value), excluded=excluded)
        t = Table(value, HeldVip, _HELD_WHAT)
        addr = t.get("address", address, REQUIRED)
        t.get("dev", ifname)
        label = t.get("label", string)
        t.get("scope", choice(*SCOPES))
        if label not in (None, BAD):
            if addr is not BAD and addr.version == 6:
                t.problem("label", "labels exist for IPv4 addresses only")
            elif len(label.encode()) > 15:
                t.problem("label", f"must be at most 15 bytes (IFNAMSIZ), got {show(label)}")
        return t.build(excluded=excluded)
    return parse


def _network(value: Any) -> str:
    if value == "default":
        return value
    try:
        if not isinstance(value, str):
            raise ValueError
        net = ipaddress.ip_network(value)
    except ValueError:
        raise Bad(f'must be a network like "203.0.113.0/24" (no host bits) or "default", '
                   f"got {show(value)}") from None
    return str(net)


def _route(value: Any) -> VirtualRoute:
    t = Table(value, VirtualRoute, "an inline table {to = ..., via = ..., dev = ..., table = ...}")
    to = t.get("to", _network, REQUIRED)
    via = t.get("via", plain_address)
    src = t.get("src", plain_address)
    t.get("dev", ifname)
    t.get("table", integer(1, 0xFFFFFFFF))
    t.get("metric", integer(0, 0xFFFFFFFF))
    t.get("scope", choice(*SCOPES))
    kind = t.get("type", choice("unicast", "blackhole", "unreachable", "prohibit"))
    if to not in (None, BAD):
        family = 6 if ":" in to else 4 if to != "default" else None
        for key, addr in (("via", via), ("src", src)):
            if addr not in (None, BAD) and family and addr.version != family:
                t.problem(key, f"is IPv{addr.version} but the route is to IPv{family} {to}")
    if kind in (None, "unicast") and via is None and t.raw.get("dev") is None:
        t.problem("to", "a unicast route needs via or dev (or a type like blackhole)")
    for key, addr in (("via", via), ("src", src)):
        if addr not in (None, BAD):
            t.values[key] = str(addr)
    return t.build()


def _rule_selector(value: Any) -> str:
    if value == "all":
        return value
    return _network(value)


def _rule(value: Any) -> VirtualRule:
    t = Table(value, VirtualRule, "an inline table {from = ..., to = ..., table = ...}")
    t.get("table", integer(1, 0xFFFFFFFF), REQUIRED)
    t.get("from", _rule_selector, "")        # "" = absent: VirtualRule calls it from_
    t.get("to", _rule_selector)
    t.get("priority", integer(0, 0xFFFFFFFF))
    t.get("iif", ifname)
    t.get("oif", ifname)
    t.get("fwmark", integer(0, 0xFFFFFFFF))
    t.values["from_"] = t.values.pop("from") or None
    if t.values["from_"] is None and t.values["to"] is None and t.values["iif"] is None \
            and t.values["oif"] is None and t.values["fwmark"] is None:
        t.problem("table", "a rule needs a selector: from, to, iif, oif or fwmark")
    return t.build()


def _track_file(value: Any) -> TrackFile:
    t = Table(value, TrackFile, "an inline table {path = ..., weight = ..., reverse = ...}")
    t.get("path", abs_path, REQUIRED)
    t.get("weight", integer(-254, 254))
    t.get("reverse", boolean)
    return t.build()


def parity_keys(t: Table, family: int | None, check_vips: Any) -> None:
    """The parity keys of one [[instance]]; ``check_vips`` are the parsed vips entries."""
    excluded = t.get("excluded_vips", array(held_vip(vip, True), unique=lambda h: h.address.ip))
    t.get("track_files", array(_track_file, unique=lambda f: f.path))
    t.get("garp_delay", seconds(0, 3600))
    use_vmac = t.get("use_vmac", boolean)
    vmac_name = t.get("vmac_interface", ifname)
    if vmac_name is not None and use_vmac is not True:
        t.problem("vmac_interface", "only valid with use_vmac = true")
    elif vmac_name is not None and vmac_name == t.values.get("interface"):
        t.problem("vmac_interface", "is the instance's own interface; the VMAC interface is a"
                                    " macvlan made on it and needs a name of its own")
    t.get("virtual_routes", array(_route, unique=lambda r: (r.to, r.table, r.metric)))
    t.get("virtual_rules", array(_rule, unique=lambda r: r))
    if check_vips is not BAD and excluded is not BAD:
        ours = {h.address.ip for h in check_vips}
        for i, h in enumerate(excluded):
            if h.address.ip in ours:
                t.problems.append((f"excluded_vips[{i}]", f"{h.address.ip} is also in vips"))
        t.values["placed"] = tuple(h for h in tuple(check_vips) + tuple(excluded)
                                   if (h.dev, h.label, h.scope) != (None, None, None))
        t.values["vips"] = tuple(h.address for h in check_vips)
        t.values["excluded_vips"] = tuple(h.address for h in excluded)


def vmac_clashes(tables: list[Table]) -> None:
    """Two use_vmac instances whose VMAC interfaces have one name would delete and re-create
    each other's macvlan (with another MAC): an IPv4 and an IPv6 router with the same VRID both
    default to "vrrp.<vrid>", as in keepalived, so one of them needs a vmac_interface."""
    seen: dict[str, int] = {}
    for i, t in enumerate(tables):
        if t.values.get("use_vmac") is not True or not t.ok("vrid", "vmac_interface"):
            continue
        name = t.values.get("vmac_interface") or f"vrrp.{t.values['vrid']}"
        if name in seen:
            key = "vmac_interface" if t.values.get("vmac_interface") else "use_vmac"
            t.problem(key, f"the VMAC interface {name} is already instance[{seen[name]}]'s;"
                           " set vmac_interface to another name")
        seen.setdefault(name, i)
