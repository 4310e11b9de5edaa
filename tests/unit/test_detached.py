"""vipd/detached.py: when `vipd status` calls the local Redis a detached replica, and why."""
import pytest

from vipd.detached import REFUSE_FOLLOW, detached_replica
from vipd.statusfmt import table

LINKED = {"role": "slave", "master_host": "198.51.100.1", "master_port": "6379",
          "master_link_status": "up", "master_sync_in_progress": "0",
          "master_link_down_since_seconds": "-1"}
REFUSED = {"state": "BACKUP", "exit": REFUSE_FOLLOW, "time": 1.0, "duration": 0.1,
           "output": "redis-role redis BACKUP: not following 198.51.100.1:6379: it is a primary"
                     " holding no key, and Redis at 127.0.0.1:6379 holds 12"}


@pytest.mark.parametrize("info", [None, {}, {"role": "master"}, LINKED,
                                  {**LINKED, "master_link_status": "down",
                                   "master_sync_in_progress": "1"}],
                         ids=["unreadable", "empty", "primary", "linked", "full-sync"])
def test_not_detached(info):
    assert detached_replica(info, None) is None
    ok_hook = {**REFUSED, "exit": 0}
    assert detached_replica(info, ok_hook) is None


@pytest.mark.parametrize("down,why", [
    ("-1", "replica of 198.51.100.1:6379, not linked since it started (an orphan)"),
    ("12", "replica of 198.51.100.1:6379, link down for 12 s"),
    ("", "replica of 198.51.100.1:6379, link down")])
def test_a_replica_whose_link_is_down_is_detached(down, why):
    info = {**LINKED, "master_link_status": "down", "master_link_down_since_seconds": down}
    assert detached_replica(info, None) == {"reason": why, "source": "redis"}


def test_a_backup_hook_that_refused_to_follow_says_why_first():
    assert detached_replica(LINKED, REFUSED) == {"reason": REFUSED["output"], "source": "hook"}
    assert detached_replica(None, {**REFUSED, "output": ""})["reason"] == "BACKUP hook exit 75"
    # a MASTER hook's 75 is a refused promotion (its own status field), not a detached replica
    assert detached_replica(LINKED, {**REFUSED, "state": "MASTER"}) is None


def test_the_table_shows_it():
    st = {"router_id": "lb2", "instances": [{
        "name": "redis", "vrid": 53, "interface": "eth0", "state": "BACKUP", "priority": 100,
        "effective_priority": 100, "master_ip": "198.51.100.1", "vips": [], "failback": "none",
        "failback_pending": False, "checks": {}, "counters": {}, "since": 0.0,
        "detached_replica": {"reason": "replica of 198.51.100.1:6379, link down for 3 s",
                             "source": "redis"}}]}
    assert "detached replica (redis): replica of 198.51.100.1:6379, link down for 3 s" \
        in table(st)
