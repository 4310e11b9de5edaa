"""Issue 8: the Redis pair loses no acknowledged write, whatever fails on the master host.

Real redis-server on h1 and h2 with the shipped etc/redis-pair/redis-lb*.conf (persistence, the
min-replicas write guard, start as a replica of the peer), vipd with the shipped lb*.toml (the
redis-role hook, the redis-orphan and redis-guard checks) and a short advert interval to keep the
suite fast. A writer in the client does SET then WAIT 1 through the VIP every 5 ms and records, per
write, the answer and which Redis gave it (tests/lab/redis_writer.py).

Each fault lands at a chosen phase of h1's advert cycle (just after one of its adverts, then most
of an interval later). Each scenario asserts, once the pair has settled:
- zero writes acknowledged by WAIT 1 lost (a replica had them);
- zero writes answered OK by the final primary lost;
- the writes the stale side answered OK before it could know (not replicated, so lost) are
  counted, printed, and all fall within the fault plus the guard's bound (docs/data-safety.md);
- no READONLY through the VIP at all: a restarted Redis (a read-only replica until judged safe)
  starts only once this host holds no VIP (the redis-hold drop-in; test_redis_restarted_at_once
  shows the READONLY it prevents);
- the final roles (VRRP and Redis) and the VIP reachable: writes are acknowledged again.
"""
import time

import pytest

import datasafety as ds
from redispair import cli, fast_status, in_state, rinfo

pytestmark = pytest.mark.lab

INTERVAL = 0.2            # advert interval: Master_Down_Interval 0.6 s + skew (0.08 s for lb2)
PHASES = (0.1, 0.8)       # the fault this fraction of an interval after one of h1's adverts
# How long after a fault a stale primary can still answer a write OK: the backup's takeover
# (Master_Down_Interval plus the MASTER hook, well under 1.5 s here) detaches the stale primary's
# replica; then Redis's guard refuses writes once the replica's last ACK is older than
# min-replicas-max-lag (2 s), checked with whole-second clocks in a once-a-second cron: <= 4 s.
STALE_BOUND = 1.5 + 4.0


def check(pair, t_fault: float, master: str, what: str) -> None:
    """The pair settles with `master` as master; then every write is checked (module doc)."""
    o = pair.outcome(master, t_fault)
    print(f"\n{what}: {o.line()}")
    assert o.lost_acked == [], "writes acknowledged by WAIT 1 were lost"
    assert o.lost_final == [], "writes the final primary answered OK were lost"
    assert all(0 <= dt <= STALE_BOUND for dt in o.stale_lost_at), \
        f"the stale side acknowledged writes outside [fault, fault + {STALE_BOUND}s]: {o.stale_lost_at}"
    assert o.readonly_at == [], \
        f"READONLY through the VIP {len(o.readonly_at)} times: {o.readonly_at[:5]} s after the fault"


@pytest.mark.parametrize("phase", PHASES)
def test_master_vipd_killed_and_restarted(lab, phase):
    """SIGKILL (no priority-0 advert): h2 takes over and its Redis is promoted; h1's Redis, cut
    off from its replica, refuses writes within the guard's bound; h1's vipd restarted 2 s later
    stays BACKUP (failback none) and its Redis resyncs from h2."""
    pair = ds.Pair(lab, INTERVAL)
    t = pair.at_phase(phase)
    check(pair, t, ds.vipd_killed(pair), f"master vipd SIGKILLed, phase {phase}")


@pytest.mark.parametrize("wipe", [False, True], ids=["with-data", "empty"])
@pytest.mark.parametrize("phase", PHASES)
def test_master_redis_killed_and_restarted(lab, phase, wipe):
    """SIGKILL h1's Redis, restart it 0.5 s later with its data (AOF) or without (a lost disk).
    Before it starts, the shipped drop-in's redis-hold puts h1's vipd in FAULT (the hold file)
    and waits until the VIP has left h1. It comes back as a replica of h2 (redis-lb1.conf) whose
    link is down, so it cannot be synced from (-NOMASTERLINK) and h2 keeps every write; h2's
    Redis, which has the data, is promoted, h1's resyncs from it, and the redis-orphan check
    lifts the hold: h1 ends BACKUP."""
    pair = ds.Pair(lab, INTERVAL)
    t = pair.at_phase(phase)
    check(pair, t, ds.redis_killed(pair, wipe),
          f"master Redis killed, restarted {'empty' if wipe else 'with its data'} 0.5 s"
               f" later, phase {phase}")


