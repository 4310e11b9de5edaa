"""Tracked interfaces (both behaviours), per-instance check weight overrides, script_user, and
the unicast example config, on real kernels."""
import json
import pathlib
import pwd
import shutil
import subprocess
import tempfile

import pytest

from conftest import (REPO, VIP4, VIPD, example_config, instance_status, vipd_config, wait_holder,
                      wait_state)

pytestmark = pytest.mark.lab


def add_dummy(lab, host, name="uplink0"):
    # a veth pair inside the host stands in for a second NIC (no dummy module here)
    lab.run(host, ["ip", "link", "add", name, "type", "veth", "peer", "name", name + "p"])
    lab.run(host, ["ip", "link", "set", name + "p", "up"])
    lab.run(host, ["ip", "link", "set", name, "up"])


@pytest.mark.parametrize("weight", [0, -60])
def test_tracked_interface_down_faults_or_lowers_priority(pair, weight):
    lab = pair
    h1, h2 = lab.hosts
    add_dummy(lab, h1)
    track = f'track_interfaces = [{{name = "uplink0", weight = {weight}}}]'
    p1 = lab.start_vipd(h1, vipd_config(priority=150, instances_extra=track))
    lab.start_vipd(h2, vipd_config(priority=100))
    assert wait_holder(lab, VIP4, ["h1"])
    lab.run(h1, ["ip", "link", "set", "uplink0", "down"])
    assert wait_holder(lab, VIP4, ["h2"], timeout=5)
    st = instance_status(lab, p1)
    if weight == 0:
        assert st["state"] == "FAULT" and st["faults"] == ["link uplink0 down"]
    else:
        assert st["state"] == "BACKUP" and st["effective_priority"] == 90
    lab.run(h1, ["ip", "link", "set", "uplink0", "up"])
    assert wait_holder(lab, VIP4, ["h1"], timeout=5)
    assert instance_status(lab, p1)["effective_priority"] == 150


def test_instance_overrides_the_check_weight(pair):
    """The check says weight 0 (FAULT); this instance tracks it with -60 instead."""
    lab = pair
    h1, h2 = lab.hosts
    checks = (f'[checks.web]\ncommand = ["{REPO}/checks/nginx", "--url", "http://127.0.0.1/"]\n'
              "interval = 0.3\ntimeout = 1.0\nrise = 1\nfall = 1\nweight = 0\n")
    track = 'track_checks = [{name = "web", weight = -60}]'
    p1 = lab.start_vipd(h1, vipd_config(priority=150, extra=checks, instances_extra=track))
    lab.start_vipd(h2, vipd_config(priority=100))
    assert wait_holder(lab, VIP4, ["h1"])
    lab.stop_nginx(h1)
    assert wait_holder(lab, VIP4, ["h2"], timeout=5)
    st = instance_status(lab, p1)
    assert st["state"] == "BACKUP" and st["effective_priority"] == 90
    assert st["checks"]["web"]["ok"] is False


@pytest.fixture
def world_dir():
    """A root-owned 0755 directory outside the lab's root-only work directory, so that an
    unprivileged script_user can reach the hook in it."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="vipd-su-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d)


def test_script_user_runs_hooks_as_that_user(pair, world_dir):
    lab = pair
    h1 = lab.host("h1")
    out = world_dir / "out"
    out.mkdir()
    out.chmod(0o777)
    hook = world_dir / "whoami-hook"
    hook.write_text(f"#!/bin/sh\nid -u > {out}/$VIPD_STATE\n")
    hook.chmod(0o755)
    notify = f'[instance.notify]\nmaster = ["{hook}"]\nbackup = ["{hook}"]\n'
    text = vipd_config(priority=150, extra='[global]\nscript_user = "nobody"\n',
                       instances_extra=notify)
    p1 = lab.start_vipd(h1, text)
    assert wait_state(lab, p1, "MASTER")
    assert lab.wait_for(lambda: (out / "MASTER").exists(), timeout=5)
    assert (out / "MASTER").read_text().strip() == str(pwd.getpwnam("nobody").pw_uid)


def test_unicast_example_pair(pair):
    lab = pair
    h1, h2 = lab.hosts
    texts = {h: example_config(lab, h, f"unicast-pair/lb{h.id}.toml", advert_interval=0.2)
             for h in (h1, h2)}
    for h, text in texts.items():
        path = lab.write(f"{h.name}/example.toml", text)
        r = subprocess.run([VIPD, "check-config", "-c", str(path)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    p1 = lab.start_vipd(h1, texts[h1])
    p2 = lab.start_vipd(h2, texts[h2])
    assert wait_holder(lab, VIP4, ["h1"])
    assert wait_state(lab, p2, "BACKUP", name="vip1")
    st = json.loads(lab.run(h2, [VIPD, "status", "--json", "--socket", p2.socket]).stdout)
    assert st["instances"][0]["master_ip"] == h1.ip4
    lab.cut(h1)
    assert wait_holder(lab, VIP4, ["h2"], timeout=5)
    lab.heal(h1)
    assert wait_holder(lab, VIP4, ["h1"], timeout=5)
    assert p1.alive()
