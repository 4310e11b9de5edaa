"""One keepalived ``vrrp_instance`` block as one vipd ``[[instance]]`` (see vipd.kaimport)."""
from __future__ import annotations

from vipd import kaitems
from vipd.kaconf import Node

NO_EMAIL = "vipd sends no email: a notify hook can"
DROPPED = {
    "smtp_alert": NO_EMAIL, "debug": "use [global] log_level",
    "dont_track_primary": "vipd always tracks its own interface",
    "strict_mode": "vipd has no strict mode", "accept": "vipd always accepts packets to its VIPs",
    "no_accept": "vipd has no no_accept mode", "lvs_sync_daemon_interface": "LVS is out of scope",
    "vmac_xmit_base": "vipd sends multicast adverts from the VMAC interface, unicast ones from"
                      " the base interface (as keepalived does)",
    "native_ipv6": "no vipd equivalent",
    "notify_master_rx_lower_pri": "vipd re-runs the master hook on meeting a lower master",
    "track_src_ip": "no vipd equivalent", "kernel_rx_buf_size": "vipd sizes its own buffer",
    "garp_master_refresh_repeat": "vipd sends one GARP per refresh",
    "notify_deleted": "no vipd equivalent", "unicast_ttl": "vipd sends and requires TTL 255",
    "garp_lower_prio_delay": "no vipd equivalent", "garp_lower_prio_repeat": "no vipd equivalent",
    "lower_prio_no_advert": "vipd always answers a lower-priority master at once",
    "higher_prio_send_advert": "no vipd equivalent",
}
# keepalived keyword -> (vipd key, type) for the one-value keywords
SCALARS = {
    "interface": ("interface", str), "virtual_router_id": ("vrid", int),
    "priority": ("priority", int), "advert_int": ("advert_interval", float),
    "version": ("version", int), "unicast_src_ip": ("unicast_src", str),
    "garp_master_delay": ("garp_delay", float), "garp_master_repeat": ("garp_repeat", int),
    "garp_master_refresh": ("garp_refresh", float),
}
NOTIFY = ("notify_master", "notify_backup", "notify_fault", "notify_stop")


