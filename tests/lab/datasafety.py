"""The data-safety scenarios of issue 8, shared by tests/lab/test_data_safety.py (which asserts on
their outcome) and netns-lab/bench_datasafety.py (which tabulates it).

A Pair is the Redis pair with the shipped configs (etc/redis-pair: redis-lb*.conf, lb*.toml, the
redis-role hook, the redis-orphan and redis-guard checks) and a writer in the client doing SET then
WAIT 1 through the VIP every 5 ms. FAULTS inject one fault on the master host h1 (each returns the
host that must end as master); Pair.outcome() waits for the pair to settle and classifies every
write.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from conftest import VIP4, wait_holder
from redispair import (H1, H2, ShippedRedis, Writer, cli, fast_status, in_state, in_step,
                       linked_replica_of, rinfo, start_pair, start_vipd)


@dataclass
class Outcome:
    acked: int                  # writes acknowledged by WAIT 1
    ok: int                     # writes answered OK
    lost_acked: list[int]       # acknowledged by WAIT 1, then lost: must be empty
    lost_final: list[int]       # answered OK by the final primary, then lost: must be empty
    stale_lost_at: list[float]  # the rest of the lost OK writes: seconds after the fault
    readonly_at: list[float]    # READONLY answers: seconds after the fault
    outage: float               # the longest time without an OK write around the fault
    errors: dict = field(default_factory=dict)

    def line(self) -> str:
        return (f"{self.acked} acked, {self.ok} OK; stale OK lost {len(self.stale_lost_at)}"
                f" (last {max(self.stale_lost_at, default=0):.2f}s after the fault);"
                f" READONLY {len(self.readonly_at)}; longest write outage {self.outage:.2f}s;"
                f" errors {self.errors}")


class Pair:
    """The pair started with the shipped configs, the writer running and acking."""

    back_within = 15.0    # seconds the writer may need to be acked again once the roles settled

    def __init__(self, lab, interval: float):
        self.lab, self.interval = lab, interval
        self.redis = ShippedRedis(lab)
        self.p1, self.p2 = start_pair(lab, redis=self.redis.start, advert_interval=interval)
        # h1's guard is re-armed (redis-guard) once h2 is in sync: from then on writes are acked.
        self.writer = Writer(lab)
        assert lab.wait_for(lambda: len(self.writer.acked()) >= 100, timeout=15), \
            self.writer.records()[-5:]
        assert lab.wait_for(lambda: cli(lab, "h1", "CONFIG", "GET", "min-replicas-to-write")
                            .split()[-1] == "1", timeout=5)

    def restart_vipd(self, host: str, wait: bool = True):
        proc = start_vipd(self.lab, host, f"{'lb1' if host == 'h1' else 'lb2'}.toml", wait=wait,
                          advert_interval=self.interval)
        setattr(self, "p1" if host == "h1" else "p2", proc)
        return proc

    def at_phase(self, phase: float) -> float:
        """Waits for h1's next advert, then phase x interval more; returns that moment."""
        sent = fast_status(self.p1)["counters"].get("adverts_sent", 0)
        assert self.lab.wait_for(
            lambda: fast_status(self.p1)["counters"].get("adverts_sent", 0) > sent,
            timeout=2 + 2 * self.interval, interval=0.001)
        t = time.monotonic() + phase * self.interval
        while time.monotonic() < t:
            pass    # a busy wait: a sleep may overshoot by more than the phase's resolution
        return t

    def after_check_run(self, name: str) -> float:
        """Waits until h1's check `name` has just run (its run count grew); returns that moment."""
        def runs() -> int:
            return fast_status(self.p1)["checks"][name]["runs"]
        before = runs()
        assert self.lab.wait_for(lambda: runs() > before, timeout=5, interval=0.005)
        return time.monotonic()

    def outcome(self, master: str, t_fault: float) -> Outcome:
        """Waits for `master` to hold the role, the VIP and the primary, the other host's Redis
        to follow it and the writer to be acked again; stops the writer and classifies every
        write by what the final primary holds."""
        procs = {"h1": self.p1, "h2": self.p2}
        other = "h2" if master == "h1" else "h1"
        assert in_state(self.lab, procs[master], "MASTER", timeout=20), fast_status(procs[master])
        assert in_state(self.lab, procs[other], "BACKUP", timeout=20), fast_status(procs[other])
        return self.classify(master, t_fault)

    def classify(self, master: str, t_fault: float) -> Outcome:
        """outcome() without vipd's states (the VIP, the Redis roles and the writes only)."""
        lab, w = self.lab, self.writer
        other = "h2" if master == "h1" else "h1"
        assert wait_holder(lab, VIP4, [master], timeout=10), lab.holder(VIP4)
        primary_ip = H1 if master == "h1" else H2
        assert lab.wait_for(lambda: linked_replica_of(lab, other, primary_ip), timeout=20), \
            rinfo(lab, other)
        t_back = time.monotonic()
        assert lab.wait_for(lambda: len(w.acked(since=t_back)) >= 20, timeout=self.back_within), \
            w.records()[-5:]
        w.proc.stop()
        assert lab.wait_for(lambda: in_step(lab, other, master), timeout=15)
        assert rinfo(lab, master)["role"] == "master"

        final = rinfo(lab, master)["run_id"][:12]
        records = w.records()
        acked = set(w.acked())
        ok = [r for r in records if r.res == "ok"]
        lost = set(w.missing([r.n for r in ok]))     # one look-up for every write answered OK
        by_final = {r.n for r in ok if r.server == final}
        assert by_final, "the final primary answered no write"
        return Outcome(
            acked=len(acked), ok=len(ok), lost_acked=sorted(lost & acked),
            lost_final=sorted(lost & by_final),
            stale_lost_at=[r.t - t_fault for r in ok if r.n in lost - acked - by_final],
            readonly_at=[r.t - t_fault for r in records if "READONLY" in (r.res, r.acks)],
            outage=w.outage(t_fault), errors=w.errors())


