"""The Redis pair of etc/redis-pair in the lab: Redis helpers, the pair started with the example
vipd configs, and the writer through the VIP (tests/lab/redis_writer.py) with its log parsed."""
import json
import pathlib
import shutil
import sys
from typing import NamedTuple

from conftest import REPO, VIP4, VIPD, example_config, wait_holder
from vipd import control

WRITER = str(pathlib.Path(__file__).with_name("redis_writer.py"))
SHIPPED = REPO / "etc" / "redis-pair"
LB = {"h1": "lb1", "h2": "lb2"}
PORT = 6379
H1, H2 = "198.51.100.1", "198.51.100.2"
NAME = "redis"
# Full syncs start at once (Redis waits 5 s by default for more replicas to join); DEBUG POPULATE
# builds the data set that makes a resync take time.
REDIS_ARGS = ["--repl-diskless-sync-delay", "0", "--enable-debug-command", "local"]
# A value bigger than Redis's 1 MB replication backlog: after it, a host that comes back cannot
# continue where it stopped (partial resync) and needs a full sync of the whole data set.
OVERFLOW_BACKLOG = ["EVAL", "redis.call('set', KEYS[1], string.rep('x', 2 * 1024 * 1024))", "1",
                    "filler"]


def cli(lab, host, *cmd) -> str:
    return lab.run(host, ["redis-cli", "-p", PORT, *cmd]).stdout.strip()


def rinfo(lab, host) -> dict:
    text = cli(lab, host, "INFO")
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def linked_replica_of(lab, host, primary: str) -> bool:
    i = rinfo(lab, host)
    return (i.get("role") == "slave" and i.get("master_host") == primary
            and i.get("master_link_status") == "up" and i.get("master_sync_in_progress") == "0")


def in_step(lab, replica, primary) -> bool:
    """The replica has applied all of the primary's stream and holds as many keys."""
    r, p = rinfo(lab, replica), rinfo(lab, primary)
    return (r.get("slave_repl_offset") == p.get("master_repl_offset")
            and cli(lab, replica, "DBSIZE") == cli(lab, primary, "DBSIZE"))


def fast_status(proc) -> dict:
    """The instance's status straight from the control socket (no CLI start-up per sample)."""
    return control.request(proc.socket, {"cmd": "status"})["status"]["instances"][0]


def in_state(lab, proc, state: str, timeout: float = 10.0) -> bool:
    """wait_state over the control socket: no CLI start-up per sample (a vipd that is not up
    yet, or frozen, counts as not in the state)."""
    def now() -> bool:
        try:
            return fast_status(proc)["state"] == state
        except (OSError, ValueError, KeyError):
            return False
    return lab.wait_for(now, timeout=timeout, interval=0.02)


def start_pair(lab, redis=None, **values):
    """Redis on both hosts (lab.start_redis, or redis(host) if given), vipd with the example
    configs (values override keys in both), checked with `vipd check-config`; returns once h1 is
    master and h2's Redis is its synced replica."""
    h1, h2 = lab.hosts
    for h in lab.hosts:
        redis(h) if redis else lab.start_redis(h, PORT, extra=REDIS_ARGS)
    procs = []
    for h, example in ((h1, "lb1.toml"), (h2, "lb2.toml")):
        procs.append(start_vipd(lab, h, example, **values))
        if h is h1:    # h1 first: it is master before h2 could elect itself
            assert in_state(lab, procs[0], "MASTER", timeout=10)
    assert in_state(lab, procs[1], "BACKUP")
    assert wait_holder(lab, VIP4, ["h1"])
    assert lab.wait_for(lambda: linked_replica_of(lab, h2, H1), timeout=10), rinfo(lab, h2)
    return procs


def start_vipd(lab, host, example: str, wait: bool = True, **values):
    """vipd on host with etc/redis-pair/<example>, checked with `vipd check-config` first."""
    host = lab.host(host) if isinstance(host, str) else host
    text = example_config(lab, host, f"redis-pair/{example}", **values)
    conf = lab.write(f"{host.name}/check-config.toml", text)
    r = lab.run(host, [VIPD, "check-config", "-c", conf], check=False)
    assert r.returncode == 0, f"etc/redis-pair/{example}: {r.stderr}"
    return lab.start_vipd(host, text, wait=wait)


DROP_IN = SHIPPED / "redis-server.service.d" / "vipd-hold.conf"


def hold_file(lab, host: str) -> pathlib.Path:
    """Where /run/vipd/redis.hold of the shipped configs is on a lab host (example_config)."""
    return lab.workdir / host / "run" / "redis.hold"


