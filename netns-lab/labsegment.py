"""A second segment for a Lab: bridge br1 in the lab's bridge namespace and an interface (eth1)
on chosen hosts, 203.0.113.<host id>/24. Used to break one interface while instances on eth0
must not notice (tests/lab/test_host_changes.py, soak.py). Everything lives in the lab's
namespaces, so the lab's teardown removes it."""
from __future__ import annotations

import subprocess

SEGMENT_NET = "203.0.113."
BRIDGE1 = "br1"
IFNAME = "eth1"


def segment_ip(host) -> str:
    return f"{SEGMENT_NET}{host.id}"


def add_leg(lab, host) -> None:
    """Creates host's eth1 (a veth whose peer is a port of br1), with its address, up."""
    brns = ["ip", "-n", lab.bridge_ns]
    if subprocess.run([*brns, "link", "show", BRIDGE1], capture_output=True).returncode:
        subprocess.run([*brns, "link", "add", BRIDGE1, "type", "bridge", "stp_state", "0",
                        "forward_delay", "0", "mcast_snooping", "0"], check=True)
        subprocess.run([*brns, "link", "set", BRIDGE1, "up"], check=True)
    port = f"{host.name}b"
    subprocess.run([*brns, "link", "add", port, "type", "veth", "peer", "name", IFNAME,
                    "netns", host.ns], check=True)
    subprocess.run([*brns, "link", "set", port, "master", BRIDGE1, "up"], check=True)
    lab.run(host, ["ip", "addr", "add", f"{segment_ip(host)}/24", "dev", IFNAME])
    lab.run(host, ["ip", "link", "set", IFNAME, "up"])


def del_leg(lab, host) -> None:
    lab.run(host, ["ip", "link", "del", IFNAME])     # takes the bridge port with it