class InstanceMapper:
    def __init__(self, importer, node: Node) -> None:
        self.imp = importer
        self.r = importer.r
        self.node = node
        self.out: dict = {}
        self.family: int | None = None
        self.held: dict[str, int] = {}     # address -> line it was first listed on

    def note(self, n: Node, to: str, notes: list[str] = ()) -> None:
        self.r.mapped(n, to + "".join(f" ({x})" for x in notes))

    def run(self) -> dict | None:
        inst = self.node
        raw_name = inst.args[0] if inst.args else "_"
        name = kaitems.name(raw_name)
        o = self.out
        o["name"] = name
        state = None
        nopreempt = preempt_delay = auth = None
        notify: dict = {}
        generic = None
        for n in inst.child_lines():
            k, a = n.keyword, n.args
            try:
                if k in SCALARS and a:
                    key, conv = SCALARS[k]
                    o[key] = conv(a[0])
                    self.note(n, key)
                elif k == "state" and a:
                    state = a[0]
                    self.r.dropped(n, "vipd starts every instance as BACKUP and lets the "
                                      "election decide (priority 255 starts as master)")
                elif k == "nopreempt":
                    nopreempt = n
                elif k == "preempt":
                    self.note(n, 'failback = "auto" (the default)')
                elif k == "preempt_delay" and a:
                    preempt_delay = (n, float(a[0]))
                elif k in ("virtual_ipaddress", "virtual_ipaddress_excluded"):
                    self._vips(n, "vips" if k == "virtual_ipaddress" else "excluded_vips")
                elif k == "track_interface":
                    self._track_interfaces(n)
                elif k == "track_script":
                    self._track_scripts(n)
                elif k == "track_file":
                    self._track_files(n)
                elif k in NOTIFY:
                    argv, notes = kaitems.notify_argv(a)
                    notify[k[len("notify_"):]] = argv
                    self.note(n, f"notify.{k[7:]}", notes)
                elif k == "notify":
                    generic = (n, kaitems.generic_notify(a, group=False))
                elif k == "authentication":
                    auth = n
                elif k == "mcast_src_ip" and a:
                    o["unicast_src"] = a[0]
                    self.note(n, "unicast_src (vipd's source address for adverts, multicast too)")
                elif k == "unicast_peer":
                    peers = []
                    for p in n.child_lines():
                        peers.append(p.keyword)
                        if p.args:
                            self.r.dropped(p, "min_ttl/max_ttl: vipd requires TTL 255",
                                           f"unicast_peer {p.keyword} {' '.join(p.args)}")
                    o["unicast_peers"] = peers
                    self.note(n, "unicast_peers")
                elif k == "use_vmac":
                    o["use_vmac"] = True
                    if a:
                        o["vmac_interface"] = a[0]
                    self.note(n, "use_vmac" + (" and vmac_interface" if a else ""))
                elif k == "virtual_routes":
                    self._items(n, "virtual_routes", lambda m: kaitems.route(m.keyword, m.args))
                elif k == "virtual_rules":
                    self._items(n, "virtual_rules",
                                lambda m: (kaitems.rule(m.keyword, m.args), []))
                elif k in DROPPED:
                    self.r.dropped(n, DROPPED[k])
                else:
                    self.r.dropped(n, "no vipd equivalent")
            except ValueError as e:
                self.r.dropped(n, f"cannot read {' '.join([k, *a])!r}: {e}")
        # keepalived's defaults where they differ from vipd's
        o.setdefault("version", self.imp.version)
        o.setdefault("priority", 100)
        o.setdefault("advert_interval", 1.0)
        for k, v in self.imp.garp.items():
            o.setdefault(k, v)
        if nopreempt is not None:
            if state == "MASTER":
                self.r.dropped(nopreempt, "keepalived ignores nopreempt unless state is BACKUP")
            else:
                o["failback"] = "none"
                self.note(nopreempt, 'failback = "none"')
        if preempt_delay is not None:
            n, delay = preempt_delay
            if nopreempt is not None and state != "MASTER":
                self.r.dropped(n, "no preemption (nopreempt) to delay")
            else:
                o["preempt_delay"] = delay
                self.note(n, "preempt_delay")
        if auth is not None:
            self._auth(auth)
        if generic is not None:
            n, (argv, notes) = generic
            for st in ("master", "backup", "fault", "stop"):
                if st in notify:      # keepalived runs both, the specific one first
                    notes = notes + [f"after notify_{st} on {st.upper()}, as keepalived does"]
                    notify[st] = kaitems.both_notify(notify[st], argv)
                else:
                    notify[st] = argv
            self.note(n, 'notify.* through keepalived-notify (the script gets "INSTANCE" '
                         "NAME STATE PRIORITY)", notes)
        if notify:
            o["notify"] = {st: notify[st] for st in ("master", "backup", "fault", "stop")
                           if st in notify}
            o["_tables"] = ["notify"]
        return self._finish(raw_name)

    def _finish(self, raw_name: str) -> dict | None:
        o, inst = self.out, self.node
        missing = [k for k in ("interface", "vrid", "vips") if not o.get(k)]
        if missing:
            self.r.dropped(inst, "instance not carried over: no " + ", ".join(missing),
                           f"vrrp_instance {raw_name}")
            return None
        if o["version"] == 2 and self.family == 6:
            o["version"] = 3
            self.r.mapped(inst, "version = 3: IPv6 needs VRRPv3 (keepalived uses 3 too)",
                          "version")
        if o["version"] == 2 and o["advert_interval"] != int(o["advert_interval"]):
            rounded = float(max(1, round(o["advert_interval"])))
            self.r.mapped(inst, f"advert_interval = {rounded:g}: VRRPv2 carries whole seconds",
                          "advert_int")
            o["advert_interval"] = rounded
        self.r.mapped(inst, "[[instance]]" + (f" named {o['name']}" if o["name"] != raw_name
                                              else ""), f"vrrp_instance {raw_name}")
        order = ["name", "interface", "vrid", "priority", "version", "advert_interval", "vips"]
        return {**{k: o[k] for k in order}, **{k: v for k, v in o.items() if k not in order}}

    def _auth(self, auth: Node) -> None:
        fields = {m.keyword: m.args for m in auth.child_lines()}
        kind = (fields.get("auth_type") or [""])[0]
        if self.imp.strict:
            self.r.dropped(auth, "vrrp_strict: keepalived ignores authentication in strict mode")
        elif self.out["version"] == 3:
            self.r.dropped(auth, "VRRPv3 has no authentication (keepalived ignores it too)")
        elif kind == "PASS" and fields.get("auth_pass"):
            password = fields["auth_pass"][0]
            self.out["auth_pass"] = password[:8]
            self.note(auth, "auth_pass", ["cut to 8 bytes as keepalived does"]
                      if len(password.encode()) > 8 else [])
        else:
            self.r.dropped(auth, f"auth_type {kind or '?'}: vipd supports PASS only")

    def _vips(self, n: Node, key: str) -> None:
        seen = self.held       # one address is held once, VIP or excluded

        def parse(m: Node):
            # excluded addresses may be of the other family (they are not advertised)
            value, notes = kaitems.vip(m.keyword, m.args, self.family if key == "vips" else None)
            addr = value["address"] if isinstance(value, dict) else value
            ip = addr.split("/")[0]
            if ip in seen:
                raise ValueError(f"{ip} is already listed (line {seen[ip]}): vipd holds an "
                                 "address once")
            seen[ip] = m.line
            if self.family is None and key == "vips":
                self.family = 6 if ":" in addr else 4
            return value, notes
        self._items(n, key, parse)

    def _items(self, n: Node, key: str, parse) -> None:
        out = []
        for m in n.child_lines():
            try:
                value, notes = parse(m)
            except ValueError as e:
                self.r.dropped(m, str(e), f"{n.keyword} item {' '.join([m.keyword, *m.args])}")
                continue
            for x in notes:
                self.r.dropped(m, x, f"{n.keyword} item {m.keyword}")
            out.append(value)
        if out:
            self.out[key] = out
        self.note(n, key)

    def _track_interfaces(self, n: Node) -> None:
        out = []
        for m in n.child_lines():
            if m.args[:1] == ["weight"] and len(m.args) >= 2:
                out.append({"name": m.keyword, "weight": int(m.args[1])})
                if m.args[2:] == ["reverse"]:
                    self.r.dropped(m, "reverse on an interface has no vipd equivalent",
                                   f"track_interface {m.keyword}")
            else:
                out.append(m.keyword)
        self.out["track_interfaces"] = out
        self.note(n, "track_interfaces")

    def _track_scripts(self, n: Node) -> None:
        out = []
        for m in n.child_lines():
            name = kaitems.name(m.keyword)
            check = self.imp.scripts.get(name)
            if check is None:
                self.r.dropped(m, "no vrrp_script of that name (keepalived ignores it)",
                               f"track_script {m.keyword}")
                continue
            entry: dict = {"name": name}
            if m.args[:1] == ["weight"] and len(m.args) >= 2:
                entry["weight"] = int(m.args[1])
            if "reverse" in m.args[2:] or (check.get("_reverse") and "weight" not in entry):
                entry["reverse"] = True
            out.append(entry if len(entry) > 1 else name)
        self.out["track_checks"] = out
        self.note(n, "track_checks")

    def _track_files(self, n: Node) -> None:
        out = []
        for m in n.child_lines():
            spec = self.imp.files.get(m.keyword)
            if spec is None:
                self.r.dropped(m, "no track_file of that name", f"track_file {m.keyword}")
                continue
            entry = dict(spec)
            if m.args[:1] == ["weight"] and len(m.args) >= 2:
                entry["weight"] = int(m.args[1])
                entry.pop("reverse", None)
                if m.args[2:] == ["reverse"]:
                    entry["reverse"] = True
            out.append(entry)
        self.out["track_files"] = out
        self.note(n, "track_files")
