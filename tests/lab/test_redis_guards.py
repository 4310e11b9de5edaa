"""The Redis pair's data guards one by one, against real redis-server in lab namespaces (h1 =
198.51.100.1, h2 = 198.51.100.2): the redis-role hook's refusals, checks/redis-guard and
checks/redis-orphan (docs/data-safety.md). Each rule is shown both refusing and allowing."""
import pytest

from conftest import REPO
from test_check_programs import H1, H2, cli, hook, info, run_check

pytestmark = pytest.mark.lab
HOLD = REPO / "etc" / "hooks" / "redis-hold"


def run(lab, name, *args, host="h1"):
    """A bash check program (no Python in front): (exit status, its one line, seconds)."""
    return run_check(lab, name, *args, host=host, python=())


def test_hook_never_promotes_an_empty_redis_over_a_peer_with_data(lab):
    lab.start_redis("h1", extra=["--replicaof", H2, "6390"])     # an empty replica, no link
    lab.start_redis("h2")
    cli(lab, "h2", "SET", "k", "v")
    code, line = hook(lab, "h1", "MASTER", REDIS_PEER=H2)
    assert code == 75 and "refused to promote" in line and "holds 1 keys" in line, line
    assert cli(lab, "h1", "ROLE").splitlines()[0] == "slave"      # nothing changed
    cli(lab, "h2", "FLUSHALL")                                   # the peer has nothing either
    code, line = hook(lab, "h1", "MASTER", REDIS_PEER=H2)
    assert code == 0 and "promoted" in line and "write guard off" in line, line
    assert cli(lab, "h1", "ROLE").splitlines()[0] == "master"
    assert cli(lab, "h1", "CONFIG", "GET", "min-replicas-to-write").split()[-1] == "0"


def test_hook_backup_never_follows_an_empty_primary(lab):
    lab.start_redis("h1")
    lab.start_redis("h2")
    cli(lab, "h1", "SET", "k", "v")
    code, line = hook(lab, "h1", "BACKUP", master_ip=H2)
    assert code == 75 and "not following" in line, line     # 75: vipd shows a detached replica
    assert cli(lab, "h1", "ROLE").splitlines()[0] == "master" and cli(lab, "h1", "GET", "k") == "v"
    cli(lab, "h2", "SET", "other", "x")                          # a primary with data: follow it
    code, line = hook(lab, "h1", "BACKUP", master_ip=H2)
    assert code == 0 and f"replicates from {H2}" in line, line


def test_guard_check_turns_the_guard_on_once_a_replica_is_in_sync_never_off(lab):
    lab.start_redis("h1", extra=["--min-replicas-max-lag", "2"])
    lab.start_redis("h2")
    code, line, _ = run(lab, "redis-guard", "--timeout", "2")
    assert code == 0 and "write guard off" in line and "serves alone" in line, line
    cli(lab, "h2", "REPLICAOF", H1, "6379")
    assert lab.wait_for(lambda: "turned on" in run(lab, "redis-guard")[1], timeout=10)
    assert cli(lab, "h1", "CONFIG", "GET", "min-replicas-to-write").split()[-1] == "1"
    code, line, _ = run(lab, "redis-guard")
    assert code == 0 and "write guard on: 1 replicas in sync" in line, line
    cli(lab, "h2", "REPLICAOF", "NO", "ONE")                     # the replica goes away
    assert lab.wait_for(lambda: "not met" in run(lab, "redis-guard")[1], timeout=10)
    assert cli(lab, "h1", "CONFIG", "GET", "min-replicas-to-write").split()[-1] == "1"
    assert cli(lab, "h1", "SET", "k", "v").startswith("NOREPLICAS")
    code, line, _ = run(lab, "redis-guard", host="h2")     # h2: guard 0 and no replica
    assert code == 0 and "serves alone" in line, line


