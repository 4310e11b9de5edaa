"""The vipd demo: two vipd hosts in front of nginx and a client, in network namespaces.

Shows who holds the VIP, cuts the master's link, shows the client still reaching the VIP through
the other host, heals, and tears everything down (also on Ctrl-C or failure).
"""
import json
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from lab import Lab  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
VIPD = str(REPO / ".venv" / "bin" / "vipd")
VIP = "198.51.100.100"
CONFIG = """[global]
router_id = "{name}"

[[instance]]
name = "web"
interface = "eth0"
vrid = 51
priority = {priority}
advert_interval = 0.5
vips = ["{vip}/24"]
failback = "auto"
"""


def say(msg: str) -> None:
    print(f"\n== {msg}", flush=True)


def show(lab: Lab, procs) -> None:
    for host, proc in procs:
        out = lab.run(host, [VIPD, "status", "--socket", proc.socket], check=False)
        print(out.stdout.rstrip() or out.stderr.rstrip())
    print(f"VIP {VIP} is on: {', '.join(lab.holder(VIP)) or 'nobody'}")


def client_get(lab: Lab) -> str:
    body = lab.http_get(lab.client, f"http://{VIP}/", timeout=1.0)
    return body.strip() if body else "no answer"


def wait(lab: Lab, holder: str) -> float:
    t0 = time.monotonic()
    if not lab.wait_for(lambda: lab.holder(VIP) == [holder], timeout=10):
        raise SystemExit(f"demo: the VIP did not move to {holder}: on {lab.holder(VIP)}")
    return time.monotonic() - t0


def main() -> int:
    with Lab(hosts=2) as lab:
        h1, h2 = lab.hosts
        say(f"lab up: hosts {h1.ns} ({h1.ip4}), {h2.ns} ({h2.ip4}), client {lab.client.ns}")
        for h in (h1, h2):
            lab.start_nginx(h)
        p1 = lab.start_vipd(h1, CONFIG.format(name="h1", priority=150, vip=VIP))
        p2 = lab.start_vipd(h2, CONFIG.format(name="h2", priority=100, vip=VIP))
        procs = [(h1, p1), (h2, p2)]
        wait(lab, "h1")
        say("h1 (priority 150) is master")
        show(lab, procs)
        print(f"client -> http://{VIP}/ : {client_get(lab)}")

        say("cutting h1's link")
        lab.cut(h1)
        took = wait(lab, "h2")
        print(f"h2 took the VIP {took:.2f}s after the cut")
        show(lab, procs)
        print(f"client -> http://{VIP}/ : {client_get(lab)}")

        say("healing h1's link")
        lab.heal(h1)
        took = wait(lab, "h1")
        print(f"h1 took the VIP back {took:.2f}s after the heal (failback = auto)")
        show(lab, procs)
        print(f"client -> http://{VIP}/ : {client_get(lab)}")

        st = json.loads(lab.run(h1, [VIPD, "status", "--json", "--socket", p1.socket]).stdout)
        say("h1's transitions")
        for t in st["instances"][0]["transitions"]:
            print(f"  {t['from']:>6} -> {t['to']:<6} {t['reason']}")
        say("tearing down")
    print("done: every namespace, process and file of the lab is gone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
