"""The lab itself, on real kernels: reachability, VRRP multicast flooding, the faults it injects,
the services it runs, process control, and that nothing it made outlives it."""
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

import lab as labmod
from lab import Lab
from labkit import HTTP_GET

pytestmark = pytest.mark.lab
LAB_PY = labmod.__file__
PY = sys.executable

# Joins the VRRP group on eth0 and prints "<source> <payload>" for each protocol-112 packet.
RECV = r"""
import socket, struct, sys
idx = socket.if_nametoindex("eth0")
if sys.argv[1] == "4":
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                 struct.pack("4s4si", socket.inet_aton("224.0.0.18"), bytes(4), idx))
else:
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 112)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                 socket.inet_pton(socket.AF_INET6, "ff02::12") + struct.pack("I", idx))
print("ready", flush=True)
while True:
    data, src = s.recvfrom(2048)
    if sys.argv[1] == "4":   # IPv4 raw sockets see the IP header too
        data = data[(data[0] & 15) * 4:]
    print(src[0].split("%")[0], data.decode(errors="replace"), flush=True)
"""

# Sends one protocol-112 packet with payload argv[2] to 224.0.0.18 / ff02::12, TTL 255;
# "vmac" builds the Ethernet frame itself with a VRRP virtual MAC as source.
SEND = r"""
import socket, struct, sys
fam, tag = sys.argv[1], sys.argv[2].encode()
idx = socket.if_nametoindex("eth0")
if fam == "4":
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
    s.sendto(tag, ("224.0.0.18", 0))
elif fam == "6":
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 112)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
    s.sendto(tag, ("ff02::12", 0, 0, idx))
else:
    src = socket.inet_aton(sys.argv[3])
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tag), 0, 0, 255, 112, 0, src,
                      socket.inet_aton("224.0.0.18"))
    t = sum(struct.unpack("!10H", hdr))
    t = (t >> 16) + (t & 0xFFFF)
    hdr = hdr[:10] + struct.pack("!H", ~(t + (t >> 16)) & 0xFFFF) + hdr[12:]
    eth = bytes.fromhex("01005e000012" "00005e000133" "0800")
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind(("eth0", 0))
    s.send(eth + hdr + tag)
"""


def listen(lab, hosts, fam):
    procs = {h.name: lab.spawn(h, [PY, "-c", RECV, fam], name=f"recv{fam}") for h in hosts}
    for p in procs.values():
        assert lab.wait_for(lambda: "ready" in p.output(), timeout=5), p.output()
    return procs


def send(lab, host, fam, tag):
    lab.run(host, [PY, "-c", SEND, fam, tag, host.ip4])


def heard(receivers, tag):
    return sorted(name for name, p in receivers.items() if tag in p.output())


def carrier(lab, host) -> str:
    return lab.run(host, "cat /sys/class/net/eth0/carrier").stdout.strip()


def lab_namespaces(prefix):
    return [n for n in os.listdir(labmod.NETNS_DIR) if n.startswith(prefix)]


def gone(pid) -> bool:
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_every_member_reaches_every_other_over_ipv4_and_ipv6(lab_factory):
    lab = lab_factory(hosts=3)
    members = [*lab.hosts, lab.client]
    assert [h.ns for h in members] == [f"{lab.prefix}h1", f"{lab.prefix}h2", f"{lab.prefix}h3",
                                       f"{lab.prefix}c"]
    for h in members:
        addrs = lab.addrs(h)
        assert f"{h.ip4}/24" in addrs and f"{h.ip6}/64" in addrs
        assert any(a.startswith("fe80:") for a in addrs), addrs
        # DAD off: no address is tentative, so a VIP or link-local is usable at once.
        assert lab.run(h, "ip -6 addr show dev eth0 tentative").stdout == ""
        assert lab.run(h, "sysctl -n net.ipv6.conf.eth0.accept_dad").stdout.strip() == "0"
    assert lab.client.ip4 == "198.51.100.200" and lab.client.ip6 == "2001:db8::200"
    failed = [(s.name, d.name, dst) for s in members for d in members if s is not d
              for dst in (d.ip4, d.ip6) if not lab.ping(s, dst)]
    assert failed == []
    br = json.loads(subprocess.run(["ip", "-n", lab.bridge_ns, "-j", "-d", "link", "show", "br0"],
                                   capture_output=True, text=True, check=True).stdout)[0]
    info = br["linkinfo"]["info_data"]
    assert (info["stp_state"], info["forward_delay"], info["mcast_snooping"]) == (0, 0, 0)