def exec_start_pre(lab, host: str) -> list[str]:
    """The shipped drop-in's ExecStartPre (redis-hold) as run on host: the program from the repo,
    the hold file where example_config puts /run/vipd/ on that host."""
    line = next(x for x in DROP_IN.read_text().splitlines() if x.startswith("ExecStartPre="))
    argv = line.split("=", 1)[1].lstrip("+").split()
    return [argv[0].replace("/etc/vipd/hooks/", f"{REPO}/etc/hooks/"),
            *(str(hold_file(lab, host)) if a == "/run/vipd/redis.hold" else a for a in argv[1:])]


class ShippedRedis:
    """redis-server on h1 and h2 with etc/redis-pair/redis-lb1.conf and redis-lb2.conf as
    installed (h1 is lb1 and h2 is lb2: the addresses in them match), plus only what a lab run
    needs: its own data directory and pid file, the log on stdout, the foreground, DEBUG. (Not
    lab.start_redis: that one turns persistence off.) Each start first runs the shipped systemd
    drop-in's ExecStartPre (etc/hooks/redis-hold), as systemd would."""

    def __init__(self, lab):
        self.lab = lab
        self.procs: dict[str, object] = {}
        self.held = ""      # redis-hold's line at the last start

    def data_dir(self, name: str) -> pathlib.Path:
        return self.lab.workdir / name / "redis-data"

    def start(self, host, wipe: bool = False, wait: bool = True, hold: bool = True):
        """Starts (or restarts) host's Redis; wipe: without its data, as after a lost disk;
        hold=False: without the drop-in (only to show what it prevents)."""
        name = host if isinstance(host, str) else host.name
        d = self.data_dir(name)
        if wipe:
            shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True, exist_ok=True)
        conf = SHIPPED / f"redis-{LB[name]}.conf"
        if hold:
            self.held = self.lab.run(name, exec_start_pre(self.lab, name)).stdout.strip()
        proc = self.lab.spawn(name, ["redis-server", conf, "--port", PORT, "--dir", d,
                                     "--pidfile", d / "redis.pid", "--logfile", "",
                                     "--daemonize", "no", "--bind", "0.0.0.0",
                                     "--protected-mode", "no", "--enable-debug-command", "local"],
                              name="redis")
        self.procs[name] = proc
        if wait:
            assert self.lab.wait_for(lambda: ping(self.lab, name) == "PONG", timeout=15), \
                proc.output()[-2000:]
        return proc

    def kill(self, host) -> None:
        self.procs.pop(host if isinstance(host, str) else host.name).kill()


def ping(lab, host) -> str:
    return lab.run(host, ["redis-cli", "-p", PORT, "PING"], check=False).stdout.strip()


class Record(NamedTuple):
    """One line of the writer: when the answer came (monotonic), the key number, the SET's result
    ("ok" or an error kind), WAIT's ("-", a replica count or an error kind), and which Redis
    answered (a run_id prefix, "-" if none)."""
    t: float
    n: int
    res: str
    acks: str
    server: str


class Writer:
    """redis_writer.py write to target (the VIP by default) from the client; its log parsed
    into Records."""

    def __init__(self, lab, target: str = VIP4):
        self.lab = lab
        self.proc = lab.spawn(lab.client, [sys.executable, WRITER, "write", target, PORT],
                              name="redis-writer")

    def records(self) -> list[Record]:
        out = []
        for line in self.proc.output().splitlines():
            f = line.split()
            if len(f) == 5:
                out.append(Record(float(f[0]), int(f[1]), f[2], f[3], f[4]))
        return out

    def written(self, since=0.0, until=float("inf")) -> list[int]:
        """Writes the primary answered OK between since and until (monotonic)."""
        return [r.n for r in self.records() if r.res == "ok" and since < r.t < until]

    def acked(self, since=0.0) -> list[int]:
        return [r.n for r in self.records()
                if r.res == "ok" and r.acks.isdigit() and int(r.acks) >= 1 and r.t > since]

    def errors(self) -> dict[str, int]:
        """How many times each kind of error answered a SET or a WAIT."""
        out: dict[str, int] = {}
        for r in self.records():
            kind = r.res if r.res != "ok" else None if r.acks.isdigit() else r.acks
            if kind:
                out[kind] = out.get(kind, 0) + 1
        return out

    def outage(self, around: float, within: float = 30.0) -> float:
        """The longest time without an OK write in the `within` s after `around` (from the last
        OK write before it)."""
        ok = [r.t for r in self.records() if r.res == "ok"]
        marks = [t for t in ok if t <= around][-1:] + [t for t in ok if around < t < around + within]
        return max((b - a for a, b in zip(marks, marks[1:])), default=float("inf"))

    def missing(self, keys: list[int], target: str = VIP4) -> list[int]:
        """Keys not readable (with their value) through target (the VIP) now."""
        r = self.lab.run(self.lab.client, [sys.executable, WRITER, "check", target, PORT],
                         input="\n".join(map(str, keys)))
        return json.loads(r.stdout)["missing"]