@pytest.mark.parametrize("hold", [True, False], ids=["hold", "no-hold"])
def test_redis_restarted_at_once(lab, hold):
    """The race the hold closes: SIGKILL h1's Redis and restart it at once (with its data), so
    the redis-orphan check (every 0.5 s, the kill just after one of its runs) does not see it
    down. Without the drop-in's
    redis-hold, the restarted Redis -- a read-only replica -- answers the writer through the VIP
    with READONLY until that check puts h1 in FAULT: the READONLY count catches it. With it, the
    VIP leaves h1 before Redis starts, and no write is answered READONLY."""
    pair = ds.Pair(lab, INTERVAL)
    t = pair.after_check_run("redis-orphan")     # its next run comes 0.5 s later
    master = ds.redis_killed(pair, wipe=False, down=0.0, hold=hold)
    if hold:
        check(pair, t, master, "master Redis killed and restarted at once, with the hold")
        return
    assert lab.wait_for(lambda: "READONLY" in pair.writer.errors(), timeout=10), \
        pair.writer.errors()
    print(f"\nwithout the hold: {pair.writer.errors()}")


@pytest.mark.parametrize("redis_first", [True, False], ids=["redis-first", "vipd-first"])
@pytest.mark.parametrize("phase", PHASES)
def test_master_host_restarted(lab, phase, redis_first):
    """Host restart: vipd and Redis SIGKILLed, link down 3 s (the VIP goes with the reboot),
    then Redis started without its data and vipd, in either order. h2 takes over; h1's empty
    Redis starts as h2's replica and syncs from it; nothing is lost."""
    pair = ds.Pair(lab, INTERVAL)
    t = pair.at_phase(phase)
    check(pair, t, ds.host_restarted(pair, redis_first),
          f"master host restarted ({'Redis' if redis_first else 'vipd'} first), phase {phase}")


@pytest.mark.parametrize("phase", PHASES)
def test_master_vipd_frozen(lab, phase):
    """h1's vipd SIGSTOPped 3 s: h2 takes over and its Redis is promoted (h1's Redis, which lost
    its replica, refuses writes within the guard's bound). On SIGCONT two masters meet: h2's Redis
    is the successor of h1's, so h2 keeps the role whatever the priorities, and h1 yields and
    resyncs (vipd's data_source decision)."""
    pair = ds.Pair(lab, INTERVAL)
    t = pair.at_phase(phase)
    check(pair, t, ds.vipd_frozen(pair), f"master vipd frozen 3 s, phase {phase}")


@pytest.mark.parametrize("phase", PHASES)
def test_partition_between_the_hosts(lab, phase):
    """Every frame between h1 and h2 dropped 3 s, each still reaching the client: h2 takes over;
    h1 keeps the VIP too, but its Redis refuses writes within the guard's bound. On the heal h2's
    data (the successor) wins, and the client reaches the VIP again."""
    pair = ds.Pair(lab, INTERVAL)
    t = pair.at_phase(phase)
    check(pair, t, ds.hosts_partitioned(pair), f"partition between the hosts 3 s, phase {phase}")


@pytest.mark.parametrize("wipe", [False, True], ids=["with-data", "empty"])
def test_redis_restarted_while_the_peer_host_is_down(lab, wipe):
    """h2's host goes down (h1's Redis, guarded, soon refuses writes), then h1's Redis is killed
    and restarted, with its data or without (docs/data-safety.md, "Both down"):
    - with its data, it is the only copy within reach: the redis-orphan check lifts the hold, h1
      becomes master again, its hook promotes the Redis and writes are answered again;
    - empty, it is never promoted: h1 stays FAULT (status: a detached replica, an orphan) with
      its Redis an empty replica, until h2 comes back with the data and takes the role; h1's
      Redis then syncs from it.
    Either way h2 then comes back and every write acknowledged by WAIT 1 is still there."""
    pair = ds.Pair(lab, INTERVAL)
    t = time.monotonic()
    ds.host_down(pair, "h2")
    pair.redis.kill("h1")
    pair.redis.start("h1", wipe=wipe)
    assert "holds no VIP" in pair.redis.held, pair.redis.held
    if wipe:
        assert in_state(lab, pair.p1, "FAULT", timeout=5)
        # never promoted: no other state within well over Master_Down_Interval + the hook
        assert not lab.wait_for(lambda: fast_status(pair.p1)["state"] != "FAULT", timeout=2)
        d = fast_status(pair.p1)["detached_replica"]
        assert d and d["source"] == "redis" and "not linked since it started" in d["reason"], d
        assert rinfo(lab, "h1")["role"] == "slave" and cli(lab, "h1", "DBSIZE") == "0"
    else:
        assert in_state(lab, pair.p1, "MASTER", timeout=15), fast_status(pair.p1)
        # promoted by the MASTER hook (the VIP goes up once it is done)
        assert lab.wait_for(lambda: rinfo(lab, "h1")["role"] == "master", timeout=5)
        t_back = time.monotonic()
        assert lab.wait_for(lambda: len(pair.writer.written(since=t_back)) >= 20, timeout=10), \
            pair.writer.records()[-3:]
        assert fast_status(pair.p1)["detached_replica"] is None
    ds.host_back(pair, "h2")
    check(pair, t, "h2" if wipe else "h1",
          f"peer host down, Redis restarted {'empty' if wipe else 'with its data'}")
