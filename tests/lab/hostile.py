"""Sends hostile VRRP traffic with scapy (run inside the client's namespace by test_hostile.py).

usage: hostile.py CASE [COUNT]; prints nothing, exits 0 when sent. Also used by
test_garp_refresh.py for a lower-priority master the daemon must answer.
"""
import os
import sys
import time

from scapy.all import IP, Raw, conf, send
from scapy.layers.vrrp import VRRP, VRRPv3

VIP = "198.51.100.100"
MCAST = "224.0.0.18"
conf.verb = 0


def v3(prio=200, vrid=51, **kw):
    fields = dict(vrid=vrid, priority=prio, ipcount=1, addrlist=[VIP], adv=10)
    fields.update(kw)
    return VRRPv3(**fields)


def build(case):
    ip = IP(dst=MCAST, ttl=255, proto=112)
    if case == "ttl":                 # lower TTL than 255, otherwise perfect (and higher priority)
        return IP(dst=MCAST, ttl=64, proto=112) / v3(prio=254)
    if case == "checksum":
        return ip / v3(prio=254, chksum=0x1234)
    if case == "password":            # v2 instance vrid 10 expects "s3cret"
        return ip / VRRP(vrid=10, priority=254, ipcount=1, addrlist=[VIP], authtype=1,
                         auth1=int.from_bytes(b"wron", "big"), auth2=int.from_bytes(b"g\0\0\0", "big"),
                         adv=1)
    if case == "truncated":           # header claims one address, the address is cut short
        raw = bytes(v3(prio=254))
        return ip / Raw(raw[:10])
    if case == "addrcount0":
        raw = bytearray(bytes(ip / v3(prio=254, ipcount=0, addrlist=[]))[20:])
        return ip / Raw(bytes(raw))
    if case == "random":
        return ip / Raw(os.urandom(int.from_bytes(os.urandom(1), "big") % 60 + 1))
    if case == "short":
        return ip / Raw(b"\x31")
    if case == "lower":               # not hostile: a valid advert from a lower-priority master
        return ip / v3(prio=50)
    raise SystemExit(f"unknown case {case}")


if __name__ == "__main__":
    case = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    for _ in range(count):
        send(build(case), iface="eth0")
        if case == "lower":
            time.sleep(0.25)          # a master that keeps advertising, each advert answered
