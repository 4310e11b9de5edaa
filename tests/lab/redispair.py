"""The Redis pair of etc/redis-pair in the lab: Redis helpers, the pair started with the example
vipd configs, and the writer through the VIP (tests/lab/redis_writer.py) with its log parsed."""
import json
import pathlib
import sys

from conftest import VIP4, VIPD, example_config, wait_holder, wait_state
from vipd import control

WRITER = str(pathlib.Path(__file__).with_name("redis_writer.py"))
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


def start_pair(lab, **values):
    """Redis on both hosts, vipd with the example configs (values override keys in both), checked
    with `vipd check-config`; returns once h1 is master and h2's Redis is its synced replica."""
    h1, h2 = lab.hosts
    for h in lab.hosts:
        lab.start_redis(h, PORT, extra=REDIS_ARGS)
    procs = []
    for h, example in ((h1, "lb1.toml"), (h2, "lb2.toml")):
        text = example_config(lab, h, f"redis-pair/{example}", **values)
        conf = lab.write(f"{h.name}/check-config.toml", text)
        r = lab.run(h, [VIPD, "check-config", "-c", conf], check=False)
        assert r.returncode == 0, f"etc/redis-pair/{example}: {r.stderr}"
        procs.append(lab.start_vipd(h, text))
        if h is h1:    # h1 first: it is master before h2 could elect itself
            assert wait_state(lab, procs[0], "MASTER", NAME, timeout=10)
    assert wait_state(lab, procs[1], "BACKUP", NAME)
    assert wait_holder(lab, VIP4, ["h1"])
    assert lab.wait_for(lambda: linked_replica_of(lab, h2, H1), timeout=10), rinfo(lab, h2)
    return procs


class Writer:
    """redis_writer.py write to target (the VIP by default) from the client; its log parsed
    into (time, n, set result, wait result) records."""

    def __init__(self, lab, target: str = VIP4):
        self.lab = lab
        self.proc = lab.spawn(lab.client, [sys.executable, WRITER, "write", target, PORT],
                              name="redis-writer")

    def records(self) -> list[tuple[float, int, str, str]]:
        out = []
        for line in self.proc.output().splitlines():
            f = line.split()
            if len(f) == 4:
                out.append((float(f[0]), int(f[1]), f[2], f[3]))
        return out

    def written(self, since=0.0, until=float("inf")) -> list[int]:
        """Writes the primary answered OK between since and until (monotonic)."""
        return [n for t, n, res, _ in self.records() if res == "ok" and since < t < until]

    def acked(self, since=0.0) -> list[int]:
        return [n for t, n, res, acks in self.records()
                if res == "ok" and acks.isdigit() and int(acks) >= 1 and t > since]

    def errors(self) -> dict[str, int]:
        """How many times each kind of error answered a SET or a WAIT."""
        out: dict[str, int] = {}
        for _, _, res, acks in self.records():
            kind = res if res != "ok" else None if acks.isdigit() else acks
            if kind:
                out[kind] = out.get(kind, 0) + 1
        return out

    def outage(self, around: float) -> float:
        """The longest time without an OK write in the 30 s after `around` (from the last OK
        write before it)."""
        ok = [t for t, _, res, _ in self.records() if res == "ok"]
        marks = [t for t in ok if t <= around][-1:] + [t for t in ok if around < t < around + 30]
        return max((b - a for a, b in zip(marks, marks[1:])), default=float("inf"))

    def missing(self, keys: list[int]) -> list[int]:
        """Keys not readable (with their value) through the VIP now."""
        r = self.lab.run(self.lab.client, [sys.executable, WRITER, "check", VIP4, PORT],
                         input="\n".join(map(str, keys)))
        return json.loads(r.stdout)["missing"]
