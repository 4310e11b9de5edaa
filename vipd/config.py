"""vipd's configuration: TOML -> frozen dataclasses.

Validation never stops at the first mistake: ``vipd check-config`` must show an operator every
error at once, each with its file, key path (``instance[0].priority``) and what was expected vs
got. Parsers therefore report problems as ``(relative key, reason)`` pairs that the enclosing table
prefixes with its own key; nothing raises until the whole document has been read.

Whether programs exist or may be executed is not checked here: that depends on the host the
config is deployed to, not on the file.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import re
import socket
import tomllib
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from vipd.confchecks import CheckConfig, parse_checks
from vipd.confparity import (  # noqa: F401  (re-exported: the parity keys' types)
    SCOPES, HeldVip, TrackFile, VirtualRoute, VirtualRule, held_vip, parity_keys, vmac_clashes,
)
from vipd.confparse import (
    BAD, REQUIRED, Bad, Table, abs_path, argv, array, boolean, choice, did_you_mean, env_name,
    first_family, host_port, ifname, in_family, integer, plain_address, seconds, short_name, show,
    string, vip,
)
from vipd.core.paths import HeartbeatPath

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


# ---- public types ---------------------------------------------------------------------------


class ConfigIssue(NamedTuple):
    file: str
    key: str        # "" when the issue is about the whole file (unreadable, not UTF-8)
    reason: str

    def __str__(self) -> str:
        if not self.key:
            return f"{self.file}: {self.reason}"
        return f"{self.file}: {self.key}: {self.reason}"


class ConfigError(Exception):
    def __init__(self, issues: list[ConfigIssue]):
        super().__init__(issues)
        self.issues = issues

    def __str__(self) -> str:
        return "\n".join(str(issue) for issue in self.issues)


@dataclass(frozen=True)
class TrackCheck:
    name: str
    weight: int | None = None       # None: use the check's own weight
    reverse: bool = False           # weight applies while the check passes (keepalived "reverse")


@dataclass(frozen=True)
class TrackInterface:
    name: str
    weight: int = 0                 # 0: link down puts the instance in FAULT
    reverse: bool = False           # weight applies (or FAULT) while the link is up


@dataclass(frozen=True)
class NotifyConfig:
    master: tuple[str, ...] = ()
    backup: tuple[str, ...] = ()
    fault: tuple[str, ...] = ()
    stop: tuple[str, ...] = ()
    timeout: float = 10.0


@dataclass(frozen=True)
class DataSourceConfig:
    """The Redis whose data decides a split brain (docs/data-safety.md): ours at host:port, the
    peer's at the advert's source address and peer_port."""
    redis: str                          # "HOST:PORT" ("[v6]:PORT"), as for a redis check
    peer_port: int | None = None        # None: the same port as ours
    password_env: str | None = None
    password_file: str | None = None
    timeout: float = 0.5                # per comparison (both INFOs together)

    @property
    def host(self) -> str:
        return self.redis.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.redis.rsplit(":", 1)[1])

    @property
    def peer_redis_port(self) -> int:
        return self.port if self.peer_port is None else self.peer_port


@dataclass(frozen=True)
class InstanceConfig:
    name: str
    interface: str
    vrid: int
    priority: int = 100
    version: int = 3
    advert_interval: float = 1.0
    vips: tuple[IPInterface, ...] = ()
    family: int = 4
    failback: str = "auto"
    preempt_delay: float = 0.0
    track_checks: tuple[TrackCheck, ...] = ()
    track_interfaces: tuple[TrackInterface, ...] = ()
    failback_gate: tuple[str, ...] = ()
    unicast_peers: tuple[str, ...] = ()
    unicast_src: str | None = None
    auth_pass: str | None = None
    checksum: str = "pseudo-header"
    garp_repeat: int = 5
    garp_interval: float = 0.05
    garp_refresh: float = 0.0
    notify: NotifyConfig = NotifyConfig()
    data_source: DataSourceConfig | None = None
    heartbeat: tuple[HeartbeatPath, ...] = ()
    # parity keys (DESIGN.md "Parity keys")
    excluded_vips: tuple[IPInterface, ...] = ()
    placed: tuple[HeldVip, ...] = ()        # the vips/excluded_vips entries given as tables
    track_files: tuple[TrackFile, ...] = ()
    garp_delay: float = 0.0
    use_vmac: bool = False
    vmac_interface: str | None = None
    virtual_routes: tuple[VirtualRoute, ...] = ()
    virtual_rules: tuple[VirtualRule, ...] = ()

    @property
    def held(self) -> tuple[HeldVip, ...]:
        """Every address held while MASTER (vips, then excluded_vips) with its placement."""
        placed = {h.address: h for h in self.placed}
        return tuple(placed.get(a) or HeldVip(a, excluded=excl)
                     for excl, addrs in ((False, self.vips), (True, self.excluded_vips))
                     for a in addrs)

    @property
    def vmac_name(self) -> str | None:
        """The macvlan interface the VIPs live on with use_vmac (keepalived's vrrp.<vrid>)."""
        if not self.use_vmac:
            return None
        return self.vmac_interface or f"vrrp.{self.vrid}"

    @property
    def vip_dev(self) -> str:
        """Where VIPs without their own dev go: the VMAC interface, else the instance's."""
        return self.vmac_name or self.interface

    @property
    def adver_int_cs(self) -> int:
        """Advertisement interval in centiseconds, the unit of the VRRPv3 header field."""
        return round(self.advert_interval * 100)


@dataclass(frozen=True)
class SyncGroupConfig:
    """keepalived vrrp_sync_group: instances that are MASTER together and leave together."""
    name: str
    instances: tuple[str, ...]
    notify: NotifyConfig = NotifyConfig()


@dataclass(frozen=True)
class GlobalConfig:
    router_id: str = dataclasses.field(default_factory=socket.gethostname)
    socket: str = "/run/vipd/vipd.sock"
    script_user: str | None = None
    log_level: str = "info"
    metrics: str | None = None      # "HOST:PORT" serving Prometheus /metrics; None: off


@dataclass(frozen=True)
class Config:
    path: str
    global_: GlobalConfig
    checks: Mapping[str, CheckConfig]
    instances: tuple[InstanceConfig, ...]
    sync_groups: tuple[SyncGroupConfig, ...] = ()

    def sync_group_of(self, instance: str) -> SyncGroupConfig | None:
        for group in self.sync_groups:
            if instance in group.instances:
                return group
        return None

    def instance(self, name: str) -> InstanceConfig:
        for inst in self.instances:
            if inst.name == name:
                return inst
        raise KeyError(f"no instance named {name!r}")


# ---- section and instance parsers -----------------------------------------------------------


def _tracked(cls: type, name_parse: Callable[[Any], str],
             weight_parse: Callable[[Any], int]) -> Callable[[Any], Any]:
    """A track_checks / track_interfaces entry: a bare name, or {name = ..., weight = ...}."""
    def parse(value: Any) -> Any:
        if isinstance(value, str):
            return cls(name=name_parse(value))
        t = Table(value, cls, "a name or an inline table {name = ..., weight = ..., reverse = ...}")
        t.get("name", name_parse, REQUIRED)
        t.get("weight", weight_parse)
        t.get("reverse", boolean)
        return t.build()
    return parse


def _heartbeat_path(family: int | None) -> Callable[[Any], HeartbeatPath]:
    """One heartbeat path: {interface = ..., peers = [...], source = ...} (issue 14)."""
    def addr(what: str) -> Callable[[Any], Any]:
        return lambda v: str(in_family(family, plain_address, what)(v))

    def parse(value: Any) -> HeartbeatPath:
        t = Table(value, HeartbeatPath, "an inline table {interface = ..., peers = [...],"
                                         " source = ...}")
        t.get("interface", ifname, REQUIRED)
        t.get("peers", array(addr("the VIPs are"), unique=str, nonempty=True,
                              what="a non-empty array of addresses"), REQUIRED)
        t.get("source", addr("the VIPs are"), REQUIRED)
        if t.ok("peers", "source") and t.values["source"] in t.values["peers"]:
            t.problem("source", f"{show(t.values['source'])} is also listed in peers")
        return t.build()
    return parse


def _check_ref(defined: list[str] | None) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        name = string(value)
        if defined is not None and name not in defined:
            raise Bad(f"no check {show(name)} is defined in [checks]"
                       + did_you_mean(name, defined))
        return name
    return parse


def _notify(raw: Any) -> NotifyConfig:
    t = Table(raw, NotifyConfig)
    for hook in ("master", "backup", "fault", "stop"):
        t.get(hook, argv)
    t.get("timeout", seconds(0, lo_open=True))
    return t.build()


def _data_source(raw: Any) -> DataSourceConfig:
    t = Table(raw, DataSourceConfig, 'an inline table like { redis = "127.0.0.1:6379" }')
    t.get("redis", host_port(6379), REQUIRED)
    t.get("peer_port", integer(1, 65535))
    env = t.get("password_env", env_name)
    path = t.get("password_file", abs_path)
    t.get("timeout", seconds(0.01, 5))
    if env not in (None, BAD) and path not in (None, BAD):
        t.problem("password_file", "give password_env or password_file, not both")
    return t.build()


def _global(raw: Any) -> GlobalConfig:
    t = Table(raw, GlobalConfig)
    t.get("router_id", string)
    t.get("socket", abs_path)
    t.get("script_user", string)
    t.get("log_level", choice("debug", "info", "warning", "error"))
    t.get("metrics", _listen_address)
    return t.build()


def _listen_address(value: Any) -> str:
    """ "HOST:PORT" or "[V6]:PORT" with a literal address, so nothing is resolved at load time."""
    text = string(value)
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d+)|([0-9.]+):(\d+)", text)
    try:
        ipaddress.ip_address(m[1] or m[3])
        if not 1 <= int(m[2] or m[4]) <= 65535:
            raise ValueError
    except (TypeError, ValueError):
        raise Bad('must be "ADDRESS:PORT" (e.g. "127.0.0.1:9650" or "[::1]:9650"), '
                   f"got {show(value)}") from None
    return text