@pytest.mark.parametrize("fam", ["4", "6"])
def test_vrrp_multicast_from_one_host_reaches_every_other(lab, fam):
    h1, h2 = lab.hosts
    receivers = listen(lab, [h2, lab.client], fam)
    send(lab, h1, fam, "hello-1")
    assert lab.wait_for(lambda: heard(receivers, "hello-1") == ["c", "h2"], timeout=3)
    src = h1.ip4 if fam == "4" else next(a for a in lab.addrs(h1) if a.startswith("fe80"))
    assert f"{src.split('/')[0]} hello-1" in receivers["h2"].output()


def test_partition_drops_vrrp_between_two_hosts_only(lab_factory):
    lab = lab_factory(hosts=3)
    h1, h2, h3 = lab.hosts
    rx4 = listen(lab, lab.hosts, "4")
    rx6 = listen(lab, lab.hosts, "6")
    lab.partition(h1, h2)
    for fam, rx in (("4", rx4), ("6", rx6), ("vmac", rx4)):
        send(lab, h1, fam, f"{fam}-from-h1")
        send(lab, h2, fam, f"{fam}-from-h2")
        assert lab.wait_for(lambda: "h3" in heard(rx, f"{fam}-from-h2"), timeout=3)
        assert lab.wait_for(lambda: "h3" in heard(rx, f"{fam}-from-h1"), timeout=3)
        time.sleep(0.1)    # the same flood reached h3 already
        assert "h2" not in heard(rx, f"{fam}-from-h1"), fam
        assert "h1" not in heard(rx, f"{fam}-from-h2"), fam
    assert lab.ping(h1, h2.ip4) and lab.ping(h2, h1.ip6)
    lab.unpartition(h1, h2)
    send(lab, h1, "4", "healed")
    assert lab.wait_for(lambda: heard(rx4, "healed") == ["h1", "h2", "h3"], timeout=3)


def test_cut_and_silent_cut_then_heal(lab):
    h1, h2 = lab.hosts
    c = lab.client
    assert lab.ping(c, h1.ip4) and carrier(lab, h1) == "1"
    lab.cut(h1)
    assert carrier(lab, h1) == "0"
    assert not lab.ping(c, h1.ip4, timeout=0.3) and not lab.ping(c, h1.ip6, timeout=0.3)
    assert lab.ping(c, h2.ip4)
    lab.heal(h1)
    assert lab.wait_for(lambda: carrier(lab, h1) == "1", timeout=3)
    assert lab.wait_for(lambda: lab.ping(c, h1.ip4, timeout=0.3), timeout=5)

    lab.cut(h1, silent=True)
    assert not lab.ping(c, h1.ip6, timeout=0.3) and not lab.ping(h1, h2.ip4, timeout=0.3)
    assert carrier(lab, h1) == "1"
    assert lab.ping(c, h2.ip6)
    lab.heal(h1)
    assert lab.wait_for(lambda: lab.ping(c, h1.ip6, timeout=0.3), timeout=5)
    assert lab.wait_for(lambda: lab.ping(h1, h2.ip4, timeout=0.3), timeout=5)


