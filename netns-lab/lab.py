"""The vipd lab: N hosts and a client on one Ethernet segment, built from network namespaces.

    bridge namespace <prefix>br:  br0 (no STP, no multicast snooping) with ports h1..hN, c
    host namespaces <prefix>hI:   eth0 = 198.51.100.I/24, 2001:db8::I/64 (+ fe80::), DAD off
    client namespace <prefix>c:   eth0 = 198.51.100.200/24, 2001:db8::200/64

Every name carries a per-run prefix ("vl" + 5 random characters), claimed with a state file in
/run/vipd-lab, so concurrent runs never collide and a crashed run can be found and removed
(`lab.py down --all-stale`). Teardown kills every process living in the lab's namespaces,
deletes the namespaces and the work directory, and never raises.

As a library: `with Lab(hosts=2) as lab: ...` (see the Lab class). As a command:
    python netns-lab/lab.py up [--hosts N] [--nginx] [--redis]
    python netns-lab/lab.py list
    python netns-lab/lab.py down PREFIX... | --all-stale
"""
from __future__ import annotations

import atexit
import contextlib
import ipaddress
import json
import logging
import os
import pathlib
import random
import re
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import threading
import time
import tomllib

import labstate
from labfaults import Faults
from labhost import Host
from labkit import HTTP_GET, NGINX_CONF, PING
from labproc import NETNS_DIR, Capture, CommandError, LabError, Proc, listening, run_ip, start_time
from labstate import FAMILY, STATE_DIR

__all__ = ["Lab", "Host", "Proc", "Capture", "LabError", "CommandError", "REPO", "VIPD",
           "FAMILY", "STATE_DIR", "NETNS_DIR"]

log = logging.getLogger("vipd.lab")

REPO = pathlib.Path(__file__).resolve().parents[1]
VIPD = REPO / ".venv" / "bin" / "vipd"
BRIDGE = "br0"
BRIDGE2 = "br1"                     # the optional second segment (Lab.add_segment)
CLIENT_ID = 200
CAPTURE_FILTER = "ip proto 112 or ip6 proto 112 or arp or icmp6"


# Labs that are up in this process, taken down at exit whatever happens.
_LIVE: set[Lab] = set()
_handlers_installed = False


def _down_all() -> None:
    for lab in list(_LIVE):
        lab.down()


atexit.register(_down_all)


def _interrupt(signum, frame):
    # Unwinding as for Ctrl-C runs `with` blocks, pytest's fixture teardown and atexit.
    raise KeyboardInterrupt(f"signal {signum}")


def _install_signal_handlers() -> None:
    global _handlers_installed
    if _handlers_installed or threading.current_thread() is not threading.main_thread():
        return
    _handlers_installed = True
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        if signal.getsignal(sig) in (signal.SIG_DFL, None):   # never replace someone's handler
            signal.signal(sig, _interrupt)


@contextlib.contextmanager
def _signals_deferred():
    """Holds SIGINT/SIGTERM/SIGHUP while tearing down, so a second Ctrl-C cannot cut it short."""
    sigs = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    main = threading.current_thread() is threading.main_thread()
    old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs) if main else None
    try:
        yield
    finally:
        if main:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


