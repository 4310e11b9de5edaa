"""The newer data wins a split brain (issue 8, item 1), with real redis-server and the shipped
etc/redis-pair configs (data_source set) on real kernels.

h1 (priority 150) is master, its Redis the primary. Its vipd is frozen (SIGSTOP) long enough for
h2 to take over: h2's Redis is promoted and a key is written through the VIP to it. After SIGCONT
h1 is still master with the higher priority and a stale Redis: it must yield for data reasons,
h2 must keep the VIP, h1's Redis must become h2's replica and hold the key written during the
freeze, and `vipd status` on h1 must say why. Without data_source the same fault ends the other
way (h1 takes the role back and the key is lost): that run shows the assertions can fail.
"""
import json
import time

import pytest

import redispair
from conftest import VIP4, VIPD, example_config, wait_holder, wait_state
from redispair import H2, NAME, PORT, cli, fast_status, linked_replica_of, start_pair

pytestmark = pytest.mark.lab


def through_vip(lab, *cmd, check: bool = True) -> str:
    """redis-cli's answer through the VIP; with check=False a failed connection answers "" (one
    opened to h1 just before the client's ARP entry moved to h2 is reset by h2: seen in CI)."""
    return lab.run(lab.client, ["redis-cli", "-h", VIP4, "-p", PORT, *cmd],
                   check=check).stdout.strip()


@pytest.mark.parametrize("data_aware", [True, False], ids=["data-source", "priority-only"])
def test_frozen_master_yields_to_the_promoted_redis(lab_factory, monkeypatch, data_aware):
    lab = lab_factory(hosts=2)
    h1, h2 = lab.hosts
    if not data_aware:
        # The control: no data_source, and not the redis-orphan check either (fall 1): a check
        # frozen with vipd times out on thaw and would take h1 to FAULT, hiding what the RFC
        # priority rule alone does.
        monkeypatch.setattr(redispair, "example_config", lambda *a, **kw: "\n".join(
            'track_checks = ["redis"]' if line.startswith("track_checks") else line
            for line in example_config(*a, **kw).splitlines()
            if not line.startswith("data_source")))
    p1, p2 = start_pair(lab)
    assert through_vip(lab, "SET", "before", "1") == "OK"
    p1.freeze()
    try:
        assert wait_state(lab, p2, "MASTER", NAME, timeout=10)
        # h2's Redis is promoted and the client follows h2's announcement (h1's VIP is still up:
        # its vipd is frozen, not gone)
        assert lab.wait_for(lambda: "role:master" in cli(lab, h2, "INFO", "replication"), 10)
        assert lab.wait_for(lambda: through_vip(lab, "SET", "during", "2", check=False) == "OK",
                            timeout=5)
        assert cli(lab, h2, "GET", "during") == "2"
    finally:
        p1.thaw()
    thawed = time.monotonic()
    if not data_aware:
        # RFC priority: h1 takes the role back and h2's Redis resyncs from h1's stale data set
        assert wait_state(lab, p2, "BACKUP", NAME, timeout=10)
        assert lab.wait_for(lambda: cli(lab, h2, "GET", "during") == "", timeout=10)
        return
    assert lab.wait_for(lambda: fast_status(p1)["state"] == "BACKUP", timeout=10)
    took = time.monotonic() - thawed
    assert wait_holder(lab, VIP4, ["h2"], timeout=5)
    st1 = fast_status(p1)
    assert st1["data"]["verdict"] == "peer-newer" and st1["data"]["peer"] == H2, st1
    # Normally h1 leaves MASTER by the data yield. A check that was running when the group was
    # frozen times out on thaw, and a weight-0 one can take h1 to FAULT first: then it is FAULT
    # (and failback none) that keeps h1 out, with the same verdict recorded.
    yielded = st1["last_yield"] is not None
    assert yielded or any(t["reason"].startswith("fault:") for t in st1["transitions"][-3:]), st1
    if yielded:
        assert st1["last_yield"]["reason"].startswith("yield: peer's Redis is the successor")
    assert fast_status(p2)["state"] == "MASTER"
    assert [t["to"] for t in fast_status(p2)["transitions"]][-1] == "MASTER"   # h2 never left
    # h1's Redis follows h2's and has what was written during the freeze
    assert lab.wait_for(lambda: linked_replica_of(lab, h1, H2), timeout=15)
    assert cli(lab, h1, "GET", "during") == "2" and cli(lab, h1, "GET", "before") == "1"
    assert through_vip(lab, "GET", "during") == "2"
    table = lab.run(h1, [VIPD, "status", "--socket", p1.socket]).stdout
    assert ("yielded at" in table or not yielded) and "hook BACKUP" in table, table
    print(f"\nh1 {'yielded' if yielded else 'left MASTER through FAULT'} {took:.2f}s after"
          f" SIGCONT; status:\n{table}")
    # it stays that way (failback none): no flapping back to h1
    assert not lab.wait_for(lambda: fast_status(p1)["state"] != "BACKUP", timeout=3)
    assert json.loads(lab.run(h2, [VIPD, "status", "--json", "--socket", p2.socket]).stdout)[
        "instances"][0]["state"] == "MASTER"
