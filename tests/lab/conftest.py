"""Helpers shared by the lab tests: vipd/keepalived configs and status over the control socket."""
import json
import pathlib
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
VIPD = str(REPO / ".venv" / "bin" / "vipd")
VIP4 = "198.51.100.100"
VIP6 = "2001:db8::100"


def vipd_config(name="web", vrid=51, priority=100, interval=0.1, vips=(f"{VIP4}/24",), version=3,
                extra="", instances_extra="", router_id=None, **kw) -> str:
    """One [[instance]] (plus optional extra TOML) in vipd's documented format."""
    lines = []
    if router_id:
        lines += ["[global]", f'router_id = "{router_id}"', ""]
    lines += [extra, "[[instance]]", f'name = "{name}"', 'interface = "eth0"', f"vrid = {vrid}",
              f"priority = {priority}", f"version = {version}", f"advert_interval = {interval}",
              "vips = [" + ", ".join(f'"{v}"' for v in vips) + "]"]
    for k, v in kw.items():
        lines.append(f"{k} = {json.dumps(v)}")
    lines.append(instances_extra)
    return "\n".join(lines) + "\n"


def keepalived_config(priority=100, vrid=51, interval=1, version=3, vips=(f"{VIP4}/24",),
                      auth_pass=None, state="BACKUP", unicast=None) -> str:
    auth = (f"    authentication {{\n        auth_type PASS\n        auth_pass {auth_pass}\n    }}\n"
            if auth_pass else "")
    vip_lines = "".join(f"        {v}\n" for v in vips)
    return f"""global_defs {{
    vrrp_version {version}
    vrrp_garp_master_delay 0
    vrrp_garp_master_repeat 3
    enable_script_security
}}
vrrp_instance web {{
    state {state}
    interface eth0
    virtual_router_id {vrid}
    priority {priority}
    advert_int {interval}
{auth}    virtual_ipaddress {{
{vip_lines}    }}
}}
"""


def status(lab, proc) -> dict:
    out = lab.run(proc.host, [VIPD, "status", "--json", "--socket", proc.socket])
    return json.loads(out.stdout)


def instance_status(lab, proc, name="web") -> dict:
    return next(i for i in status(lab, proc)["instances"] if i["name"] == name)


def wait_state(lab, proc, state, name="web", timeout=10.0) -> bool:
    def ok():
        try:
            return instance_status(lab, proc, name)["state"] == state
        except Exception:
            return False
    return lab.wait_for(ok, timeout=timeout, interval=0.05)


def wait_holder(lab, vip, hosts, timeout=10.0) -> bool:
    return lab.wait_for(lambda: sorted(lab.holder(vip)) == sorted(hosts), timeout=timeout)


def never_two_holders(lab, vip, seconds) -> list:
    """Samples who holds the VIP for a while; returns every sample with more than one holder."""
    bad = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        h = lab.holder(vip)
        if len(h) > 1:
            bad.append(h)
        time.sleep(0.05)
    return bad


@pytest.fixture
def pair(lab_factory):
    """Two hosts (h1, h2) and a client, nginx on both hosts answering with the host name."""
    lab = lab_factory(hosts=2)
    for h in lab.hosts:
        lab.start_nginx(h)
    return lab