class Lab:
    """N hosts and a client on a bridge; see the module docstring for the topology.

    workdir holds logs, configs, pid files and data directories; it is a new temporary directory
    unless given, and it is removed at teardown if the lab created it and keep is False.
    """

    curl = shutil.which("curl")   # http_get's client when installed: it starts faster than Python

    def __init__(self, hosts: int = 2, prefix: str | None = None, workdir: str | None = None,
                 keep: bool = False):
        if not 1 <= hosts <= 99:
            raise ValueError(f"hosts must be 1..99, not {hosts}")
        if prefix is not None and not re.fullmatch(r"[a-z][a-z0-9]{1,9}", prefix):
            raise ValueError(f"prefix must be 2-10 lowercase letters and digits, not {prefix!r}")
        self.n, self.prefix, self.keep, self._workdir_arg = hosts, prefix, keep, workdir
        self.hosts: list[Host] = []
        self.client: Host | None = None
        self.bridge_ns: str | None = None
        self.workdir: pathlib.Path | None = None
        self._procs: list[Proc] = []
        self._services: dict[tuple[str, str], list[Proc]] = {}
        self._state: dict | None = None
        self._state_path: pathlib.Path | None = None
        self._faults: Faults | None = None           # made once the bridge namespace is named
        self._torn_down = False

    def __repr__(self) -> str:
        return f"<Lab {self.prefix} hosts={self.n}>"

    def __enter__(self) -> Lab:
        return self.up()

    def __exit__(self, *exc) -> None:
        self.down()

    # --- building -------------------------------------------------------------------------

    def up(self) -> Lab:
        if self._state is not None:
            return self
        _install_signal_handlers()
        _LIVE.add(self)
        t0 = time.monotonic()
        try:
            self._claim()
            self._build()
        except BaseException:
            self.down()
            raise
        log.info("lab %s up in %.3fs, work directory %s", self.prefix, time.monotonic() - t0,
                 self.workdir)
        return self

    def _claim(self) -> None:
        """Picks a prefix nobody uses and records, before anything exists, what will exist."""
        rand = random.SystemRandom()

        def new_prefix() -> str:
            return FAMILY + "".join(rand.choice(string.ascii_lowercase + string.digits)
                                    for _ in range(5))

        prefix, path, names = labstate.claim(self.prefix, new_prefix, self._plan)
        self.prefix, self._state_path = prefix, path
        self._faults = Faults(self.bridge_ns, self.addrs)
        if self._workdir_arg:
            self.workdir = pathlib.Path(self._workdir_arg).resolve()
            made = not self.workdir.exists()
            self.workdir.mkdir(parents=True, exist_ok=True)
        else:
            self.workdir, made = pathlib.Path(tempfile.mkdtemp(prefix=f"vipd-lab-{prefix}-")), True
        self._state = {"prefix": prefix, "hosts": self.n, "namespaces": names,
                       "workdir": str(self.workdir), "remove_workdir": made and not self.keep,
                       "pid": os.getpid(), "start": start_time(os.getpid())}
        self._save_state()

    def _save_state(self) -> None:
        labstate.save(self._state, self._state_path)

    def _plan(self, prefix: str) -> list[str]:
        def member(name: str, i: int) -> Host:
            return Host(name=name, ns=f"{prefix}{name}", ifname="eth0", ip4=f"198.51.100.{i}",
                        ip6=f"2001:db8::{i}", port=name, mac=f"02:76:6c:00:00:{i:02x}", id=i)
        self.hosts = [member(f"h{i}", i) for i in range(1, self.n + 1)]
        self.client = member("c", CLIENT_ID)
        self.bridge_ns = f"{prefix}br"
        return [self.bridge_ns] + [m.ns for m in self.members]

    @property
    def members(self) -> list[Host]:
        return [*self.hosts, self.client]

    def _build(self) -> None:
        run_ip([], [f"netns add {n}" for n in self._state["namespaces"]])
        # Defaults first: a new device takes its namespace's defaults when it is created.
        # The bridge namespace has no IPv6 so it adds no MLD/RS noise of its own to the segment.
        sysctls = {self.bridge_ns: ["net.ipv6.conf.all.disable_ipv6=1",
                                    "net.ipv6.conf.default.disable_ipv6=1"]}
        for m in self.members:
            sysctls[m.ns] = ["net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"]
        self._parallel([["ip", "netns", "exec", ns, "sysctl", "-q", "-w", *kv]
                        for ns, kv in sysctls.items()])
        batch = [f"link add {BRIDGE} type bridge stp_state 0 forward_delay 0 mcast_snooping 0",
                 "link set lo up", f"link set {BRIDGE} up"]
        for m in self.members:
            batch += [f"link add {m.port} type veth peer name {m.ifname} address {m.mac} netns {m.ns}",
                      f"link set {m.port} master {BRIDGE} up"]
        run_ip(["-n", self.bridge_ns], batch)
        self._parallel([["ip", "-n", m.ns, "-batch", "-"] for m in self.members], [
            f"link set lo up\naddr add {m.ip4}/24 dev {m.ifname}\n"
            f"addr add {m.ip6}/64 dev {m.ifname} nodad\nlink set {m.ifname} up\n"
            for m in self.members])

    def add_segment(self) -> None:
        """A second segment for instances on two interfaces (sync groups): bridge br1 with
        ports <host>b, and eth1 = 203.0.113.I/24, 2001:db8:1::I/64 in every host and the client."""
        batch = [f"link add {BRIDGE2} type bridge stp_state 0 forward_delay 0 mcast_snooping 0",
                 f"link set {BRIDGE2} up"]
        for m in self.members:
            batch += [f"link add {m.port}b type veth peer name eth1 address "
                      f"02:76:6c:01:00:{m.id:02x} netns {m.ns}", f"link set {m.port}b master {BRIDGE2} up"]
        run_ip(["-n", self.bridge_ns], batch)
        self._parallel([["ip", "-n", m.ns, "-batch", "-"] for m in self.members], [
            f"addr add 203.0.113.{m.id}/24 dev eth1\naddr add 2001:db8:1::{m.id}/64 dev eth1 nodad\n"
            "link set eth1 up\n" for m in self.members])

    def set_port(self, port: str, up: bool) -> None:
        """A bridge port ("h1", or "h1b" on the second segment) up or down: the host sees its
        carrier come and go."""
        run_ip(["-n", self.bridge_ns, "link", "set", port, "up" if up else "down"])

    def holder_on(self, vip: str, ifname: str) -> list[str]:
        """Names of the members whose ifname carries vip (holder() looks at eth0 only)."""
        want = ipaddress.ip_address(vip)
        found = []
        for m in self.members:
            out = subprocess.run(["ip", "-j", "-n", m.ns, "addr", "show", "dev", ifname],
                                 capture_output=True, text=True, timeout=10).stdout
            if any(ipaddress.ip_address(a["local"]) == want for link in json.loads(out or "[]")
                   for a in link.get("addr_info", [])):
                found.append(m.name)
        return found

    @staticmethod
    def _parallel(cmds: list[list[str]], inputs: list[str] | None = None) -> None:
        procs = [subprocess.Popen(c, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for c in cmds]
        failed = []
        for p, c, i in zip(procs, cmds, inputs or [""] * len(cmds)):
            out, err = p.communicate(i, timeout=30)
            if p.returncode:
                failed.append(CommandError(p.returncode, c, out, err))
        if failed:
            raise failed[0]

    # --- teardown -------------------------------------------------------------------------

    @property
    def namespaces(self) -> list[str]:
        """The network namespaces this lab made (bridge, hosts, client)."""
        return list(self._state["namespaces"]) if self._state else []

    def down(self) -> list[str]:
        """Stops every process, deletes the namespaces and files; idempotent, never raises.
        Returns what it could not remove (also logged), so a test fixture can fail on a leak."""
        if self._torn_down:
            return []
        self._torn_down = True
        _LIVE.discard(self)
        if self._state is None:
            return []
        problems = []
        with _signals_deferred():
            try:
                self._stop_all(timeout=3.0)
            except Exception as e:
                log.exception("lab %s: stopping processes", self.prefix)
                problems.append(f"stopping processes: {e!r}")
            try:
                problems += labstate.destroy(self._state, self._state_path)
            except Exception as e:
                log.exception("lab %s: teardown", self.prefix)
                problems.append(f"teardown: {e!r}")
        for problem in problems:
            log.warning("lab %s: %s", self.prefix, problem)
        if not self._state["remove_workdir"]:
            log.info("lab %s: files kept in %s", self.prefix, self.workdir)
        return problems

    def _stop_all(self, timeout: float) -> None:
        live = [p for p in self._procs if p.alive()]
        for p in live:   # all at once, so the slow ones share one grace period
            p.send_signal(signal.SIGTERM)
            p.thaw()
        end = time.monotonic() + timeout
        for p in live:
            p.stop(signal.SIGTERM, timeout=max(0.0, end - time.monotonic()))

    def detach(self) -> None:
        """Leaves the lab running after this process exits (`lab.py down PREFIX` removes it)."""
        _LIVE.discard(self)
        self._torn_down = True
        self._state["pid"] = self._state["start"] = None
        self._save_state()

    # --- running things -------------------------------------------------------------------

    def host(self, name: str) -> Host:
        for m in self.members:
            if name in (m.name, m.ns) or (name == "client" and m is self.client):
                return m
        raise KeyError(f"no host {name!r} in the lab; hosts: {[m.name for m in self.members]}")

    def _h(self, host: Host | str) -> Host:
        return self.host(host) if isinstance(host, str) else host

    @staticmethod
    def _argv(argv: list[str] | str) -> list[str]:
        return ["sh", "-c", argv] if isinstance(argv, str) else [str(a) for a in argv]

    def run(self, host: Host | str, argv: list[str] | str, check: bool = True, timeout: float = 30,
            **kw) -> subprocess.CompletedProcess:
        """Runs argv (a string goes to sh -c) in host's namespace, output captured as text."""
        cmd = ["ip", "netns", "exec", self._h(host).ns, *self._argv(argv)]
        kw.setdefault("capture_output", True)
        r = subprocess.run(cmd, text=True, timeout=timeout, **kw)
        if check and r.returncode:
            raise CommandError(r.returncode, cmd, r.stdout, r.stderr)
        return r

    def write(self, relpath: str, text: str) -> pathlib.Path:
        path = self.workdir / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def spawn(self, host: Host | str, argv: list[str] | str, env: dict | None = None,
              name: str | None = None) -> Proc:
        """Starts a long-running process in host's namespace; env is added to ours.

        stdout and stderr go to workdir/<host>/<name>.log; teardown stops it (SIGTERM, SIGKILL).
        """
        host, argv = self._h(host), self._argv(argv)
        stem = name or pathlib.Path(argv[0]).name
        log_path, n = self.workdir / host.name / f"{stem}.log", 1
        while log_path.exists():
            n += 1
            log_path = log_path.with_name(f"{stem}.{n}.log")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "wb") as out:
            popen = subprocess.Popen(["ip", "netns", "exec", host.ns, *argv],
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})}, start_new_session=True)
        proc = Proc(host, argv, log_path, popen)
        self._procs.append(proc)
        return proc

    def _await(self, proc: Proc, ready, what: str, timeout: float) -> Proc:
        end = time.monotonic() + timeout
        while not ready():
            if not proc.alive():
                raise LabError(f"{what} on {proc.host.name} exited ({proc.returncode}):\n"
                               f"{proc.output()[-3000:]}")
            if time.monotonic() > end:
                raise LabError(f"{what} on {proc.host.name} not ready after {timeout}s:\n"
                               f"{proc.output()[-3000:]}")
            time.sleep(0.01)
        return proc

    def _service(self, host: Host, kind: str, proc: Proc) -> Proc:
        self._services.setdefault((host.name, kind), []).append(proc)
        return proc

    def _stop_service(self, host: Host | str, kind: str) -> None:
        for proc in self._services.pop((self._h(host).name, kind), []):
            proc.stop()

    # --- services ---------------------------------------------------------------------------

    def start_nginx(self, host: Host | str, port: int = 80, body: str | None = None) -> Proc:
        """nginx in the foreground serving body (default "<name>\\n") at /, on IPv4 and IPv6."""
        host = self._h(host)
        d = self.workdir / host.name / f"nginx-{port}"
        body = f"{host.name}\n" if body is None else body
        self.write(f"{host.name}/nginx-{port}/www/index.html", body)
        conf = self.write(f"{host.name}/nginx-{port}/nginx.conf", NGINX_CONF.format(d=d, port=port))
        proc = self.spawn(host, ["nginx", "-p", d, "-c", conf, "-e", "stderr"], name=f"nginx-{port}")
        proc.config_path = conf
        self._await(proc, lambda: listening(proc.pid, port), "nginx", 10)
        return self._service(host, "nginx", proc)

    def stop_nginx(self, host: Host | str) -> None:
        self._stop_service(host, "nginx")

    def start_redis(self, host: Host | str, port: int = 6379, extra: list[str] = ()) -> Proc:
        host = self._h(host)
        d = self.workdir / host.name / f"redis-{port}"
        d.mkdir(parents=True, exist_ok=True)
        proc = self.spawn(host, ["redis-server", "--port", port, "--dir", d, "--save", "",
                                 "--appendonly", "no", "--bind", "0.0.0.0", "::",
                                 "--protected-mode", "no", "--daemonize", "no",
                                 "--pidfile", d / "redis.pid", "--logfile", "", *extra],
                          name=f"redis-{port}")
        self._await(proc, lambda: listening(proc.pid, port), "redis-server", 10)
        return self._service(host, "redis", proc)

    def stop_redis(self, host: Host | str) -> None:
        self._stop_service(host, "redis")

    def start_vipd(self, host: Host | str, config_text: str, extra_args=(), wait: bool = True) -> Proc:
        """`vipd run -c workdir/<host>/vipd.toml`; global.socket defaults to workdir/<host>/vipd.sock.

        With wait, returns once the control socket exists (raises LabError if vipd exits first).
        """
        host = self._h(host)
        ours = str(self.workdir / host.name / "vipd.sock")
        text, sock = _with_socket(config_text, ours)
        if sock == ours:
            pathlib.Path(ours).unlink(missing_ok=True)   # so "exists" below means this run's
        conf = self.write(f"{host.name}/vipd.toml", text)
        proc = self.spawn(host, [VIPD, "run", "-c", conf, *extra_args],
                          env={"PYTHONUNBUFFERED": "1"}, name="vipd")
        proc.socket, proc.config_path = sock, conf
        if wait:
            self._await(proc, lambda: os.path.exists(sock), "vipd", 15)
        return self._service(host, "vipd", proc)

    def start_keepalived(self, host: Host | str, config_text: str) -> Proc:
        """keepalived 2.2 (VRRP only) in the foreground, logging to its console (Proc.output)."""
        host = self._h(host)
        d = self.workdir / host.name / "keepalived"
        conf = self.write(f"{host.name}/keepalived/keepalived.conf", config_text)
        proc = self.spawn(host, ["keepalived", "--dont-fork", "--log-console", "--log-detail",
                                 "--vrrp", "--no-syslog", "-f", conf, "-p", d / "keepalived.pid",
                                 "-r", d / "vrrp.pid", "-c", d / "checkers.pid"], name="keepalived")
        proc.config_path = conf
        return self._service(host, "keepalived", proc)

    # --- faults -----------------------------------------------------------------------------

    def cut(self, host: Host | str, silent: bool = False) -> None:
        """Not silent: the bridge side goes down and the host sees carrier loss. Silent: the link
        stays up but the bridge port drops every frame both ways (a hung switch port)."""
        self._faults.cut(self._h(host), silent)

    def heal(self, host: Host | str) -> None:
        """Undoes either cut (a partition stays)."""
        self._faults.heal(self._h(host))

    def partition(self, a: Host | str, b: Host | str) -> None:
        """Drops VRRP (IP protocol 112, IPv4 and IPv6) between a and b; all else still flows."""
        self._faults.partition(self._h(a), self._h(b))

    def unpartition(self, a: Host | str, b: Host | str) -> None:
        self._faults.unpartition(self._h(a), self._h(b))

    def isolate(self, a: Host | str, b: Host | str) -> None:
        """Drops every frame between a and b (by source MAC), both ways; the client and other
        hosts still reach both. For a host cut off from its peers but not from its clients."""
        self._faults.isolate(self._h(a), self._h(b))

    def unisolate(self, a: Host | str, b: Host | str) -> None:
        self._faults.unisolate(self._h(a), self._h(b))

    # --- observing --------------------------------------------------------------------------

    def addrs(self, host: Host | str) -> list[str]:
        """Addresses on host's eth0 with their prefix length, e.g. "198.51.100.100/24"."""
        host = self._h(host)
        out = subprocess.run(["ip", "-j", "-n", host.ns, "addr", "show", "dev", host.ifname],
                             capture_output=True, text=True, check=True, timeout=10).stdout
        return [f"{a['local']}/{a['prefixlen']}" for link in json.loads(out or "[]")
                for a in link.get("addr_info", [])]

    def holder(self, vip: str) -> list[str]:
        """Names of the hosts (and client) whose eth0 carries vip."""
        want = ipaddress.ip_address(vip.split("/")[0])
        return [m.name for m in self.members
                if any(ipaddress.ip_address(a.split("/")[0]) == want for a in self.addrs(m))]

    def ping(self, src_host: Host | str, dst: str, count: int = 1, timeout: float = 1.0) -> bool:
        """Whether any of count echo requests to dst is answered within timeout seconds each."""
        r = self.run(src_host, [sys.executable, "-I", "-S", "-c", PING, dst, count, timeout],
                     check=False, timeout=count * timeout + 10)
        return r.returncode == 0

    def http_get(self, src_host: Host | str, url: str, timeout: float = 2.0) -> str | None:
        """The body of the answer, or None (no answer, timeout, HTTP status 400 or more)."""
        argv = ([self.curl, "-sfg", "--noproxy", "*", "--max-time", timeout, url] if self.curl
                else [sys.executable, "-I", "-S", "-c", HTTP_GET, url, timeout])
        r = self.run(src_host, argv, check=False, timeout=timeout + 10)
        return r.stdout if r.returncode == 0 else None

    @staticmethod
    def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02) -> bool:
        end = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= end:
                return False
            time.sleep(interval)

    def capture(self, iface_port: Host | str | None = None, filter: str = CAPTURE_FILTER) -> Capture:
        """tcpdump in the bridge namespace, on br0 (all ports: tcpdump makes it promiscuous, so
        it sees frames forwarded between ports too) or on one port ("h1" or a Host)."""
        iface = iface_port.port if isinstance(iface_port, Host) else iface_port or BRIDGE
        path = self.workdir / "captures" / f"{iface}-{len(self._procs)}.pcap"
        path.parent.mkdir(parents=True, exist_ok=True)
        bridge = Host("bridge", self.bridge_ns, BRIDGE, "", "", "", "", 0)
        # -Z root: the work directory is root's only; immediate mode: no packet waits in a buffer.
        # -s 128 -B 16384: headers are all we read, and a large ring so bursts are not dropped.
        proc = self.spawn(bridge, ["tcpdump", "-n", "-U", "--immediate-mode", "-Z", "root",
                                   "-s", "128", "-B", "16384",
                                   "-i", iface, "-w", path, filter], name=f"tcpdump-{iface}")
        self._await(proc, lambda: "listening on" in proc.output(), "tcpdump", 10)
        return Capture(proc, path)

    def logs(self, tail: int = 3000) -> str:
        """The end of every process's log, for a failed test's report."""
        return "\n".join(f"--- {p.host.name}: {' '.join(p.argv)[:100]} (pid {p.pid})\n"
                         f"{p.output()[-tail:]}" for p in self._procs)


def _with_socket(text: str, sock: str) -> tuple[str, str]:
    """The config and its control socket: its own global.socket, or sock added to it."""
    try:
        own = tomllib.loads(text).get("global", {}).get("socket")
    except (tomllib.TOMLDecodeError, AttributeError):
        own = None    # a broken config is vipd's to reject; it still gets a socket of ours
    if own:
        return text, own
    line = f"socket = {json.dumps(sock)}"
    m = re.search(r"^\[global\][ \t]*(#.*)?$", text, re.M)
    if m:
        return f"{text[:m.end()]}\n{line}{text[m.end():]}", sock
    return f"{text.rstrip()}\n\n[global]\n{line}\n", sock


if __name__ == "__main__":
    # The command gets Lab from here: importing lab from labcli would, under `python lab.py`, load
    # a second copy of this module (its own live-lab set and exit handler) and make a cycle.
    from labcli import main

    sys.exit(main(Lab))
