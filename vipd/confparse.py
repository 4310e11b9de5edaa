"""Value parsers and the table reader behind vipd.config.

Parsers report problems as ``(relative key, reason)`` pairs; the enclosing ``Table`` prefixes
them with its own key, so one pass over a document collects every error with its full key path.
"""
from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import json
import math
import re
from collections.abc import Callable
from typing import Any

from vipd.confparity import SCOPES, HeldVip, TrackFile, VirtualRoute, VirtualRule

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
Problem = tuple[str, str]      # (key path relative to the value, reason)

class Bad(Exception):
    """A value failed validation; carries one or more problems relative to that value's key."""

    def __init__(self, reason: str | list[Problem]):
        super().__init__(reason)
        self.problems: list[Problem] = [("", reason)] if isinstance(reason, str) else reason

    def under(self, key: str) -> list[Problem]:
        """These problems as seen from the table that holds the bad value at ``key``."""
        return [(_join(key, rel), why) for rel, why in self.problems]


BAD = object()         # stands in for a value that failed (and was reported) so checks go on
REQUIRED = object()

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def toml_key(key: str) -> str:
    """Spell a key the way TOML would, so a path can be pasted back into the file."""
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key)


def _join(prefix: str, rel: str) -> str:
    if not prefix:
        return rel
    if not rel:
        return prefix
    return prefix + rel if rel.startswith("[") else f"{prefix}.{rel}"


def show(value: Any) -> str:
    """Render a got-value for a message, in TOML terms."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"       # TOML dates and times


def did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f"; did you mean {show(close[0])}?" if close else ""


class Table:
    """Reads one TOML table into the fields of a dataclass, collecting problems.

    Absent optional keys take the dataclass's default; every key not asked for is reported as
    unknown once ``finish()`` runs.
    """

    def __init__(self, raw: Any, cls: type, what: str = "a table"):
        self.cls = cls
        self.values: dict[str, Any] = {}
        self.problems: list[Problem] = []
        self._asked: list[str] = []
        self.raw = raw if isinstance(raw, dict) else {}
        self._not_a_table = not isinstance(raw, dict)   # then its keys are not missing, just unseen
        if self._not_a_table:
            self.problems.append(("", f"must be {what}, got {show(raw)}"))

    def get(self, key: str, parse: Callable[[Any], Any], default: Any = None) -> Any:
        self._asked.append(key)
        if key not in self.raw:
            if default is REQUIRED:
                if not self._not_a_table:
                    self.problem(key, "required key is missing")
                value = BAD
            else:
                value = self._default(key) if default is None else default
        else:
            try:
                value = parse(self.raw[key])
            except Bad as bad:
                self.problems += bad.under(toml_key(key))
                value = BAD
        self.values[key] = value
        return value

    def problem(self, key: str, reason: str) -> None:
        self.problems.append((toml_key(key), reason))

    def finish(self) -> None:
        for key in self.raw:
            if key not in self._asked:
                self.problem(key, "unknown key" + did_you_mean(key, self._asked))

    def ok(self, *keys: str) -> bool:
        """True when all these keys were read without error (so cross-checks may use them)."""
        return all(self.values.get(k, BAD) is not BAD for k in keys)

    def build(self, **extra: Any) -> Any:
        """The dataclass; raises Bad with every problem of this table, unknown keys included."""
        self.finish()
        if self.problems:
            raise Bad(self.problems)
        return self.cls(**self.values, **extra)

    def _default(self, key: str) -> Any:
        f = self.cls.__dataclass_fields__[key]
        if f.default_factory is not dataclasses.MISSING:
            return f.default_factory()
        return f.default


# ---- value parsers: each takes the raw TOML value and returns it converted or raises Bad ----


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def integer(lo: int, hi: int | None = None) -> Callable[[Any], int]:
    want = f"an integer {lo}..{hi}" if hi is not None else f"an integer >= {lo}"

    def parse(value: Any) -> int:
        if not _is_int(value) or value < lo or (hi is not None and value > hi):
            raise Bad(f"must be {want}, got {show(value)}")
        return value
    return parse


def seconds(lo: float, hi: float | None = None, lo_open: bool = False) -> Callable[[Any], float]:
    if hi is not None:
        want = f"a number of seconds {lo:g}..{hi:g}"
    else:
        want = f"a number of seconds {'>' if lo_open else '>='} {lo:g}"

    def parse(value: Any) -> float:
        if not (_is_int(value) or isinstance(value, float)) or not math.isfinite(value):
            raise Bad(f"must be {want}, got {show(value)}")
        below = value <= lo if lo_open else value < lo
        if below or (hi is not None and value > hi):
            raise Bad(f"must be {want}, got {show(value)}")
        return float(value)
    return parse


def choice(*allowed: Any) -> Callable[[Any], Any]:
    want = ", ".join(show(a) for a in allowed[:-1]) + f" or {show(allowed[-1])}"

    def parse(value: Any) -> Any:
        # type() match so that true is not taken for 1, nor 3.0 for 3
        if not any(type(value) is type(a) and value == a for a in allowed):
            raise Bad(f"must be {want}, got {show(value)}")
        return value
    return parse


def string(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise Bad(f"must be a non-empty string, got {show(value)}")
    return value


_NAME = re.compile(r"[A-Za-z0-9_.-]{1,32}")


def short_name(value: Any) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise Bad(f"must be 1..32 characters of A-Z a-z 0-9 _ . -, got {show(value)}")
    return value


def ifname(value: Any) -> str:
    # the kernel's dev_valid_name(): below IFNAMSIZ (16), no '/', ':' or whitespace
    if (not isinstance(value, str) or not 0 < len(value) < 16 or value in (".", "..")
            or re.search(r"[/:\s]", value)):
        raise Bad(f"must be a Linux interface name (1..15 characters, no / : or spaces), "
                   f"got {show(value)}")
    return value


def abs_path(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise Bad(f"must be an absolute path, got {show(value)}")
    return value


def env_name(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise Bad(f"must be the name of an environment variable, got {show(value)}")
    return value


def host_port(default_port: int | None) -> Callable[[Any], str]:
    """"host:port" ("[v6]:port" for IPv6); the port may be left out where there is a default."""
    want = '"HOST:PORT"' if default_port is None else f'"HOST" or "HOST:PORT" (default port {default_port})'

    def parse(value: Any) -> str:
        if not isinstance(value, str):
            raise Bad(f"must be {want}, got {show(value)}")
        if default_port is not None and value.count(":") > 1 and not value.startswith("["):
            value = f"[{value}]"        # a bare IPv6 address: the port is the default
        m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\d+))?|([^\s:\[\]/]+)(?::(\d+))?", value)
        host = m and (m[1] or m[3])
        port = m and (m[2] or m[4])
        if not m or (port is None and default_port is None) or (port and not 0 < int(port) < 65536):
            raise Bad(f"must be {want}, got {show(value)}")
        port = int(port) if port else default_port
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return parse


def array(parse_item: Callable[[Any], Any], unique: Callable[[Any], Any] | None = None,
           nonempty: bool = False, what: str = "an array") -> Callable[[Any], tuple]:
    """An array parsed item by item; problems are reported at ``[i]``. ``unique`` gives the
    identity under which two items count as the same (a repeat is a problem)."""

    def parse(value: Any) -> tuple:
        if not isinstance(value, list) or (nonempty and not value):
            raise Bad(f"must be {what}, got {show(value) if value != [] else 'an empty array'}")
        items, problems, seen = [], [], {}
        for i, raw in enumerate(value):
            try:
                item = parse_item(raw)
            except Bad as bad:
                problems += bad.under(f"[{i}]")
                continue
            ident = unique(item) if unique else None
            if ident is not None and ident in seen:
                problems.append((f"[{i}]", f"{show(str(ident))} is listed twice "
                                           f"(also at [{seen[ident]}])"))
                continue
            seen.setdefault(ident, i)
            items.append(item)
        if problems:
            raise Bad(problems)
        return tuple(items)
    return parse


def _argv_item(value: Any) -> str:
    if not isinstance(value, str):
        raise Bad(f"must be a string, got {show(value)}")
    return value


def argv(value: Any) -> tuple[str, ...]:
    """A command as an argv list (run without a shell): the program must be an absolute path so
    that what runs does not depend on the daemon's PATH."""
    argv = array(_argv_item, nonempty=True,
                  what="a non-empty array of strings (program and arguments)")(value)
    if not argv[0].startswith("/"):
        raise Bad([("[0]", f"the program must be an absolute path, got {show(argv[0])}")])
    return argv