def _garp_refresh(value: Any) -> float:
    period = seconds(0, 86400)(value)
    if 0 < period < 1:
        raise Bad(f"must be 0 (off) or 1..86400 seconds, got {show(value)}")
    return period


def _advert_interval_for(version: int, interval: float) -> str | None:
    """Why the interval cannot be encoded in this version's header, or None if it can."""
    if version == 3:
        # a 12-bit field of centiseconds (RFC 5798 5.2.7)
        cs = interval * 100
        if not 1 <= round(cs) <= 4095 or abs(cs - round(cs)) > 1e-6:
            return f"must be 0.01..40.95 seconds in steps of 0.01 for version 3, got {interval:g}"
    elif interval != int(interval) or not 1 <= interval <= 255:
        # an 8-bit field of whole seconds (RFC 3768 5.3.7)
        return f"must be whole seconds 1..255 for version 2, got {interval:g}"
    return None


def _instance(raw: Any, check_names: list[str] | None) -> Table:
    """Read one [[instance]]; the table is returned (not built) so that the caller can compare
    instances with each other even when one of them has errors."""
    t = Table(raw, InstanceConfig)
    family = first_family(t.raw.get("vips"))
    t.get("name", short_name, REQUIRED)
    t.get("interface", ifname, REQUIRED)
    t.get("vrid", integer(1, 255), REQUIRED)
    t.get("priority", integer(1, 255))
    version = t.get("version", choice(2, 3))
    interval = t.get("advert_interval", seconds(0, lo_open=True))
    held = t.get("vips", array(held_vip(in_family(family, vip, "the first VIP is"), False),
                                unique=lambda h: h.address.ip, nonempty=True,
                                what="a non-empty array of addresses"), REQUIRED)
    t.get("failback", choice("auto", "semi-auto", "none"))
    t.get("preempt_delay", seconds(0, 3600))
    t.get("track_checks", array(_tracked(TrackCheck, _check_ref(check_names),
                                          integer(-254, 254)), unique=lambda tc: tc.name))
    t.get("track_interfaces", array(_tracked(TrackInterface, ifname, integer(-254, 254)),
                                     unique=lambda ti: ti.name))
    t.get("failback_gate", array(_check_ref(check_names), unique=str))
    peers = t.get("unicast_peers", array(in_family(family, plain_address, "the VIPs are"),
                                              unique=str))
    src = t.get("unicast_src", in_family(family, plain_address, "the VIPs are"))
    auth = t.get("auth_pass", string)
    checksum = t.get("checksum", choice("pseudo-header", "vrrp-only"))
    t.get("garp_repeat", integer(1, 100))
    t.get("garp_interval", seconds(0, 10))
    t.get("garp_refresh", _garp_refresh)
    t.get("notify", _notify)
    data = t.get("data_source", _data_source)
    parity_keys(t, family, held)
    paths = t.get("heartbeat", array(_heartbeat_path(family), unique=lambda h: h.interface))

    if t.ok("version", "advert_interval"):
        if reason := _advert_interval_for(version, interval):
            t.problem("advert_interval", reason)
    if version == 2 and family == 6:
        t.problem("version", "IPv6 VIPs need VRRP version 3, got 2")
    if auth is not None and auth is not BAD:
        if version == 3:
            t.problem("auth_pass", "only valid with version = 2 (VRRPv3 has no authentication)")
        elif len(auth.encode()) > 8:
            t.problem("auth_pass", f"must be 1..8 bytes, got {len(auth.encode())} bytes")
    if checksum == "vrrp-only" and family == 6:
        t.problem("checksum", '"vrrp-only" applies to VRRPv3 over IPv4; '
                              "IPv6 always uses the pseudo-header")
    if data not in (None, BAD) and t.values.get("failback", "auto") == "auto" \
            and not t.values.get("failback_gate"):
        # After a data yield the stale host is a backup with the higher priority: auto would take
        # the role straight back, before its Redis has caught up from the newer one.
        t.problem("data_source", 'with failback = "auto" a failback_gate is needed (a check'
                                 ' that passes once the local Redis is an in-sync replica)')
    if peers is not BAD:
        t.values["unicast_peers"] = tuple(str(p) for p in peers)
    if src is not BAD and src is not None:
        t.values["unicast_src"] = str(src)
    if paths and paths is not BAD and t.ok("interface"):
        for i, hb in enumerate(paths):
            if hb.interface == t.values["interface"]:
                t.problems.append((f"heartbeat[{i}].interface", "is the instance's own interface;"
                                   " a heartbeat path must be another link"))
    t.values["family"] = family or 4
    return t


