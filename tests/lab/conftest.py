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


def example_config(lab, host, relpath: str, **values) -> str:
    """An example from etc/ (relpath under it) made runnable on a lab host: installed program
    paths point into the repo, global.socket and /run/vipd/ into the lab's work directory, and
    each key=value given replaces that key's value wherever it starts a line (e.g.
    advert_interval=0.2)."""
    import re
    text = (REPO / "etc" / relpath).read_text()
    text = (text.replace("/usr/lib/vipd/checks/", f"{REPO}/checks/")
                .replace("/etc/vipd/hooks/", f"{REPO}/etc/hooks/")
                .replace("/run/vipd/", f"{lab.workdir / host.name / 'run'}/"))
    values = {"socket": str(lab.workdir / host.name / "vipd.sock"), **values}
    for key, value in values.items():
        text, n = re.subn(rf"^{re.escape(key)}[ \t]*=[^#\n]*", f"{key} = {json.dumps(value)} ",
                          text, flags=re.M)
        assert n, f"etc/{relpath} has no key {key!r} to replace"
    return text


def vipd_cli(lab, proc, *args: str, check: bool = True):
    """`vipd ARGS --socket S` on proc's host (e.g. "failback", "web"); the CompletedProcess."""
    return lab.run(proc.host, [VIPD, *args, "--socket", proc.socket], check=check)


def logged_transitions(proc, name: str = "web") -> list[tuple[str, str, str]]:
    """(old, new, reason) of every "[name] OLD -> NEW (reason)" line in proc's log."""
    import re
    pat = re.compile(rf"\[{re.escape(name)}\] (INIT|BACKUP|MASTER|FAULT) -> "
                     rf"(INIT|BACKUP|MASTER|FAULT) \((.*)\)$")
    return [m.groups() for line in proc.output().splitlines() if (m := pat.search(line))]


def log_times(proc, message: str) -> list[float]:
    """Wall times, on vipd's own clock (its log's time stamps, to the millisecond), of proc's log
    lines that end with message."""
    import datetime
    return [datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            for line in proc.output().splitlines() if line.endswith(" vipd INFO " + message)]


def last_transition_time(st: dict, to: str) -> float:
    """Wall time, on the daemon's clock, of the last transition to `to` in an instance status."""
    return [t["time"] for t in st["transitions"] if t["to"] == to][-1]


def transition_log_problems(lab, proc, name: str = "web") -> list[str]:
    """What is wrong between the log and status: each transition must be logged exactly once, in
    the order status lists them, each from the state the previous one entered."""
    st = instance_status(lab, proc, name)
    logged = logged_transitions(proc, name)
    listed = [(t["from"], t["to"], t["reason"]) for t in st["transitions"]]
    problems = []
    if len(logged) != st["counters"].get("transitions", 0):
        problems.append(f"{len(logged)} logged, {st['counters'].get('transitions')} counted")
    if logged[-len(listed):] != listed:
        problems.append(f"log {logged[-len(listed):]} != status {listed}")
    for prev, cur in zip([("", "INIT", "")] + logged, logged):
        if cur[0] != prev[1] or cur[0] == cur[1] or not cur[2]:
            problems.append(f"{cur} does not follow {prev}")
    return problems


PROBE = r"""
import socket, struct, sys, time
vip, period, timeout = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
req = f"GET / HTTP/1.0\r\nHost: {vip}\r\n\r\n".encode()
def unacked(s):
    # struct tcp_info: 8 one-byte fields, then rto, ato, snd_mss, rcv_mss, unacked (u32 each)
    return struct.unpack_from("8B5I", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 64))[12]
while True:
    t0 = time.monotonic()
    where, s = "@connect", None
    try:
        s = socket.create_connection((vip, 80), timeout=timeout)
        where = ""
        s.sendall(req)
        buf = b""
        while chunk := s.recv(4096):
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        res = body.decode().strip() if b" 200 " in head.split(b"\r\n")[0] else "HTTP"
    except OSError as e:
        if not where and isinstance(e, TimeoutError) and unacked(s):
            where = "@unacked"
        res = "ERR:" + type(e).__name__ + where
    finally:
        if s is not None:
            s.close()
    t1 = time.monotonic()
    print(f"{t0:.4f} {t1:.4f} {res or '-'}", flush=True)
    time.sleep(max(0.0, period - (t1 - t0)))
"""


class HttpProber:
    """A client that GETs http://VIP/ over a new connection every period seconds (timeout each),
    logging (start, end, body or ERR:...) with time.monotonic(), which the lab shares.

    The default period is short so that a window of a few milliseconds in which nobody answers
    for the VIP is hit; the timeout is shorter than TCP's first SYN retransmission (1 s), so a
    dropped SYN shows as a failure rather than as a slow answer. A timeout says where the
    network lost something, apart from a server that was only slow (its kernel answers SYNs and
    acknowledges data even while nginx waits for a CPU): "ERR:TimeoutError@connect" no SYN-ACK
    came; "ERR:TimeoutError@unacked" the request was never acknowledged (TCP_INFO unacked): the
    connection was lost; a plain "ERR:TimeoutError" got that far, but no answer in time."""

    def __init__(self, lab, vip: str = VIP4, period: float = 0.005, timeout: float = 0.5):
        import sys
        self.proc = lab.spawn(lab.client, [sys.executable, "-I", "-S", "-c", PROBE, vip,
                                           period, timeout], name="http-prober")
        if not lab.wait_for(lambda: len(self.samples()) > 3, timeout=5):
            raise AssertionError(f"HTTP prober produced nothing: {self.proc.output()[-500:]}")

    def samples(self) -> list[tuple[float, float, str]]:
        out = []
        for line in self.proc.output().splitlines():
            f = line.split()
            if len(f) == 3:
                out.append((float(f[0]), float(f[1]), f[2]))
        return out

    def failures(self, since: float = 0.0, until: float = 1e18) -> list[tuple[float, float, str]]:
        return [s for s in self.samples() if since <= s[0] <= until and s[2] not in ("h1", "h2")]

    def outage(self, since: float, until: float) -> float:
        """The longest time without a successful answer around [since, until] (seconds), from
        the end of the last success before since to the end of the first one after until (or
        now): an outage that began earlier or lasts longer is counted whole."""
        ok = [s[1] for s in self.samples() if s[2] in ("h1", "h2")]
        marks = ([t for t in ok if t <= since][-1:] or [since]) + [t for t in ok if since < t < until]
        marks += [t for t in ok if t >= until][:1] or [time.monotonic()]
        return max(b - a for a, b in zip(marks, marks[1:]))

    def wait_answer(self, body: str, timeout: float = 5.0) -> bool:
        """Waits until the client's last answer came from the host whose nginx says body."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.last_answer() == body:
                return True
            time.sleep(0.03)
        return False

    def last_answer(self) -> str | None:
        s = self.samples()
        return s[-1][2] if s else None

    def stop(self) -> None:
        self.proc.stop()
