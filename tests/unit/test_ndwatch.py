"""vipd/net/ndwatch.py: the NA parser against hostile frames, the NS probe's bytes, the filter.

Frames are built by scapy (an independent encoder) and by vipd's own unsolicited NA builder (the
frame a vipd master sends; keepalived's is byte-identical, tests/lab/test_net.py)."""
import socket
import struct

import pytest
from hypothesis import given, settings, strategies as st
from scapy.layers.inet6 import (ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6NDOptDstLLAddr,
                                ICMPv6NDOptSrcLLAddr, IPv6)
from scapy.layers.l2 import Ether

from vipd.core.packet import checksum16
from vipd.net.announce import unsolicited_na_frame
from vipd.net.claimwatch import claim_probe
from vipd.net.ndwatch import MalformedNA, na_target_filter, ns_probe_frame, parse_na

VIP = "2001:db8::100"
OTHER_VIP = "2001:db8::101"
MAC = bytes.fromhex("02766c000002")
OURS = bytes.fromhex("02766c000001")
PACKED = socket.inet_pton(socket.AF_INET6, VIP)
TARGETS = frozenset({PACKED})


def na(target=VIP, tlla=True, hlim=255, code=0, src="fe80::2", mac="02:76:6c:00:00:02",
       solicited=True) -> bytes:
    opt = ICMPv6NDOptDstLLAddr(lladdr=mac) if tlla else b""
    pkt = (Ether(src=mac, dst="02:76:6c:00:00:01") / IPv6(src=src, dst="fe80::1", hlim=hlim)
           / ICMPv6ND_NA(tgt=target, R=0, S=int(solicited), O=1, code=code) / opt)
    return bytes(pkt)


def _with_payload(frame: bytes, extra: bytes) -> bytes:
    """frame with extra bytes appended to the ICMPv6 message, lengths and checksum fixed."""
    frame = bytearray(frame + extra)
    plen = len(frame) - 54
    frame[18:20] = plen.to_bytes(2, "big")
    frame[56:58] = b"\0\0"
    pseudo = frame[22:54] + struct.pack("!I3xB", plen, 58)
    frame[56:58] = checksum16(bytes(pseudo + frame[54:])).to_bytes(2, "big")
    return bytes(frame)


def test_a_claim_is_the_target_and_its_link_layer_address():
    assert parse_na(na(), TARGETS) == (PACKED, MAC)
    # vipd's own unsolicited NA (from the VIP to ff02::1, Override): what a master announces
    frame = unsolicited_na_frame(MAC, VIP)
    assert parse_na(frame, TARGETS)[1] == MAC
    # an NA that omits the option (a solicited NA may): the frame's source speaks for it
    assert parse_na(na(tlla=False), TARGETS)[1] == MAC
    # the option wins over the frame's source: it is what receivers store for the target
    assert parse_na(na(mac="02:76:6c:00:00:09"), TARGETS)[1] == bytes.fromhex("02766c000009")


def test_frames_that_are_not_an_na_for_our_vip_are_ignored():
    assert parse_na(na(target=OTHER_VIP), TARGETS) is None              # wrong target
    ns = bytes(Ether() / IPv6(src="fe80::2", dst="ff02::1:ff00:100", hlim=255)
               / ICMPv6ND_NS(tgt=VIP))
    assert parse_na(ns, TARGETS) is None                                 # wrong type
    arp = bytes.fromhex("ffffffffffff02766c0000020806") + bytes(28)
    assert parse_na(arp, TARGETS) is None                                # not IPv6
    udp = bytearray(na())
    udp[20] = 17
    assert parse_na(bytes(udp), TARGETS) is None                         # not ICMPv6
    assert parse_na(b"", TARGETS) is None


@pytest.mark.parametrize("frame,reason", [
    (na(hlim=254), "nd_hop_limit"),
    (na(code=1), "nd_bad_code"),
    (_with_payload(na(tlla=False), bytes([2, 0]) + bytes(6)), "nd_bad_option"),   # length 0
    (_with_payload(na(tlla=False), bytes([2, 2]) + bytes(6)), "nd_bad_option"),   # overruns
    (_with_payload(na(tlla=False), bytes([2])), "nd_bad_option"),                 # half a header
])
def test_an_na_a_host_would_discard_is_dropped_with_its_reason(frame, reason):
    with pytest.raises(MalformedNA) as e:
        parse_na(frame, TARGETS)
    assert e.value.reason == reason