def _instances(raw: Any, check_names: list[str] | None) -> tuple[InstanceConfig, ...]:
    if not isinstance(raw, list) or not raw:
        raise Bad("must be one or more [[instance]] tables, got "
                   + (show(raw) if raw != [] else "none"))
    tables = [_instance(item, check_names) for item in raw]
    names: dict[str, int] = {}
    vrids: dict[tuple, int] = {}
    for i, t in enumerate(tables):
        if t.ok("name"):
            name = t.values["name"]
            if name in names:
                t.problem("name", f"{show(name)} is already the name of instance[{names[name]}]")
            names.setdefault(name, i)
        if t.ok("interface", "vrid", "vips"):
            # RFC 5798 allows one VRID per interface and family: IPv4 and IPv6 routers are apart
            where = (t.values["interface"], t.values["vrid"], t.values["family"])
            if where in vrids:
                t.problem("vrid", f"VRID {where[1]} on {where[0]} (IPv{where[2]}) is already used "
                                  f"by instance[{vrids[where]}]")
            vrids.setdefault(where, i)
    vmac_clashes(tables)
    for i, t in enumerate(tables):
        # Heartbeat sockets are demultiplexed by VRID like the VIP segment's: a path must not
        # share its interface and VRID with another instance's segment or path.
        if t.ok("heartbeat", "vrid", "vips") and t.values["heartbeat"]:
            for j, hb in enumerate(t.values["heartbeat"]):
                where = (hb.interface, t.values["vrid"], t.values["family"])
                if where in vrids and vrids[where] != i:
                    t.problems.append((f"heartbeat[{j}].interface",
                                       f"VRID {where[1]} on {where[0]} (IPv{where[2]}) is already"
                                       f" used by instance[{vrids[where]}]"))
                vrids.setdefault(where, i)
    built, problems = [], []
    for i, t in enumerate(tables):
        try:
            built.append(t.build())
        except Bad as bad:
            problems += bad.under(f"[{i}]")
    if problems:
        raise Bad(problems)
    return tuple(built)