def test_orphan_check(lab):
    lab.start_redis("h1", extra=["--replicaof", H2, "6379"])     # both start as each other's
    lab.start_redis("h2", extra=["--replicaof", H1, "6379"])     # replica: both orphans
    code, line, _ = run(lab, "redis-orphan", "--peer", H2, "--prefer")
    assert code == 0 and "preferred" in line, line
    code, line, _ = run(lab, "redis-orphan", "--peer", H1, host="h2")
    assert code == 1 and line.startswith("redis-orphan: orphan"), line
    cli(lab, "h1", "REPLICAOF", "NO", "ONE")                     # h1 promoted: h2 links to it
    code, line, _ = run(lab, "redis-orphan", "--peer", H1, host="h2")
    assert code == 0, line
    assert lab.wait_for(lambda: "replicates from" in run(
        lab, "redis-orphan", "--peer", H1, host="h2")[1], timeout=10)
    lab.stop_redis("h1")                                         # down: it would return an orphan
    code, line, _ = run(lab, "redis-orphan", "--peer", H2)
    assert code == 1 and "is down" in line, line
    code, line, _ = run(lab, "redis-orphan", "--peer", H1, host="h2")
    assert code == 0 and "has linked since it started" in line, line   # h2 has h1's data


def test_orphan_rules_when_one_side_has_the_data_or_the_peer_is_down(lab):
    """Both orphans: the one with data passes (also without --prefer) and the empty one fails
    (also with it). An orphan whose peer does not answer passes with data (the only copy within
    reach) and fails empty (never promoted: it waits for the peer)."""
    lab.start_redis("h1", extra=["--replicaof", H2, "6379", "--enable-debug-command", "local"])
    lab.start_redis("h2", extra=["--replicaof", H1, "6379"])
    cli(lab, "h1", "DEBUG", "POPULATE", "10")                    # h1: data; h2: empty
    code, line, _ = run(lab, "redis-orphan", "--peer", H2)
    assert code == 0 and "this one holds the data (10 keys)" in line, line
    code, line, _ = run(lab, "redis-orphan", "--peer", H1, "--prefer", host="h2")
    assert code == 1 and line.startswith("redis-orphan: orphan"), line
    lab.stop_redis("h2")                                         # the peer's host is down too
    code, line, _ = run(lab, "redis-orphan", "--peer", H2)
    assert code == 0 and "the only copy within reach" in line, line
    lab.stop_redis("h1")                                         # restarted without its data
    lab.start_redis("h1", extra=["--replicaof", H2, "6379"])
    code, line, _ = run(lab, "redis-orphan", "--peer", H2, "--prefer")
    assert code == 1 and "is empty" in line and "never promoted" in line, line


def test_hold_is_set_before_redis_starts_and_lifted_only_when_safe(lab):
    """redis-hold writes the hold (1: a weight-0 track file is a FAULT) and returns once no
    interface holds the VIP; the hook refuses a promotion while it is there; the redis-orphan
    check keeps it while the restarted Redis is an orphan or only linking, and lifts it once the
    Redis is linked to its primary."""
    hold = lab.workdir / "h2" / "run" / "redis.hold"
    prog = [str(HOLD), "--file", str(hold), "--vip", "198.51.100.100/24", "--wait", "0.5"]
    lab.run("h2", ["ip", "addr", "add", "198.51.100.100/24", "dev", "eth0"])
    r = lab.run("h2", prog)                                      # nobody removes it: it gives up
    assert "still here after 0.5s" in r.stdout and hold.read_text().startswith("1 "), r.stdout
    lab.run("h2", ["ip", "addr", "del", "198.51.100.100/24", "dev", "eth0"])
    r = lab.run("h2", prog)
    assert "holds no VIP" in r.stdout and hold.read_text().startswith("1 "), r.stdout
    lab.start_redis("h1", extra=["--replicaof", H2, "6379"])    # both orphans, h2 empty
    lab.start_redis("h2", extra=["--replicaof", H1, "6379"])
    code, line = hook(lab, "h2", "MASTER", REDIS_HOLD_FILE=str(hold))
    assert code == 75 and "is restarting" in line, line
    hold_arg = ("--peer", H1, "--hold", str(hold))
    code, line, _ = run(lab, "redis-orphan", *hold_arg, host="h2")
    assert code == 1 and hold.exists(), line
    cli(lab, "h1", "REPLICAOF", "NO", "ONE")
    cli(lab, "h1", "SET", "k", "v")
    assert lab.wait_for(lambda: "(hold lifted)" in run(lab, "redis-orphan", *hold_arg,
                                                        host="h2")[1], timeout=10)
    assert not hold.exists() and info(lab, "h2")["master_link_status"] == "up"
    code, line, _ = run(lab, "redis-orphan", *hold_arg, host="h2")
    assert code == 0 and "lifted" not in line, line
