"""The Redis pair's data guards one by one, against real redis-server in lab namespaces (h1 =
198.51.100.1, h2 = 198.51.100.2): the redis-role hook's refusals, checks/redis-guard and
checks/redis-orphan (docs/data-safety.md). Each rule is shown both refusing and allowing."""
import pytest

from test_check_programs import H1, H2, cli, hook, run_check

pytestmark = pytest.mark.lab


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
    assert code == 1 and "not following" in line, line
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