@pytest.mark.parametrize("client", ["curl", "python"])
def test_nginx_and_redis_serve_the_client_from_the_lab_workdir(lab, client):
    h1, h2 = lab.hosts
    c = lab.client
    if client == "python":
        lab.curl = None     # as on a machine without curl
    else:                   # scripts/bootstrap installs curl: without it this case tests nothing
        assert lab.curl, "curl is not installed (scripts/bootstrap installs it)"
    lab.start_nginx(h1)
    lab.start_nginx(h2, port=8080, body="custom\n")
    assert lab.http_get(c, f"http://{h1.ip4}/") == "h1\n"
    assert lab.http_get(c, f"http://[{h1.ip6}]/") == "h1\n"
    assert lab.http_get(c, f"http://{h2.ip4}:8080/") == "custom\n"
    assert lab.http_get(c, f"http://{h2.ip4}:8080/missing") is None     # 404
    lab.stop_nginx(h1)
    assert lab.http_get(c, f"http://{h1.ip4}/", timeout=0.5) is None
    lab.start_redis(h2)
    cli = ["redis-cli", "-h", h2.ip4]
    assert lab.run(c, cli + ["PING"]).stdout.strip() == "PONG"
    assert lab.run(c, cli + ["CONFIG", "GET", "dir"]).stdout.split()[1].startswith(str(lab.workdir))
    lab.stop_redis(h2)
    assert lab.run(c, cli + ["PING"], check=False).returncode != 0


def test_freeze_thaw_stop_kill(lab):
    h1 = lab.hosts[0]
    nginx = lab.start_nginx(h1)
    url = f"http://{h1.ip4}/"
    nginx.freeze()
    assert lab.http_get(lab.client, url, timeout=0.5) is None
    assert nginx.alive()
    nginx.thaw()
    assert lab.http_get(lab.client, url) == "h1\n"
    nginx.freeze()
    assert nginx.stop() == 0 and not nginx.alive()    # stop wakes a frozen process
    sleeper = lab.spawn(h1, ["sleep", "300"])
    assert sleeper.kill() == -signal.SIGKILL and gone(sleeper.pid)
    echo = lab.spawn(h1, "echo out; echo err >&2", name="echo")
    assert lab.wait_for(lambda: not echo.alive(), timeout=3)
    assert echo.output() == "out\nerr\n" and echo.log_path.parent == lab.workdir / "h1"


def test_capture_sees_frames_forwarded_between_ports(lab):
    from scapy.all import ICMPv6EchoRequest, IPv6, rdpcap
    h1, h2 = lab.hosts
    cap = lab.capture()
    assert lab.ping(h1, h2.ip6)
    pkts = rdpcap(str(cap.stop()))
    assert [p for p in pkts if ICMPv6EchoRequest in p and p[IPv6].src == h1.ip6
            and p[IPv6].dst == h2.ip6]


def test_vipd_and_keepalived_run_with_their_files_in_the_workdir(lab):
    h1, h2 = lab.hosts
    vipd = lab.start_vipd(h1, '[global]\nrouter_id = "h1"\n\n[[instance]]\nname = "web"\n'
                              'interface = "eth0"\nvrid = 51\npriority = 150\nadvert_interval = 0.1\n'
                              'vips = ["198.51.100.100/24"]\n')
    assert vipd.socket == str(lab.workdir / "h1" / "vipd.sock")
    status = lab.run(h1, [str(labmod.VIPD), "status", "--json", "--socket", vipd.socket])
    st = json.loads(status.stdout)
    assert st["router_id"] == "h1"
    assert lab.wait_for(lambda: lab.holder("198.51.100.100") == ["h1"], timeout=5), vipd.output()
    keepalived = lab.start_keepalived(h2, "vrrp_instance web {\n interface eth0\n"
                                          " virtual_router_id 52\n priority 100\n advert_int 1\n"
                                          " virtual_ipaddress {\n  198.51.100.101/24\n }\n}\n")
    assert lab.wait_for(lambda: "Entering BACKUP STATE" in keepalived.output(), timeout=5), \
        keepalived.output()
    assert (lab.workdir / "h2" / "keepalived" / "vrrp.pid").exists()
    assert vipd.stop() == 0 and lab.holder("198.51.100.100") == []


