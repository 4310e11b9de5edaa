"""The [checks.NAME] section: a check's common keys and the kind-specific keys of the built-in
checks (http, tcp, redis, sentinel) run by vipd/probes.

Another kind's option on a check is an error, not ignored, so that a check cannot silently do
something other than what its author meant.
"""
from __future__ import annotations

import re
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from vipd.confparse import (
    BAD, Bad, Table, abs_path, argv, array, boolean, choice, env_name, host_port, integer, seconds,
    short_name, show, string, toml_key,
)


@dataclass(frozen=True)
class HttpCheck:
    """GET a URL (HTTP/1.1); healthy on the expected status and, if set, body substring."""
    http: str
    expect_status: int = 200
    expect_body: str | None = None
    insecure: bool = False          # https: skip certificate verification


@dataclass(frozen=True)
class TcpCheck:
    """Healthy when a TCP connect succeeds within the timeout."""
    tcp: str                        # "host:port"


@dataclass(frozen=True)
class RedisCheck:
    """PING; optionally the role and, for a replica, being in sync (as checks/redis --synced)."""
    redis: str                      # "host:port"
    role: str = "any"
    synced: bool = False
    max_lag: float = 30.0           # seconds since the replica last heard from its primary
    password_env: str | None = None
    password_file: str | None = None


@dataclass(frozen=True)
class SentinelCheck:
    """Healthy where the primary that a majority of the sentinels can be asked names is local."""
    sentinels: tuple[str, ...]      # "host:port" each
    master_name: str
    password_env: str | None = None
    password_file: str | None = None


BuiltinCheck = HttpCheck | TcpCheck | RedisCheck | SentinelCheck


@dataclass(frozen=True)
class CheckConfig:
    name: str
    command: tuple[str, ...] = ()   # a program check, or ...
    interval: float = 1.0
    timeout: float = 1.0
    rise: int = 2
    fall: int = 2
    weight: int = 0
    builtin: BuiltinCheck | None = None   # ... one run on the event loop (vipd/probes)

    @property
    def kind(self) -> str:
        return "command" if self.builtin is None else _CHECK_KIND_KEY[type(self.builtin)]


def _http_url(value: Any) -> str:
    m = isinstance(value, str) and re.fullmatch(r"https?://[^/\s?#]+[^\s]*", value)
    if not m:
        raise Bad(f'must be an http:// or https:// URL like "http://127.0.0.1/health", '
                   f"got {show(value)}")
    return value

_PASSWORD_KEYS = {"password_env": env_name, "password_file": abs_path}
# What each built-in check reads: its kind key (required), then its own options.
_BUILTIN_KEYS: dict[type, dict[str, Callable[[Any], Any]]] = {
    HttpCheck: {"http": _http_url, "expect_status": integer(100, 599),
                "expect_body": string, "insecure": boolean},
    TcpCheck: {"tcp": host_port(None)},
    RedisCheck: {"redis": host_port(6379), "role": choice("any", "master", "replica"),
                 "synced": boolean, "max_lag": seconds(0, lo_open=True), **_PASSWORD_KEYS},
    SentinelCheck: {"sentinels": array(host_port(26379), unique=str, nonempty=True,
                                        what='a non-empty array of "HOST:PORT"'),
                    "master_name": string, **_PASSWORD_KEYS},
}
_CHECK_KIND_KEY = {cls: next(iter(keys)) for cls, keys in _BUILTIN_KEYS.items()}
_KIND_CLASS = {kind: cls for cls, kind in _CHECK_KIND_KEY.items()}
_CHECK_KINDS = ("command", *_KIND_CLASS)
_OPTION_KINDS: dict[str, list[str]] = {}     # option key -> the kinds that have it
for _cls, _keys in _BUILTIN_KEYS.items():
    for _opt in list(_keys)[1:]:
        _OPTION_KINDS.setdefault(_opt, []).append(_CHECK_KIND_KEY[_cls])


def _ignore(t: Table, key: str, reason: str) -> None:
    """Report a key that is wrong where it stands (so it is not also called unknown)."""
    t.get(key, lambda v: v)
    t.values.pop(key)
    t.problem(key, reason)


def _builtin(t: Table, kind: str | None) -> BuiltinCheck | None:
    """The built-in check ``kind`` names with its options (None for a command check).

    Options of another kind are errors, so that a check cannot silently do something other than
    what its author meant (say, expect_status on a tcp check)."""
    cls = _KIND_CLASS.get(kind)
    own = _BUILTIN_KEYS.get(cls, {})
    values: dict[str, Any] = {}
    for key in list(t.raw):
        if key != kind and key in own:
            values[key] = t.get(key, own[key])
            t.values.pop(key)
        elif key in _OPTION_KINDS and key not in own:
            _ignore(t, key, "only valid in a check with "
                    + " or ".join(f"{k} = ..." for k in _OPTION_KINDS[key]))
    if cls is None:
        return None
    values[kind] = t.values.pop(kind)
    ok = all(v is not BAD for v in values.values())
    if "password_env" in values and "password_file" in values:
        t.problem("password_file", "give password_env or password_file, not both")
        ok = False
    if cls is SentinelCheck and "master_name" not in values:
        t.problem("master_name", "required key is missing (the name the sentinels monitor)")
        ok = False
    return cls(**values) if ok else None

def _check(name: str, raw: Any) -> CheckConfig:
    t = Table(raw, CheckConfig)
    try:
        short_name(name)
    except Bad as bad:
        t.problems.append(("", "check name " + bad.problems[0][1]))
    kinds = [k for k in _CHECK_KINDS if k in t.raw]
    if not kinds and isinstance(raw, dict):
        t.problems.append(("", "needs exactly one of " + ", ".join(_CHECK_KINDS)
                           + " (what to check)"))
    for extra in kinds[1:]:
        _ignore(t, extra, f"a check does one thing and this one already has {kinds[0]} = ...")
    kind = kinds[0] if kinds else None
    if kind == "command":
        t.get("command", argv)
    elif kind:
        t.get(kind, _BUILTIN_KEYS[_KIND_CLASS[kind]][kind])
    if "password" in t.raw:
        _ignore(t, "password", "a password never goes in the config text: "
                               "use password_env (a variable name) or password_file (root-only)")
    t.values["builtin"] = _builtin(t, kind)
    t.get("interval", seconds(0, lo_open=True))
    t.get("timeout", seconds(0, lo_open=True))
    t.get("rise", integer(1))
    t.get("fall", integer(1))
    t.get("weight", integer(-254, 254))
    return t.build(name=name)


def parse_checks(raw: Any) -> Mapping[str, CheckConfig]:
    if not isinstance(raw, dict):
        raise Bad(f"must be a table of [checks.NAME] tables, got {show(raw)}")
    checks, problems = {}, []
    for name, body in raw.items():
        try:
            checks[name] = _check(name, body)
        except Bad as bad:
            problems += bad.under(toml_key(name))
    if problems:
        raise Bad(problems)
    return types.MappingProxyType(checks)