def plain_address(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        if not isinstance(value, str) or "%" in value:
            raise ValueError
        addr = ipaddress.ip_address(value)
    except ValueError:
        raise Bad(f"must be an IPv4 or IPv6 address, got {show(value)}") from None
    if addr.is_multicast or addr.is_unspecified or addr.is_loopback:
        raise Bad(f"must be a unicast address, got {show(value)}")
    return addr


def vip(value: Any) -> IPInterface:
    try:
        # no "%scope": the instance's interface is the scope of a link-local VIP
        if not isinstance(value, str) or "%" in value:
            raise ValueError
        vip = ipaddress.ip_interface(value)
    except ValueError:
        raise Bad("must be an address with optional prefix length like \"198.51.100.100/24\", "
                   f"got {show(value)}") from None
    plain_address(str(vip.ip))
    return vip


def in_family(family: int | None, parse: Callable[[Any], Any],
               what: str) -> Callable[[Any], Any]:
    """Wrap an address parser so that it also insists on one address family."""
    def parse_in_family(raw: Any) -> Any:
        item = parse(raw)
        if family is not None and item.version != family:
            raise Bad(f"{show(raw)} is IPv{item.version} but {what} IPv{family}; "
                       "use one instance per address family")
        return item
    return parse_in_family


def first_family(raw_vips: Any) -> int | None:
    """The family an instance is of: that of its first valid VIP (later ones must match it)."""
    for raw in raw_vips if isinstance(raw_vips, list) else ():
        if isinstance(raw, dict):       # a placed VIP {address = ..., dev = ...}
            raw = raw.get("address")
        try:
            return vip(raw).version
        except Bad:
            continue
    return None


# ---- sections -------------------------------------------------------------------------------


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Bad(f"must be true or false, got {show(value)}")
    return value


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
    if t.get("vmac_interface", ifname) is not None and use_vmac is not True:
        t.problem("vmac_interface", "only valid with use_vmac = true")
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