def test_down_removes_everything_even_after_an_exception():
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="boom"):
        with Lab(hosts=2) as lab:
            took = time.monotonic() - t0
            lab.start_nginx(lab.hosts[0])
            lab.spawn(lab.hosts[1], ["sleep", "300"])
            # A process the lab did not start itself, detached from everything.
            lab.run(lab.client, "setsid sleep 300 >/dev/null 2>&1 &")
            pids = [int(p) for m in lab.members for p in
                    subprocess.run(["ip", "netns", "pids", m.ns], capture_output=True, text=True,
                                   check=True).stdout.split()]
            assert len(pids) >= 4     # nginx master and worker, two sleeps
            raise RuntimeError("boom")
    assert took < 2.0, f"building a 2-host lab took {took:.2f}s"
    assert lab_namespaces(lab.prefix) == []
    assert [p for p in pids if not gone(p)] == []
    assert not lab.workdir.exists()
    assert not (labmod.STATE_DIR / f"{lab.prefix}.json").exists()
    lab.down()    # again: nothing to do, no error


def _child_lab(code: str) -> tuple[subprocess.Popen, str]:
    """A Python process that builds a 1-host lab, prints its prefix and waits."""
    head = f"import sys, time\nsys.path.insert(0, {os.path.dirname(LAB_PY)!r})\nfrom lab import Lab\n"
    child = subprocess.Popen([PY, "-c", head + code], stdout=subprocess.PIPE, text=True)
    return child, child.stdout.readline().strip()


def test_interrupted_and_killed_runs_are_cleaned_up(lab):
    wait = "print(lab.prefix, flush=True); time.sleep(60)"
    # SIGTERM: the run cleans up after itself (the signal unwinds the `with`).
    child, prefix = _child_lab(f"with Lab(hosts=1) as lab:\n    {wait}")
    assert lab_namespaces(prefix)
    child.send_signal(signal.SIGTERM)
    child.wait(timeout=10)
    assert lab_namespaces(prefix) == []
    # SIGKILL: nothing runs; `lab.py down --all-stale` removes it and leaves live labs alone.
    child, prefix = _child_lab(f"lab = Lab(hosts=1).up()\n{wait}")
    workdir = json.loads((labmod.STATE_DIR / f"{prefix}.json").read_text())["workdir"]
    child.kill()
    child.wait()
    listed = subprocess.run([PY, LAB_PY, "list"], capture_output=True, text=True, check=True).stdout
    assert f"{prefix}  hosts=1  namespaces=3  stale" in listed
    subprocess.run([PY, LAB_PY, "down", "--all-stale"], check=True, capture_output=True)
    assert lab_namespaces(prefix) == [] and not os.path.exists(workdir)
    assert len(lab_namespaces(lab.prefix)) == 4 and lab.ping(lab.client, lab.hosts[0].ip4)


def test_cli_up_leaves_a_lab_running_until_down():
    up = subprocess.run([PY, LAB_PY, "up", "--hosts", "1", "--nginx"], capture_output=True,
                        text=True, check=True, timeout=30)
    prefix = next(line.split()[-1] for line in up.stdout.splitlines() if " down " in line)
    try:
        assert sorted(lab_namespaces(prefix)) == sorted(f"{prefix}{n}" for n in ("br", "c", "h1"))
        get = subprocess.run(["ip", "netns", "exec", f"{prefix}c", PY, "-c", HTTP_GET,
                              "http://198.51.100.1/", "2"], capture_output=True, text=True)
        assert get.stdout == "h1\n"
        subprocess.run([PY, LAB_PY, "down", "--all-stale"], check=True, capture_output=True)
        assert lab_namespaces(prefix)    # detached on purpose: not stale
    finally:
        subprocess.run([PY, LAB_PY, "down", prefix], check=True, capture_output=True)
    assert lab_namespaces(prefix) == []
