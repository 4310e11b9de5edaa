"""No dead VIP after a partition heals (issue 8, item 4), on real kernels.

h1 (priority 150) and h2 (100) serve nginx; a silent partition drops VRRP between them only, so
both become master and the client's ARP entry for the VIP names h2 (the last to announce). Then the
partition heals just after one side's advert, which forces the other side's advert to cross first:
"winner first" (h1's advert reaches h2, h2 yields) and "loser first" (h2's advert reaches h1, h1
reasserts). Each order must end with the client reaching h1 through the VIP within about one
advert interval. A sniffer in the client namespace proves which advert crossed first; the client
is an HTTP prober (new connection every 10 ms, 100 ms timeout). Run for vipd/vipd and with
keepalived 2.2.7 as the winner and as the loser. The figures are printed.
"""
import sys
import time

import pytest

from conftest import HttpProber, VIP4, keepalived_config, vipd_config, wait_holder
from vipd.core.claims import ANSWER_WITHIN

pytestmark = pytest.mark.lab

INTERVAL = 0.5
# What the design guarantees in every cell: the winner re-announces at once when it hears the
# loser (vipd/vipd, keepalived winner, loser's advert first), and otherwise within ANSWER_WITHIN
# of the loser letting go when that is within REPROBES probe rounds of the winner's advert, or at
# the next advert's probe (interval + ANSWER_WITHIN) when it takes longer (core/claims.py); plus
# the client's resolution (a 5 ms period, 30 ms per attempt). Measured: 10-40 ms, and 130-230 ms
# for a keepalived loser that yields to the winner's advert (docs/data-safety.md).
BOUND = INTERVAL + ANSWER_WITHIN + 0.05
SNIFF = r"""
import socket, struct, time
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton("224.0.0.18")
             + socket.inet_aton("0.0.0.0") + struct.pack("i", socket.if_nametoindex("eth0")))
while True:
    data, (src, _) = s.recvfrom(2048)
    ihl = (data[0] & 15) * 4
    print(f"{time.monotonic():.4f} {src} {data[ihl + 2]}", flush=True)
"""
# Every ARP frame the client sees: "TIME OP SENDER-MAC SENDER-IP TARGET-IP" (where the time goes:
# the winner's probes and its gratuitous ARP after the heal).
ARP_SNIFF = r"""
import socket, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
s.bind(("eth0", 0))
while True:
    f = s.recv(128)
    a = f[14:42]
    print(f"{time.monotonic():.4f} {a[7]} {a[8:14].hex(':')} {socket.inet_ntoa(a[14:18])}"
          f" {socket.inet_ntoa(a[24:28])}", flush=True)
"""


def start(lab, kind, host, priority):
    if kind == "keepalived":
        return lab.start_keepalived(host, keepalived_config(priority=priority, interval=INTERVAL))
    return lab.start_vipd(host, vipd_config(priority=priority, interval=INTERVAL,
                                            failback="auto"))


def adverts(sniffer):
    out = []
    for line in sniffer.output().splitlines():
        f = line.split()
        if len(f) == 3:
            out.append((float(f[0]), f[1], int(f[2])))
    return out


def heal_after_advert_of(lab, sniffer, host):
    """Unpartition right after host's next advert: the other side's advert crosses first."""
    seen = len(adverts(sniffer))
    assert lab.wait_for(lambda: any(src == host.ip4 for _, src, _ in adverts(sniffer)[seen:]),
                        timeout=3, interval=0.002)
    lab.unpartition(*lab.hosts)
    return time.monotonic()


def garp_after(arp, host, since: float) -> float | None:
    """When the client first saw host's gratuitous ARP for the VIP (sender = target = VIP)."""
    for line in arp.output().splitlines():
        f = line.split()
        if len(f) == 5 and float(f[0]) > since and f[2] == host.mac and f[3] == f[4] == VIP4:
            return float(f[0])
    return None


def outage_after(probe, healed, winner="h1"):
    """Longest gap between answers from the last one before the heal to the winner's first."""
    ok = [(end, body) for _, end, body in probe.samples() if body in ("h1", "h2")]
    before = [t for t, _ in ok if t <= healed][-1:]
    after = [t for t, body in ok if t > healed]
    first_winner = next(t for t, body in ok if t > healed and body == winner)
    marks = before + [t for t in after if t <= first_winner]
    return max(b - a for a, b in zip(marks, marks[1:]))


@pytest.mark.parametrize("winner,loser", [("vipd", "vipd"), ("keepalived", "vipd"),
                                          ("vipd", "keepalived")])
def test_client_reaches_the_vip_within_an_interval_after_a_heal(pair, winner, loser):
    lab = pair
    h1, h2 = lab.hosts
    for h in lab.hosts:
        lab.start_nginx(h)
    start(lab, winner, h1, 150)
    assert wait_holder(lab, VIP4, ["h1"], timeout=10)
    start(lab, loser, h2, 100)
    sniffer = lab.spawn(lab.client, [sys.executable, "-I", "-S", "-c", SNIFF], name="vrrp-sniff")
    arp = lab.spawn(lab.client, [sys.executable, "-I", "-S", "-c", ARP_SNIFF], name="arp-sniff")
    # A fine client: a new connection every 5 ms, each given 30 ms (an answer on this segment
    # takes about 1 ms), so the outage is measured to about 35 ms.
    probe = HttpProber(lab, period=0.005, timeout=0.03)
    figures, where = {}, {}
    for first in ("winner", "loser"):
        # The forced order can miss when the other side's advert falls between the one we wait
        # for and the unpartition (a loaded machine): the sniffer tells, and the round is redone.
        for _ in range(3):
            lab.partition(h1, h2)
            assert wait_holder(lab, VIP4, ["h1", "h2"], timeout=8)
            assert probe.wait_answer("h2", timeout=3), "the client should follow h2's announcement"
            healed = heal_after_advert_of(lab, sniffer, h2 if first == "winner" else h1)
            assert wait_holder(lab, VIP4, ["h1"], timeout=5)
            assert probe.wait_answer("h1", timeout=40), f"{first} first: the VIP stayed dead"
            crossed = [src for t, src, prio in adverts(sniffer) if t > healed and prio > 0]
            if crossed[0] == (h1.ip4 if first == "winner" else h2.ip4):
                figures[first] = outage_after(probe, healed)
                t_cross = next(t for t, src, prio in adverts(sniffer)
                               if t > healed and prio > 0)
                garp = garp_after(arp, h1, healed)
                where[first] = (f"first advert {1000 * (t_cross - healed):.0f} ms after the"
                                f" heal, h1's GARP {1000 * (garp - t_cross):.0f} ms after it"
                                if garp else "no GARP from h1 seen")
                break
    assert set(figures) == {"winner", "loser"}, f"could not force the crossing order: {figures}"
    print(f"\npartition heal, {winner} winner / {loser} loser, interval {INTERVAL:g}s: client "
          f"outage {figures['winner'] * 1000:.0f} ms (winner's advert first), "
          f"{figures['loser'] * 1000:.0f} ms (loser's first); {where}")
    for first, outage in figures.items():
        assert outage <= BOUND, f"{first}'s advert first: client outage {outage:.3f}s"