# --- faults on the master host h1; each returns the host that must end as master -----------

def vipd_killed(pair: Pair, down: float = 2.0) -> str:
    """SIGKILL h1's vipd (no priority-0 advert), restart it `down` s later."""
    pair.p1.kill()
    assert in_state(pair.lab, pair.p2, "MASTER", timeout=10)
    time.sleep(down)    # the fault's length
    pair.restart_vipd("h1")
    return "h2"


def redis_killed(pair: Pair, wipe: bool, down: float = 0.5, hold: bool = True) -> str:
    """SIGKILL h1's Redis, restart it `down` s later with its data (AOF) or without (wipe);
    hold=False: without the drop-in's redis-hold (only to show the READONLY it prevents)."""
    keys = int(cli(pair.lab, "h2", "DBSIZE"))
    pair.redis.kill("h1")
    time.sleep(down)    # the fault: how long Redis stays down before systemd restarts it
    pair.redis.start("h1", wipe=wipe, hold=hold)
    # h2's Redis never synced from the restarted one: it still holds (at least) what it had.
    assert int(cli(pair.lab, "h2", "DBSIZE")) >= keys
    return "h2"


def host_down(pair: Pair, host: str) -> None:
    """host's vipd and Redis SIGKILLed and its link cut (a power cut takes the VIP with it)."""
    (pair.p1 if host == "h1" else pair.p2).kill()
    pair.redis.kill(host)
    pair.lab.cut(host)
    pair.lab.run(host, ["ip", "addr", "del", f"{VIP4}/24", "dev", "eth0"], check=False)


def host_back(pair: Pair, host: str) -> None:
    """host's link back, its Redis started with its data (as at boot: the drop-in first), then
    its vipd."""
    pair.lab.heal(host)
    pair.redis.start(host)
    pair.restart_vipd(host)


def host_restarted(pair: Pair, redis_first: bool, down: float = 3.0) -> str:
    """vipd and Redis SIGKILLed, link down `down` s (a reboot takes the VIP with it), then Redis
    started without its data and vipd, in the order given."""
    lab = pair.lab
    host_down(pair, "h1")
    assert in_state(lab, pair.p2, "MASTER", timeout=10)
    time.sleep(down)    # the fault's length: the host is down this long
    lab.heal("h1")
    if redis_first:
        pair.redis.start("h1", wipe=True)
        pair.restart_vipd("h1")
    else:
        pair.restart_vipd("h1")
        pair.redis.start("h1", wipe=True)
    return "h2"


def vipd_frozen(pair: Pair, down: float = 3.0) -> str:
    """SIGSTOP h1's vipd `down` s, then SIGCONT: two masters meet."""
    pair.p1.freeze()
    assert in_state(pair.lab, pair.p2, "MASTER", timeout=10)
    time.sleep(down)    # the fault's length
    pair.p1.thaw()
    return "h2"


def hosts_partitioned(pair: Pair, down: float = 3.0) -> str:
    """Every frame between h1 and h2 dropped `down` s (each still reaches the client), healed."""
    pair.lab.isolate("h1", "h2")
    assert in_state(pair.lab, pair.p2, "MASTER", timeout=10)
    time.sleep(down)    # the fault's length
    pair.lab.unisolate("h1", "h2")
    return "h2"
