"""Bad configs are refused by check-config, by run, and by SIGHUP without disturbing anything;
a good reload keeps unchanged instances as they are."""
import signal
import subprocess

import pytest

from conftest import VIP4, VIPD, instance_status, status, vipd_config, wait_holder, wait_state

pytestmark = pytest.mark.lab

BAD = {   # what is wrong -> (TOML, key path and words the error must show)
    "unknown key": (vipd_config(prioritty=5), ["instance[0].prioritty", "unknown key"]),
    "priority 300": (vipd_config(priority=300), ["instance[0].priority", "300"]),
    "v2 interval 0.5": (vipd_config(version=2, interval=0.5), ["instance[0].advert_interval", "0.5"]),
    "IPv6 VIP on IPv4 instance": (vipd_config(vips=[f"{VIP4}/24", "2001:db8::100/64"]),
                                  ["instance[0].vips", "2001:db8::100"]),
}


@pytest.mark.parametrize("what", BAD)
def test_check_config_and_run_refuse_bad_config(tmp_path, what):
    text, needles = BAD[what]
    path = tmp_path / "vipd.toml"
    path.write_text(text)
    for cmd in (["check-config", "-c", str(path)], ["run", "-c", str(path)]):
        r = subprocess.run([VIPD, *cmd], capture_output=True, text=True, timeout=20)
        assert r.returncode == 2, (cmd, r.stdout, r.stderr)
        for needle in [str(path), *needles]:
            assert needle in r.stderr, (needle, r.stderr)


def test_check_config_lists_every_error(tmp_path):
    path = tmp_path / "vipd.toml"
    path.write_text(vipd_config(priority=300, vrid=0, prioritty=5))
    r = subprocess.run([VIPD, "check-config", "-c", str(path)], capture_output=True, text=True)
    assert r.returncode == 2
    for key in ("instance[0].priority", "instance[0].vrid", "instance[0].prioritty"):
        assert key in r.stderr


def test_sighup_rejects_bad_config_and_applies_good_one(pair):
    lab = pair
    h1, h2 = lab.hosts
    conf1 = vipd_config(priority=150)
    p1 = lab.start_vipd(h1, conf1)
    p2 = lab.start_vipd(h2, vipd_config(priority=100))
    assert wait_holder(lab, VIP4, ["h1"])
    assert wait_state(lab, p2, "BACKUP")
    cfg_path = p1.config_path
    before = instance_status(lab, p1)
    for n, (text, needles) in enumerate(BAD.values(), 1):
        cfg_path.write_text(text)
        p1.send_signal(signal.SIGHUP)    # one at a time: signals sent together may coalesce
        assert lab.wait_for(lambda: p1.output().count("reload rejected") == n, timeout=5)
        assert needles[0] in p1.output()
    after = instance_status(lab, p1)
    assert after["state"] == "MASTER" and after["since"] == before["since"]
    assert after["counters"]["transitions"] == before["counters"]["transitions"]
    assert lab.holder(VIP4) == ["h1"]
    # A good reload that adds an instance: "web" is untouched, the new one starts.
    cfg_path.write_text(conf1 + vipd_config(name="api", vrid=52, priority=150,
                                            vips=["198.51.100.101/24"]))
    p1.send_signal(signal.SIGHUP)
    assert lab.wait_for(lambda: len(status(lab, p1)["instances"]) == 2, timeout=5)
    assert wait_holder(lab, "198.51.100.101", ["h1"], timeout=5)
    web = instance_status(lab, p1)
    assert web["since"] == before["since"] and web["state"] == "MASTER"
    assert web["counters"]["transitions"] == before["counters"]["transitions"]
    assert lab.holder(VIP4) == ["h1"]