def test_a_corrupted_na_fails_its_checksum_and_a_cut_one_is_truncated():
    good = na()
    for i in range(54, len(good)):                 # any flipped bit in the ICMPv6 message
        if i in (54, 55) or 62 <= i < 78:
            continue                               # type, code, target: not an NA for us
        bad = bytearray(good)
        bad[i] ^= 0x10
        with pytest.raises(MalformedNA, match="nd_bad_checksum"):
            parse_na(bytes(bad), TARGETS)
    for n in range(55, len(good)):                 # every cut past the ICMPv6 type
        with pytest.raises(MalformedNA, match="nd_truncated"):
            parse_na(good[:n], TARGETS)
    lying = bytearray(good)
    lying[18:20] = (len(good) - 54 + 8).to_bytes(2, "big")     # claims more than it has
    with pytest.raises(MalformedNA, match="nd_truncated"):
        parse_na(bytes(lying), TARGETS)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120), st.integers(0, 119), st.binary(max_size=4))
def test_random_damage_never_raises_anything_else(noise, at, patch):
    frame = bytearray(na())
    frame[at:at + len(patch)] = patch
    for f in (bytes(noise), bytes(frame)):
        try:
            out = parse_na(f, TARGETS)
        except MalformedNA as e:
            assert e.reason.startswith("nd_")
        else:
            assert out is None or (out[0] in TARGETS and len(out[1]) == 6)


def test_the_probe_asks_for_the_vip_from_our_own_address():
    """The NS must not change anyone's entry for the VIP: its source is our link-local address,
    its only option is our MAC as the *source's* link-layer address (RFC 4861 7.2.2)."""
    f = ns_probe_frame(OURS, "fe80::1", VIP)
    assert claim_probe(OURS, "fe80::1", VIP) == f
    p = Ether(f)
    assert p.dst == "33:33:ff:00:01:00" and p.src == "02:76:6c:00:00:01"
    assert p[IPv6].src == "fe80::1" and p[IPv6].dst == "ff02::1:ff00:100"
    assert p[IPv6].hlim == 255 and p[IPv6].nh == 58 and p[IPv6].plen == 32
    ns = p[ICMPv6ND_NS]
    assert ns.tgt == VIP and ns.code == 0
    assert ns[ICMPv6NDOptSrcLLAddr].lladdr == "02:76:6c:00:00:01"
    assert ICMPv6NDOptDstLLAddr not in p
    sent = ns.cksum
    del ns.cksum
    assert Ether(bytes(p))[ICMPv6ND_NS].cksum == sent            # scapy computes the same
    assert claim_probe(OURS, "198.51.100.1", "198.51.100.100")[12:14] == b"\x08\x06"   # ARP


def run_filter(prog: bytes, frame: bytes) -> int:
    """A classic-BPF interpreter for the instructions na_target_filter uses (ld/ldh/ldb absolute,
    jeq, ret): what the kernel keeps of the frame (0: dropped)."""
    insns = [struct.unpack("HBBI", prog[i:i + 8]) for i in range(0, len(prog), 8)]
    pc, a = 0, 0
    while True:
        code, jt, jf, k = insns[pc]
        if code == 0x06:
            return k
        if code in (0x20, 0x28, 0x30):
            size = {0x20: 4, 0x28: 2, 0x30: 1}[code]
            if k + size > len(frame):
                return 0
            a = int.from_bytes(frame[k:k + size], "big")
            pc += 1
        elif code == 0x15:
            pc += 1 + (jt if a == k else jf)
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")


def test_the_filter_keeps_only_nas_whose_target_ends_like_a_vip():
    vips = ["2001:db8::100", "2001:db8::1:200", "2001:db8::300"]
    prog = na_target_filter(vips)
    assert len(prog) == (7 + len(vips) + 2) * 8
    for v in vips:
        assert run_filter(prog, na(target=v)) > 0
    assert run_filter(prog, na(target="2001:db8::999")) == 0
    ns = bytes(Ether() / IPv6(src="fe80::2", dst="ff02::1:ff00:100", hlim=255)
               / ICMPv6ND_NS(tgt=VIP))
    assert run_filter(prog, ns) == 0
    assert run_filter(prog, bytes.fromhex("ffffffffffff02766c0000020806") + bytes(28)) == 0
    udp = bytearray(na())
    udp[20] = 17
    assert run_filter(prog, bytes(udp)) == 0