# ---- sync groups (DESIGN.md "Parity keys") ---------------------------------------------------


def _sync_group(raw: Any, instance_names: list[str]) -> SyncGroupConfig:
    t = Table(raw, SyncGroupConfig)
    t.get("name", short_name, REQUIRED)
    t.get("instances", array(_instance_ref(instance_names), unique=str, nonempty=True,
                              what="a non-empty array of instance names"), REQUIRED)
    t.get("notify", _notify)
    return t.build()


def _instance_ref(defined: list[str]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        name = string(value)
        if name not in defined:
            raise Bad(f"no [[instance]] is named {show(name)}" + did_you_mean(name, defined))
        return name
    return parse


def _sync_groups(raw: Any, instance_names: list[str]) -> tuple[SyncGroupConfig, ...]:
    if not isinstance(raw, list):
        raise Bad(f"must be [[sync_group]] tables, got {show(raw)}")
    groups, problems, names, member_of = [], [], {}, {}
    for i, item in enumerate(raw):
        try:
            group = _sync_group(item, instance_names)
        except Bad as bad:
            problems += bad.under(f"[{i}]")
            continue
        if group.name in names:
            problems.append((f"[{i}].name", f"{show(group.name)} is already the name of "
                                            f"sync_group[{names[group.name]}]"))
        names.setdefault(group.name, i)
        for j, member in enumerate(group.instances):
            if member in member_of:
                problems.append((f"[{i}].instances[{j}]", f"{show(member)} is already in "
                                                         f"sync_group[{member_of[member]}]"))
            member_of.setdefault(member, i)
        groups.append(group)
    if problems:
        raise Bad(problems)
    return tuple(groups)


# ---- entry points ---------------------------------------------------------------------------


def loads(text: str, path: str = "<string>") -> Config:
    """Parse and validate a config document; raise ConfigError listing every problem."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([_syntax_issue(path, str(e))]) from None
    raw_checks = doc.get("checks", {})
    check_names = list(raw_checks) if isinstance(raw_checks, dict) else None
    t = Table(doc, Config)
    t.get("global", _global, GlobalConfig())
    t.get("checks", parse_checks, types.MappingProxyType({}))
    if "instance" not in doc:
        t.problem("instance", "missing: a config needs at least one [[instance]] table")
    instances = t.get("instance", lambda raw: _instances(raw, check_names), ())
    raw_instances = doc.get("instance")
    instance_names = [i.get("name") for i in raw_instances if isinstance(i, dict)] \
        if isinstance(raw_instances, list) else []
    t.get("sync_group", lambda raw: _sync_groups(raw, instance_names), ())
    t.finish()
    if t.problems:
        raise ConfigError([ConfigIssue(path, key, reason) for key, reason in t.problems])
    return Config(path=path, global_=t.values["global"], checks=t.values["checks"],
                  instances=instances, sync_groups=t.values["sync_group"])


def load(path: str) -> Config:
    """Read and validate the config file at ``path``; raise ConfigError listing every problem."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ConfigError([ConfigIssue(path, "", f"cannot read: {e.strerror or e}")]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError([ConfigIssue(path, "", f"not UTF-8 text (byte {e.start})")]) from None
    return loads(text, path)


def _syntax_issue(path: str, message: str) -> ConfigIssue:
    # tomllib (3.11) gives the position only inside the message: "... (at line 3, column 5)"
    m = re.fullmatch(r"(.*) \(at (line \d+, column \d+|end of document)\)", message, re.S)
    if not m:
        return ConfigIssue(path, "", f"TOML syntax error: {message}")
    return ConfigIssue(path, m[2], f"TOML syntax error: {m[1]}")


def diff_instances(old: Config, new: Config) -> tuple[set[str], set[str], set[str], set[str]]:
    """(added, removed, changed, unchanged) instance names between two configs, for reload.

    An instance is changed also when only the definition of a check it uses changed, since the
    check runner and the priority it feeds must be rebuilt.
    """
    old_by = {inst.name: inst for inst in old.instances}
    new_by = {inst.name: inst for inst in new.instances}
    added = new_by.keys() - old_by.keys()
    removed = old_by.keys() - new_by.keys()
    changed, unchanged = set(), set()
    for name in old_by.keys() & new_by.keys():
        before, after = old_by[name], new_by[name]
        used = {tc.name for tc in after.track_checks} | set(after.failback_gate)
        # membership of a sync group changes how the core elects (RouterParams.synced)
        groups = [(g.name, g.instances) if g else None
                  for g in (old.sync_group_of(name), new.sync_group_of(name))]
        if before != after or any(old.checks.get(c) != new.checks.get(c) for c in used) \
                or groups[0] != groups[1]:
            changed.add(name)
        else:
            unchanged.add(name)
    return set(added), set(removed), changed, unchanged
