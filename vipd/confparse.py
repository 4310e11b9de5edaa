"""The vocabulary of the config modules (config, confchecks, confparity): the table reader and
the value parsers they build their sections from.

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


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Bad(f"must be true or false, got {show(value)}")
    return value
