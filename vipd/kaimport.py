"""``vipd import-keepalived``: a keepalived.conf tree (vipd.kaconf) as a vipd config, and a report
that accounts for every keyword: mapped (to which vipd key) or not carried over (and why).

Where keepalived's defaults differ from vipd's the keepalived value is written out: VRRP version
2, script rise/fall 1, a script's timeout = its interval, a 5 s second GARP burst.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from vipd import kaitems, tomlout
from vipd.kaconf import Node
from vipd.kainstance import NO_EMAIL, SCALARS, InstanceMapper

LVS = {"virtual_server", "virtual_server_group", "real_server", "lvs_sync_daemon",
       "lvs_sync_daemon_interface", "lvs_id", "lvs_timeouts", "lvs_flush", "lvs_flush_onstop",
       "checker_process_name", "checker_priority", "checker_no_swap", "checker_cpu_affinity",
       "checker_rt_priority", "checker_rlimit_rttime", "checker_log_all_failures"}
STATIC = ("always-present addresses, routes and rules belong in the host's network configuration;"
          " vipd manages only what follows the VRRP state")
GLOBAL_DROPPED = {
    "notification_email": NO_EMAIL, "notification_email_from": NO_EMAIL,
    "smtp_server": NO_EMAIL, "smtp_connect_timeout": NO_EMAIL, "smtp_helo_name": NO_EMAIL,
    "smtp_alert": NO_EMAIL, "smtp_alert_vrrp": NO_EMAIL, "smtp_alert_checker": NO_EMAIL,
    "vrrp_strict": "vipd has no strict mode; what strict mode forbids (authentication) is "
                   "dropped as keepalived drops it",
    "vrrp_iptables": "vipd sets no firewall rules", "vrrp_ipsets": "vipd sets no firewall rules",
    "vrrp_mcast_group4": "vipd uses 224.0.0.18", "vrrp_mcast_group6": "vipd uses ff02::12",
    "enable_traps": "vipd has no SNMP", "enable_snmp_vrrp": "vipd has no SNMP",
    "dynamic_interfaces": "vipd needs its interfaces at start",
    "vrrp_no_swap": "no vipd equivalent", "vrrp_rt_priority": "no vipd equivalent",
    "vrrp_priority": "no vipd equivalent", "vrrp_cpu_affinity": "no vipd equivalent",
    "max_auto_priority": "no vipd equivalent", "vrrp_check_unicast_src": "vipd always checks "
    "that unicast adverts come from a listed peer",
}

@dataclass
class Entry:
    file: str
    line: int
    keyword: str
    mapped: bool
    detail: str

    def __str__(self) -> str:
        what = "mapped" if self.mapped else "not carried over"
        return f"{self.file}:{self.line}: {self.keyword}: {what}: {self.detail}"


@dataclass
class Result:
    doc: dict = field(default_factory=dict)
    entries: list[Entry] = field(default_factory=list)

    def mapped(self, node: Node, to: str, keyword: str | None = None) -> None:
        self.entries.append(Entry(node.file, node.line, keyword or node.keyword, True, to))

    def dropped(self, node: Node, why: str, keyword: str | None = None) -> None:
        self.entries.append(Entry(node.file, node.line, keyword or node.keyword, False, why))

    def report(self) -> str:
        lines = [str(e) for e in self.entries]
        n = sum(not e.mapped for e in self.entries)
        lines.append(f"{len(self.entries)} keyword(s): {len(self.entries) - n} mapped, "
                     f"{n} not carried over")
        return "\n".join(lines)


class Importer:
    def __init__(self, nodes: list[Node]) -> None:
        self.nodes = nodes
        self.r = Result()
        self.glob: dict = {}
        self.version = 2                 # keepalived's default (vipd's is 3)
        self.strict = False
        self.garp: dict = {"garp_delay": 5.0}     # keepalived's vrrp_garp_master_delay default
        self.scripts: dict[str, dict] = {}        # vrrp_script name -> [checks.NAME] body
        self.script_nodes: dict[str, Node] = {}
        self.files: dict[str, dict] = {}          # vrrp_track_file name -> {path, weight}
        self.instances: list[dict] = []
        self.groups: list[dict] = []

    def run(self) -> Result:
        for n in self.nodes:
            if n.keyword == "global_defs":
                self.r.mapped(n, "[global] and instance defaults")
                self._global(n)
        for n in self.nodes:
            k = n.keyword
            if k == "global_defs":
                continue
            if k == "vrrp_script":
                self._script(n)
            elif k in ("vrrp_track_file", "track_file"):
                self._track_file_def(n)
            elif k in ("vrrp_instance", "vrrp_sync_group"):
                continue
            elif k in LVS:
                self.r.dropped(n, "out of scope: LVS (IPVS) load balancing")
            elif k in ("static_ipaddress", "static_routes", "static_rules"):
                self.r.dropped(n, STATIC)
            elif k == "net_namespace":
                self.r.dropped(n, "run vipd inside the namespace instead (ip netns exec)")
            elif k in ("vrrp_track_process", "track_process"):
                self.r.dropped(n, "no vipd equivalent: a check with /usr/lib/vipd/checks/process")
            else:
                self.r.dropped(n, "unknown or unsupported keyword")
        for n in self.nodes:
            if n.keyword == "vrrp_instance":
                self._instance(n)
        names = [i["name"] for i in self.instances]
        for n in self.nodes:
            if n.keyword == "vrrp_sync_group":
                self._group(n, names)
        doc = {}
        if self.glob:
            doc["global"] = self.glob
        used = {t if isinstance(t, str) else t["name"] for i in self.instances
                for t in i.get("track_checks", ())}
        doc["checks"] = {k: v for k, v in self.scripts.items() if k in used}
        for k in sorted(self.scripts.keys() - used):
            self.r.dropped(self.script_nodes[k], "tracked by no instance (keepalived does not "
                                                 "run it either)", f"vrrp_script {k}")
        first = self.nodes[0].file if self.nodes else ""
        self.r.entries.sort(key=lambda e: (e.file != first, e.file, e.line))
        doc["instance"] = self.instances
        doc["sync_group"] = self.groups
        self.r.doc = doc
        return self.r

    # ---- global_defs ------------------------------------------------------------------------

    def _global(self, g: Node) -> None:
        for n in g.child_lines():
            k, a = n.keyword, n.args
            if k == "router_id" and a:
                self.glob["router_id"] = a[0]
                self.r.mapped(n, "global.router_id")
            elif k == "vrrp_version" and a in (["2"], ["3"]):
                self.version = int(a[0])
                self.r.mapped(n, "version of every instance that sets none")
            elif k == "script_user" and a:
                self.glob["script_user"] = a[0]
                self.r.mapped(n, "global.script_user" + (" (group not carried over: the "
                                                          "user's own group is used)" if a[1:] else ""))
            elif k == "enable_script_security":
                self.r.mapped(n, "vipd always refuses unsafe programs when run as root")
            elif k.startswith("vrrp_garp_master_") and k[5:] in SCALARS and a:
                key, conv = SCALARS[k[5:]]          # instance defaults
                self.garp[key] = conv(a[0])
                self.r.mapped(n, f"{key} of every instance")
            elif k in ("vrrp_garp_interval", "vrrp_gna_interval") and a:
                self.garp["garp_interval"] = float(a[0])
                self.r.mapped(n, "garp_interval of every instance (one gap for GARP and NA)")
            elif k == "vrrp_skip_check_adv_addr":
                self.r.mapped(n, "vipd never drops adverts whose address list differs "
                                 "(it logs and counts them)")
            elif k == "vrrp_strict":
                self.strict = True
                self.r.dropped(n, GLOBAL_DROPPED[k])
            elif k in GLOBAL_DROPPED:
                self.r.dropped(n, GLOBAL_DROPPED[k])
            elif k.startswith(("lvs_", "checker_")) or k in LVS:
                self.r.dropped(n, "out of scope: LVS (IPVS) load balancing")
            else:
                self.r.dropped(n, "no vipd equivalent")

    # ---- vrrp_script, track files ------------------------------------------------------------

    def _script(self, s: Node) -> None:
        name = kaitems.name(s.args[0]) if s.args else "_"
        body: dict = {}
        interval = 1.0
        timeout = None
        self.r.mapped(s, f"[checks.{name}]", f"vrrp_script {s.args[0] if s.args else ''}")
        for n in s.child_lines():
            k, a = n.keyword, n.args
            if k == "script" and a:
                argv, notes = kaitems.command(" ".join(a))
                body["command"] = argv
                self.r.mapped(n, f"checks.{name}.command" + "".join(f" ({x})" for x in notes))
            elif k == "interval" and a:
                interval = float(a[0])
                self.r.mapped(n, f"checks.{name}.interval")
            elif k == "timeout" and a:
                timeout = float(a[0])
                self.r.mapped(n, f"checks.{name}.timeout")
            elif k in ("rise", "fall") and a:
                body[k] = int(a[0])
                self.r.mapped(n, f"checks.{name}.{k}")
            elif k == "weight" and a:
                body["weight"] = int(a[0])
                if a[1:] == ["reverse"]:
                    body["_reverse"] = True
                self.r.mapped(n, f"checks.{name}.weight"
                              + (" (reverse: on the track_checks entries)" if a[1:] else ""))
            elif k == "user":
                self.r.dropped(n, "vipd runs every check as [global] script_user")
            elif k == "init_fail":
                self.r.mapped(n, "vipd counts a check as failing until its first result")
            else:
                self.r.dropped(n, "no vipd equivalent")
        if "command" not in body:
            self.r.dropped(s, "no script: keepalived ignores it", "vrrp_script")
            return
        out = {"command": body["command"], "interval": interval,
               "timeout": timeout if timeout is not None else interval,
               "rise": body.get("rise", 1), "fall": body.get("fall", 1)}
        if "weight" in body:
            out["weight"] = body["weight"]
        if body.get("_reverse"):
            out["_reverse"] = True
        self.scripts[name] = out
        self.script_nodes[name] = s

    def _track_file_def(self, t: Node) -> None:
        name = t.args[0] if t.args else ""
        spec = {"weight": 1}
        for n in t.child_lines():
            if n.keyword == "file" and n.args:
                spec["path"] = n.args[0]
                self.r.mapped(n, "track_files[].path")
            elif n.keyword == "weight" and n.args:
                spec["weight"] = int(n.args[0])
                if n.args[1:] == ["reverse"]:
                    spec["reverse"] = True
                self.r.mapped(n, "track_files[].weight")
            else:
                self.r.dropped(n, "no vipd equivalent")
        if "path" in spec:
            self.files[name] = {"path": spec.pop("path"), **spec}
            self.r.mapped(t, "track_files entries of the instances that track it",
                          f"{t.keyword} {name}")
        else:
            self.r.dropped(t, "no file given", f"{t.keyword} {name}")

    # ---- vrrp_instance -----------------------------------------------------------------------

    def _instance(self, inst: Node) -> None:
        out = InstanceMapper(self, inst).run()
        if out is not None:
            self.instances.append(out)

    # ---- vrrp_sync_group ---------------------------------------------------------------------

    def _group(self, g: Node, names: list[str]) -> None:
        name = kaitems.name(g.args[0]) if g.args else "_"
        members: list[str] = []
        notify: dict = {}
        generic: list[str] = []
        for n in g.child_lines():
            k = n.keyword
            if k == "group":
                for m in n.child_lines():
                    member = kaitems.name(m.keyword)
                    if member in names and member not in members:
                        members.append(member)
                    else:
                        self.r.dropped(m, f"no vrrp_instance {m.keyword} was imported",
                                       f"group member {m.keyword}")
                self.r.mapped(n, f"sync_group {name} instances")
            elif k in ("notify_master", "notify_backup", "notify_fault", "notify_stop"):
                argv, notes = kaitems.notify_argv(n.args)
                notify[k[len("notify_"):]] = argv
                self.r.mapped(n, f"sync_group.notify.{k[7:]}" + "".join(f" ({x})" for x in notes))
            elif k == "notify":
                generic, _ = kaitems.generic_notify(n.args, group=True)
                self.r.mapped(n, "sync_group.notify.* through keepalived-notify "
                                 '(the script gets "GROUP" NAME STATE PRIORITY)')
            elif k == "smtp_alert":
                self.r.dropped(n, NO_EMAIL)
            elif k in names or kaitems.name(k) in names:
                self.r.dropped(n, "old sync group syntax (names outside group { }): keepalived "
                                  "2 rejects it", f"group member {k}")
            else:
                self.r.dropped(n, "no vipd equivalent")
        if generic:
            for st in ("master", "backup", "fault", "stop"):   # both run, as in keepalived
                notify[st] = kaitems.both_notify(notify[st], generic) if st in notify \
                    else generic
        if not members:
            self.r.dropped(g, "no member instance", f"vrrp_sync_group {name}")
            return
        self.r.mapped(g, "[[sync_group]]", f"vrrp_sync_group {name}")
        out = {"name": name, "instances": members}
        if notify:
            out["notify"] = notify
            out["_tables"] = ["notify"]
        self.groups.append(out)


def to_toml(doc: dict, source: str, config_id: str) -> str:
    lines = [f"# Converted from {source} by vipd import-keepalived (config id {config_id!r}).",
             "# Review it, then: vipd check-config -c FILE", ""]
    if doc.get("global"):
        tomlout.table(lines, "global", doc["global"])
    for name, body in doc.get("checks", {}).items():
        tomlout.table(lines, "checks." + tomlout.key(name),
                      {k: v for k, v in body.items() if not k.startswith("_")})
    for inst in doc.get("instance", []):
        tomlout.table(lines, "[instance]", inst)
    for group in doc.get("sync_group", []):
        tomlout.table(lines, "[sync_group]", group)
    return "\n".join(lines) + "\n"


def convert(path: str, config_id: str | None = None):
    """(toml text, Result, parse errors) for the keepalived config at path."""
    from vipd.kaconf import default_config_id, parse
    cid = config_id or default_config_id()
    nodes, reader = parse(path, cid)
    result = Importer(nodes).run()
    return to_toml(result.doc, path, cid), result, reader.errors
