"""A master hook that exits 75 refuses the promotion (docs/data-safety.md), on a real kernel.

h1 alone, priority 150, a master hook that refuses while a flag file exists and says why: the VIP
never goes up, h1 goes back to BACKUP with the hook's line as the reason, sends priority 0, and
`vipd status` shows the refused promotion and the hook's last run. The hook gets
VIPD_LAST_MASTER_IP. Once the flag is gone, the next attempt (a whole Master_Down_Interval timed
as priority 1 later) succeeds and the VIP goes up: the refusal did not stick.
"""
import time

import pytest

from conftest import VIP4, VIPD, instance_status, vipd_config, wait_holder, wait_state

pytestmark = pytest.mark.lab

HOOK = """#!/bin/sh
echo "$VIPD_STATE last=[$VIPD_LAST_MASTER_IP]" >> {log}
if [ "$VIPD_STATE" = MASTER ] && [ -e {flag} ]; then
    echo "local Redis is empty, the peer's holds data"
    exit 75
fi
echo "promoted"
"""


def test_master_hook_exit_75_refuses_the_promotion(lab_factory):
    lab = lab_factory(hosts=1)
    h1 = lab.hosts[0]
    log, flag = lab.workdir / "hook.log", lab.workdir / "refuse"
    flag.touch()
    hook = lab.write("hooks/refuse", HOOK.format(log=log, flag=flag))
    hook.chmod(0o755)
    p1 = lab.start_vipd(h1, vipd_config(priority=150, interval=0.2, instances_extra=(
        f'[instance.notify]\nmaster = ["{hook}"]\nbackup = ["{hook}"]\n')))
    assert lab.wait_for(lambda: instance_status(lab, p1).get("refused_promotion"), timeout=10)
    st = instance_status(lab, p1)
    assert st["refused_promotion"]["reason"] == "local Redis is empty, the peer's holds data"
    assert st["counters"]["promotions_refused"] >= 1 and st["counters"]["priority0_sent"] >= 1
    assert [t["reason"] for t in st["transitions"] if t["to"] == "BACKUP"][-1] == (
        "promotion refused by the master hook: local Redis is empty, the peer's holds data")
    assert lab.holder(VIP4) == []                      # never announced
    table = lab.run(h1, [VIPD, "status", "--socket", p1.socket]).stdout
    assert "promotion refused at" in table, table
    assert "MASTER last=[]" in log.read_text()
    refused_at = time.monotonic()
    flag.unlink()
    assert wait_state(lab, p1, "MASTER", timeout=10)
    assert wait_holder(lab, VIP4, ["h1"], timeout=5)
    # retried after Master_Down_Interval at priority 1 (3 x 0.2 + 255/256 x 0.2 = 0.8 s) or later
    assert time.monotonic() - refused_at < 5
    assert instance_status(lab, p1)["hook"]["output"] == "promoted"
