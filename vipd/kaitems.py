"""keepalived's one-line items turned into vipd values: commands, addresses, routes, rules.

Each function returns the vipd value (or None) and a list of notes: why something on the line
was not carried over, or what a keepalived default became.
"""
from __future__ import annotations

import ipaddress
import re
import shlex
import shutil

NOTIFY_WRAPPER = "/etc/vipd/hooks/keepalived-notify"
# the directories keepalived's own PATH search covers; a program found nowhere runs via sh
SEARCH_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_SHELL_CHARS = re.compile(r"[|&;<>()$`\\*?\[\]~{}#]|\s=|^\w+=")
_BASHISMS = re.compile(r"/dev/(tcp|udp)/")


def command(text: str) -> tuple[list[str], list[str]]:
    """A keepalived script string as a vipd argv: words when a plain exec does the same,
    ["/bin/sh", "-c", text] only when it needs a shell (bash for /dev/tcp, which dash lacks)."""
    if _BASHISMS.search(text):
        return ["/bin/bash", "-c", text], ["/dev/tcp and /dev/udp need bash: run with /bin/bash -c"]
    try:
        words = shlex.split(text)
    except ValueError:
        words = []
    if not words or _SHELL_CHARS.search(text):
        return ["/bin/sh", "-c", text], ["shell syntax: run with /bin/sh -c"]
    prog = words[0]
    if not prog.startswith("/"):
        found = shutil.which(prog, path=SEARCH_PATH)
        if found is None:
            return (["/bin/sh", "-c", text],
                    [f"{prog} not found on this host: run with /bin/sh -c to find it in PATH"])
        return [found, *words[1:]], [f"{prog} resolved to {found}"]
    return words, []


def notify_argv(node_args: list[str]) -> tuple[list[str], list[str]]:
    return command(" ".join(node_args))


def generic_notify(node_args: list[str], group: bool) -> tuple[list[str], list[str]]:
    """keepalived's ``notify SCRIPT`` gets "INSTANCE"|"GROUP" NAME STATE PRIORITY appended: the
    shipped wrapper hook appends them from vipd's environment and execs the script."""
    argv, notes = command(" ".join(node_args))
    return [NOTIFY_WRAPPER, *(["--group"] if group else []), "--", *argv], notes


def both_notify(specific: list[str], wrapped: list[str]) -> list[str]:
    """keepalived's notify_STATE and notify for the same state: one hook that runs both."""
    assert wrapped[0] == NOTIFY_WRAPPER
    rest = wrapped[1:]
    group = rest[:1] == ["--group"]
    return [NOTIFY_WRAPPER, *(["--group"] if group else []), "--first", str(len(specific)),
            *specific, *rest[1 if group else 0:]]


def address(text: str, family: int | None) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    """keepalived's address: a missing prefix length means a host address (/32, /128)."""
    iface = ipaddress.ip_interface(text)
    if family is not None and iface.version != family:
        raise ValueError(f"IPv{iface.version} in an instance whose VIPs are IPv{family}")
    return iface


_VIP_OPTIONS = {"dev", "label", "scope"}
_VIP_IGNORED = {"brd", "broadcast", "no_track", "home", "-nodad", "nodad", "noprefixroute",
                "autojoin", "track_group"}


def vip(keyword: str, args: list[str], family: int | None):
    """A virtual_ipaddress line: "ADDR[/LEN] [dev D] [label L] [scope S] ..."."""
    notes = []
    addr = address(keyword, family)
    opts: dict[str, str] = {}
    i = 0
    while i < len(args):
        word = args[i]
        if word in _VIP_OPTIONS and i + 1 < len(args):
            opts[word] = args[i + 1]
            i += 2
        elif word in _VIP_IGNORED:
            notes.append(f"{word} not carried over (vipd adds the address plainly)")
            i += 2 if word in ("brd", "broadcast", "track_group") else 1
        else:
            raise ValueError(f"unknown address option {word!r}")
    text = str(addr)
    return ({"address": text, **opts} if opts else text), notes


_ROUTE_TYPES = {"blackhole", "unreachable", "prohibit", "unicast"}
_ROUTE_KEYS = {"via": "via", "gw": "via", "dev": "dev", "oif": "dev", "src": "src",
               "table": "table", "metric": "metric", "preference": "metric", "priority": "metric",
               "scope": "scope", "to": "to"}


def route(keyword: str, args: list[str]) -> tuple[dict, list[str]]:
    """A virtual_routes line (ip route syntax) as a vipd route table."""
    words, out, notes = [keyword, *args], {}, []
    i = 0
    while i < len(words):
        w = words[i]
        if w in _ROUTE_TYPES:
            out["type"] = w
            i += 1
        elif w in _ROUTE_KEYS and i + 1 < len(words):
            out[_ROUTE_KEYS[w]] = words[i + 1]
            i += 2
        elif w == "or":
            raise ValueError("multipath routes (or) have no vipd equivalent")
        elif w == "no_track":
            notes.append("no_track not carried over")
            i += 1
        elif "to" not in out:
            out["to"] = w
            i += 1
        else:
            raise ValueError(f"unknown route option {w!r}")
    if "to" not in out:
        raise ValueError("no destination")
    out["to"] = str(ipaddress.ip_network(out["to"], strict=True)) if out["to"] != "default" \
        else "default"
    for k in ("table", "metric"):
        if k in out:
            out[k] = int(out[k])
    if out.get("type") == "unicast":
        del out["type"]
    order = ["to", "via", "dev", "src", "table", "metric", "scope", "type"]
    return {k: out[k] for k in order if k in out}, notes


_RULE_KEYS = {"from": "from", "to": "to", "table": "table", "lookup": "table",
              "priority": "priority", "preference": "priority", "pref": "priority",
              "iif": "iif", "oif": "oif", "fwmark": "fwmark"}


def rule(keyword: str, args: list[str]) -> dict:
    words, out = [keyword, *args], {}
    if len(words) % 2:
        raise ValueError("expected KEY VALUE pairs")
    for k, v in zip(words[::2], words[1::2]):
        if k not in _RULE_KEYS:
            raise ValueError(f"unknown rule option {k!r}")
        out[_RULE_KEYS[k]] = v
    for k in ("from", "to"):
        if k in out and out[k] != "all":
            out[k] = str(ipaddress.ip_network(out[k], strict=True))
    for k in ("table", "priority", "fwmark"):
        if k in out:
            out[k] = int(out[k], 0)
    if "table" not in out:
        raise ValueError("no table")
    return out


def name(text: str) -> str:
    """A keepalived name as a vipd name (1..32 of A-Z a-z 0-9 _ . -)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:32] or "_"
