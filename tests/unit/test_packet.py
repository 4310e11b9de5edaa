"""The VRRP codec against real keepalived captures, against scapy, and on hand-built bad packets.

Checksums for hand-built packets come from scapy's checksum(), not from the codec under test.
"""
import ipaddress
import pickle
import struct
from pathlib import Path

import pytest
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.layers.vrrp import VRRP, VRRPv3
from scapy.packet import Raw
from scapy.utils import checksum as scapy_checksum
from scapy.utils import rdpcap

from vipd.core.packet import (
    MCAST_V4, MCAST_V6, VRRP_PROTO, Advert, MalformedPacket, Reason, checksum16, decode, encode,
    password_bytes, split_ipv4,
)

PCAP = Path("/work/shared/vectors/keepalived-adverts.pcap")
KA_SRC4 = "198.51.100.1"
KA_SRC6 = "fe80::103e:41ff:fe12:e0e2"

# ---- golden vectors: keepalived 2.2.7 -------------------------------------------------------

# (first frame, last frame, destination, checksum mode, expected advert) per README.md group;
# the last frame of a group is the same advert at priority 0.
GROUPS = [
    (1, 4, MCAST_V4, "vrrp-only",
     Advert(2, 10, 120, 100, ("198.51.100.100", "198.51.100.101"),
            auth_type=1, auth_data=b"s3cret\0\0")),
    (5, 14, MCAST_V4, "pseudo-header", Advert(3, 51, 150, 50, ("198.51.100.100",))),
    # README.md says keepalived sent these with `v3_checksum_as_v2`, i.e. "vrrp-only". The bytes
    # say otherwise (see test_frames_15_to_18_use_the_pseudo_header): keepalived 2.2.7 has no such
    # keyword and ignored it. We assert what is on the wire.
    (15, 18, MCAST_V4, "pseudo-header", Advert(3, 52, 150, 100, ("198.51.100.102",))),
    (19, 22, "198.51.100.2", "pseudo-header", Advert(3, 53, 200, 100, ("198.51.100.103",))),
    (23, 26, MCAST_V6, "pseudo-header",
     Advert(3, 54, 180, 100, ("fe80::54", "2001:db8::54"), family=6)),
]


def _expected(frame_no):
    for first, last, dst, mode, advert in GROUPS:
        if first <= frame_no <= last:
            if frame_no == last:
                advert = Advert(**{**_fields(advert), "priority": 0})
            return dst, mode, advert
    raise AssertionError(f"frame {frame_no} is in no group")


def _fields(advert):
    return {name: getattr(advert, name) for name in Advert.__dataclass_fields__}


@pytest.fixture(scope="module")
def frames():
    return rdpcap(str(PCAP))


def _ip_layer(frame):
    """(src, dst, ttl or hop limit, family, VRRP payload) of a captured frame."""
    if IP in frame:
        src, dst, ttl, payload = split_ipv4(bytes(frame[IP]))
        return src, dst, ttl, 4, payload
    ip6 = frame[IPv6]
    raw = bytes(ip6)
    assert ip6.nh == VRRP_PROTO, "no extension headers expected between IPv6 and VRRP"
    return ip6.src, ip6.dst, ip6.hlim, 6, raw[40:40 + ip6.plen]


def test_capture_has_26_frames(frames):
    assert len(frames) == 26


@pytest.mark.parametrize("frame_no", range(1, 27), ids=lambda n: f"frame{n:02d}")
def test_keepalived_frame_decodes_and_reencodes_byte_identical(frames, frame_no):
    dst, mode, advert = _expected(frame_no)
    src, got_dst, ttl, family, payload = _ip_layer(frames[frame_no - 1])
    assert (src, got_dst, ttl) == (KA_SRC4 if family == 4 else KA_SRC6, dst, 255)

    got = decode(payload, src, dst, family)

    assert got == advert
    assert got.checksum_mode == mode
    assert encode(got, src, dst, got.checksum_mode) == payload


def test_keepalived_password_is_password_bytes_of_s3cret(frames):
    src, dst, _, _, payload = _ip_layer(frames[0])
    assert decode(payload, src, dst).auth_data == password_bytes("s3cret")


def test_frames_15_to_18_use_the_pseudo_header(frames):
    """Pins the README discrepancy to the bytes, independently of the codec."""
    for frame in list(frames)[14:18]:
        src, dst, _, _, payload = _ip_layer(frame)
        zeroed = payload[:6] + b"\0\0" + payload[8:]
        field = struct.unpack_from("!H", payload, 6)[0]
        assert field == scapy_checksum(_pseudo4(src, dst, len(payload)) + zeroed)
        assert field != scapy_checksum(zeroed)


def test_unicast_frame_checksum_covers_the_unicast_destination(frames):
    """keepalived puts the unicast peer, not 224.0.0.18, in the pseudo-header."""
    src, dst, _, _, payload = _ip_layer(frames[18])
    with pytest.raises(MalformedPacket) as exc:
        decode(payload, src, MCAST_V4)
    assert exc.value.reason is Reason.BAD_CHECKSUM


def test_keepalived_advert_reencoded_vrrp_only_is_accepted_as_vrrp_only(frames):
    src, dst, _, _, payload = _ip_layer(frames[4])
    advert = decode(payload, src, dst)
    other = encode(advert, src, dst, "vrrp-only")
    assert other != payload
    assert struct.unpack_from("!H", other, 6)[0] == scapy_checksum(other[:6] + b"\0\0" + other[8:])
    again = decode(other, src, dst)
    assert again == advert and again.checksum_mode == "vrrp-only"


# ---- cross-check with scapy -----------------------------------------------------------------

SRC4, PEER4 = "203.0.113.1", "203.0.113.2"
SRC6, PEER6 = "fe80::1", "2001:db8::2"
ENCODE_CASES = {
    "v2-no-auth": (Advert(2, 7, 100, 300, ("203.0.113.10",)), SRC4, MCAST_V4, "vrrp-only"),
    "v2-password": (Advert(2, 200, 255, 25500, ("203.0.113.10", "203.0.113.11", "198.51.100.7"),
                           auth_type=1, auth_data=password_bytes("hunter2")),
                    SRC4, MCAST_V4, "pseudo-header"),   # ignored: v2 is always message-only
    "v3-v4-pseudo": (Advert(3, 1, 1, 4095, ("203.0.113.10", "203.0.113.11")),
                     SRC4, MCAST_V4, "pseudo-header"),
    "v3-v4-vrrp-only": (Advert(3, 255, 0, 1, ("203.0.113.10", "203.0.113.11", "203.0.113.12")),
                        SRC4, MCAST_V4, "vrrp-only"),
    "v3-v4-unicast": (Advert(3, 53, 200, 100, ("203.0.113.10",)), SRC4, PEER4, "pseudo-header"),
    "v3-v6": (Advert(3, 54, 180, 100, ("2001:db8::54", "fe80::54"), family=6),
              SRC6, MCAST_V6, "vrrp-only"),             # ignored: IPv6 always pseudo-header
    "v3-v6-unicast": (Advert(3, 9, 90, 25, ("2001:db8:1::a",), family=6),
                      "2001:db8::1", PEER6, "pseudo-header"),
}


def _wrap(advert, src, dst, payload):
    """A scapy packet parsed from our payload under a real IP header."""
    if advert.family == 4:
        return IP(bytes(IP(src=src, dst=dst, ttl=255, proto=VRRP_PROTO) / Raw(payload)))
    return IPv6(bytes(IPv6(src=src, dst=dst, hlim=255, nh=VRRP_PROTO) / Raw(payload)))


def _canon(addresses):
    return [str(ipaddress.ip_address(a)) for a in addresses]


@pytest.mark.parametrize("case", ENCODE_CASES.values(), ids=ENCODE_CASES.keys())
def test_scapy_reads_what_vipd_writes(case):
    advert, src, dst, mode = case
    payload = encode(advert, src, dst, mode)
    pkt = _wrap(advert, src, dst, payload)
    layer = pkt.payload

    assert type(layer) is (VRRP if advert.version == 2 else VRRPv3)
    assert (layer.version, layer.type, layer.vrid, layer.priority, layer.ipcount) == (
        advert.version, 1, advert.vrid, advert.priority, len(advert.addresses))
    assert _canon(layer.addrlist) == list(advert.addresses)
    if advert.version == 2:
        assert layer.adv * 100 == advert.adver_int_cs
        assert layer.authtype == advert.auth_type
        assert struct.pack("!II", layer.auth1, layer.auth2) == advert.auth_data
    else:
        assert (layer.adv, layer.res) == (advert.adver_int_cs, 0)

    # Let scapy compute the checksum itself: it does v2 over the message and v3 over the
    # IPv4/IPv6 pseudo-header; it knows nothing of the v3 "vrrp-only" IPv4 variant.
    layer.chksum = None
    scapy_payload = bytes(layer)
    ours = struct.unpack_from("!H", payload, 6)[0]
    if advert.version == 3 and advert.family == 4 and mode == "vrrp-only":
        assert scapy_payload != payload
        assert ours == scapy_checksum(payload[:6] + b"\0\0" + payload[8:])
    else:
        assert scapy_payload == payload


def _scapy_v3(src, dst, vrrp, vrrp_only=False):
    """Raw bytes of IP/IPv6 + VRRPv3 as scapy builds them; optionally with the message-only sum."""
    under = (IP(src=src, dst=dst, ttl=255) if ":" not in src
             else IPv6(src=src, dst=dst, hlim=255))
    if vrrp_only:
        vrrp.chksum = 0
        msg = bytes(under / vrrp)[20:]
        vrrp.chksum = scapy_checksum(msg)
    return bytes(under / vrrp)


SCAPY_CASES = {
    "v2-password": (
        bytes(IP(src=SRC4, dst=MCAST_V4, ttl=255) / VRRP(
            vrid=10, priority=120, adv=3, authtype=1, addrlist=["198.51.100.100", "198.51.100.101"],
            auth1=int.from_bytes(b"s3cr", "big"), auth2=int.from_bytes(b"et\0\0", "big"))),
        Advert(2, 10, 120, 300, ("198.51.100.100", "198.51.100.101"),
               auth_type=1, auth_data=b"s3cret\0\0"), "vrrp-only"),
    "v2-no-auth": (
        bytes(IP(src=SRC4, dst=MCAST_V4, ttl=255) / VRRP(vrid=1, priority=0, adv=1,
                                                         addrlist=["203.0.113.9"])),
        Advert(2, 1, 0, 100, ("203.0.113.9",)), "vrrp-only"),
    "v3-v4-pseudo": (
        _scapy_v3(SRC4, MCAST_V4, VRRPv3(vrid=51, priority=150, adv=50,
                                         addrlist=["198.51.100.100", "203.0.113.4"])),
        Advert(3, 51, 150, 50, ("198.51.100.100", "203.0.113.4")), "pseudo-header"),
    "v3-v4-vrrp-only": (
        _scapy_v3(SRC4, MCAST_V4, VRRPv3(vrid=52, priority=100, adv=100,
                                         addrlist=["198.51.100.102"]), vrrp_only=True),
        Advert(3, 52, 100, 100, ("198.51.100.102",)), "vrrp-only"),
    "v3-v4-unicast": (
        _scapy_v3(SRC4, PEER4, VRRPv3(vrid=53, priority=200, adv=4095, addrlist=["203.0.113.3"])),
        Advert(3, 53, 200, 4095, ("203.0.113.3",)), "pseudo-header"),
    "v3-v6": (
        _scapy_v3(SRC6, MCAST_V6, VRRPv3(vrid=54, priority=255, adv=1,
                                         addrlist=["fe80::54", "2001:db8::54"])),
        Advert(3, 54, 255, 1, ("fe80::54", "2001:db8::54"), family=6), "pseudo-header"),
}


@pytest.mark.parametrize("case", SCAPY_CASES.values(), ids=SCAPY_CASES.keys())
def test_vipd_reads_what_scapy_writes(case):
    raw, advert, mode = case
    if advert.family == 4:
        src, dst, ttl, payload = split_ipv4(raw)
    else:
        src, dst, ttl, payload = SRC6, MCAST_V6, raw[7], raw[40:]
    assert ttl == 255

    got = decode(payload, src, dst, advert.family)

    assert got == advert
    assert got.checksum_mode == mode
    assert encode(got, src, dst, mode) == payload


def test_decode_accepts_a_memoryview():
    advert, src, dst, mode = ENCODE_CASES["v3-v4-pseudo"]
    assert decode(memoryview(encode(advert, src, dst, mode)), src, dst) == advert


# ---- every discard reason, from a hand-built packet -------------------------------------------

A1 = bytes([198, 51, 100, 100])
A2 = bytes([198, 51, 100, 101])
A6 = ipaddress.ip_address("2001:db8::54").packed


def _pseudo4(src, dst, length):
    return struct.pack("!4s4sBBH", ipaddress.ip_address(src).packed,
                       ipaddress.ip_address(dst).packed, 0, VRRP_PROTO, length)


def _pseudo6(src, dst, length):
    return struct.pack("!16s16sI3xB", ipaddress.ip_address(src).packed,
                       ipaddress.ip_address(dst).packed, length, VRRP_PROTO)


def msg(ver_type=0x31, count=1, word=100, body=A1, pseudo=_pseudo4, src=SRC4, dst=MCAST_V4,
        vrid=51, priority=150):
    """A VRRP message with a correct checksum; pseudo=None sums the message alone."""
    raw = struct.pack("!BBBBHH", ver_type, vrid, priority, count, word, 0) + body
    prefix = pseudo(src, dst, len(raw)) if pseudo else b""
    return raw[:6] + struct.pack("!H", scapy_checksum(prefix + raw)) + raw[8:]


V2_AUTH = b"s3cret\0\0"
DECODE_REASONS = {
    "short-header": (msg()[:7], 4, Reason.SHORT),
    "empty": (b"", 4, Reason.SHORT),
    "version-1": (msg(ver_type=0x11), 4, Reason.BAD_VERSION),
    "version-4": (msg(ver_type=0x41), 4, Reason.BAD_VERSION),
    "version-2-over-ipv6": (msg(ver_type=0x21, word=0x0101, body=A6 + V2_AUTH, pseudo=None),
                            6, Reason.BAD_VERSION),
    "type-2": (msg(ver_type=0x32), 4, Reason.BAD_TYPE),
    "type-0-v2": (msg(ver_type=0x20, word=0x0001, body=A1 + V2_AUTH, pseudo=None),
                  4, Reason.BAD_TYPE),
    "count-0": (msg(count=0, body=b""), 4, Reason.ADDR_COUNT),
    "count-2-one-address": (msg(count=2), 4, Reason.TRUNCATED),
    "v2-without-auth-data": (msg(ver_type=0x21, word=0x0001, pseudo=None), 4, Reason.TRUNCATED),
    "ipv6-address-cut": (msg(body=A6[:12], pseudo=_pseudo6, src=SRC6, dst=MCAST_V6),
                         6, Reason.TRUNCATED),
    "trailing-bytes": (msg(body=A1 + A2), 4, Reason.LENGTH_MISMATCH),
    "v2-trailing-bytes": (msg(ver_type=0x21, word=0x0001, body=A1 + V2_AUTH + b"\0\0\0\0",
                              pseudo=None), 4, Reason.LENGTH_MISMATCH),
    "checksum-off-by-one": (msg()[:7] + bytes([msg()[7] ^ 1]) + msg()[8:], 4, Reason.BAD_CHECKSUM),
    "v2-corrupt-address": (msg(ver_type=0x21, word=0x0001, body=A2 + V2_AUTH, pseudo=None)[:8]
                           + A1 + V2_AUTH, 4, Reason.BAD_CHECKSUM),
    "v3-pseudo-header-of-other-source": (msg(src="203.0.113.99"), 4, Reason.BAD_CHECKSUM),
    "v6-message-only-sum": (msg(body=A6, pseudo=None), 6, Reason.BAD_CHECKSUM),
    "v3-interval-0-reserved-bits-set": (msg(word=0xF000), 4, Reason.INTERVAL_ZERO),
    "v3-vrrp-only-interval-0": (msg(word=0, pseudo=None), 4, Reason.INTERVAL_ZERO),
    "v2-interval-0": (msg(ver_type=0x21, word=0x0100, body=A1 + V2_AUTH, pseudo=None),
                      4, Reason.INTERVAL_ZERO),
}


@pytest.mark.parametrize("case", DECODE_REASONS.values(), ids=DECODE_REASONS.keys())
def test_decode_rejects_with_reason(case):
    payload, family, reason = case
    src, dst = (SRC4, MCAST_V4) if family == 4 else (SRC6, MCAST_V6)
    with pytest.raises(MalformedPacket) as exc:
        decode(payload, src, dst, family)
    assert exc.value.reason is reason
    assert str(exc.value).startswith(f"{reason.value}: ") and len(str(exc.value)) > 20


def test_v3_reserved_bits_are_ignored():
    got = decode(msg(word=0xF000 | 250), SRC4, MCAST_V4)
    assert got.adver_int_cs == 250


def ipv4(payload, proto=VRRP_PROTO, ttl=255, options=b"", total=None, ver_ihl=None, frag=0):
    """An IPv4 datagram as an AF_INET raw socket returns it (header checksum left 0)."""
    header_len = 20 + len(options)
    total = header_len + len(payload) if total is None else total
    first = (0x40 | header_len // 4) if ver_ihl is None else ver_ihl
    header = struct.pack("!BBHHHBBH4s4s", first, 0xC0, total, 1, frag, ttl, proto, 0,
                         ipaddress.ip_address(SRC4).packed, ipaddress.ip_address(MCAST_V4).packed)
    return header + options + payload


SPLIT_REASONS = {
    "shorter-than-header": (ipv4(msg())[:19], Reason.SHORT),
    "version-6": (ipv4(msg(), ver_ihl=0x65), Reason.BAD_IP_HEADER),
    "ihl-4": (ipv4(msg(), ver_ihl=0x44), Reason.BAD_IP_HEADER),
    "total-length-below-ihl": (ipv4(msg(), total=19), Reason.BAD_IP_HEADER),
    "protocol-udp": (ipv4(msg(), proto=17), Reason.BAD_IP_HEADER),
    "protocol-ah": (ipv4(msg(), proto=51), Reason.BAD_IP_HEADER),
    "more-fragments": (ipv4(msg(), frag=0x2000), Reason.BAD_IP_HEADER),
    "fragment-offset": (ipv4(msg(), frag=0x0001), Reason.BAD_IP_HEADER),
    "total-length-past-end": (ipv4(msg(), total=40), Reason.TRUNCATED),
    "options-past-end": (ipv4(b"", options=bytes(40))[:40], Reason.TRUNCATED),
}


@pytest.mark.parametrize("case", SPLIT_REASONS.values(), ids=SPLIT_REASONS.keys())
def test_split_ipv4_rejects_with_reason(case):
    datagram, reason = case
    with pytest.raises(MalformedPacket) as exc:
        split_ipv4(datagram)
    assert exc.value.reason is reason


def test_every_reason_the_codec_produces_is_tested():
    produced = {r for *_, r in DECODE_REASONS.values()} | {r for _, r in SPLIT_REASONS.values()}
    semantic = {Reason.TTL, Reason.AUTH, Reason.NOT_PEER, Reason.INTERVAL_MISMATCH, Reason.FAMILY}
    assert produced == set(Reason) - semantic


def test_split_ipv4_honours_options_ttl_and_total_length():
    payload = msg()
    router_alert = bytes([148, 4, 0, 0])
    datagram = ipv4(payload, ttl=64, options=router_alert) + b"link padding"
    src, dst, ttl, got = split_ipv4(datagram)
    assert (src, dst, ttl, got) == (SRC4, MCAST_V4, 64, payload)
    assert decode(got, src, dst) == Advert(3, 51, 150, 100, ("198.51.100.100",))


def test_split_ipv4_allows_dont_fragment():
    assert split_ipv4(ipv4(msg(), frag=0x4000))[3] == msg()


def test_malformed_packet_is_a_value_error_that_pickles():
    err = MalformedPacket(Reason.TTL, "ttl 64, expected 255")
    again = pickle.loads(pickle.dumps(err))
    assert isinstance(again, ValueError)
    assert (again.reason, str(again)) == (Reason.TTL, "ttl: ttl 64, expected 255")


# ---- encode refuses what the wire cannot carry ------------------------------------------------

V4 = ("203.0.113.10",)
BAD_ADVERTS = {
    "v2-half-second": (Advert(2, 1, 100, 150, V4), "whole number of seconds"),
    "v2-256-s": (Advert(2, 1, 100, 25600, V4), "whole number of seconds"),
    "v2-interval-0": (Advert(2, 1, 100, 0, V4), "whole number of seconds"),
    "v3-4096-cs": (Advert(3, 1, 100, 4096, V4), "outside 1..4095"),
    "v3-interval-0": (Advert(3, 1, 100, 0, V4), "outside 1..4095"),
    "v2-ipv6": (Advert(2, 1, 100, 100, ("2001:db8::1",), family=6), "IPv4 only"),
    "256-addresses": (Advert(3, 1, 100, 100, tuple(f"203.0.113.{i % 256}" for i in range(256))),
                      "1..255 addresses"),
    "no-addresses": (Advert(3, 1, 100, 100, ()), "1..255 addresses"),
    "ipv6-address-in-ipv4-advert": (Advert(3, 1, 100, 100, ("203.0.113.1", "2001:db8::1")),
                                    "not an IPv4 address"),
    "ipv4-address-in-ipv6-advert": (Advert(3, 1, 100, 100, ("2001:db8::1", "203.0.113.1"),
                                           family=6), "not an IPv6 address"),
    "not-an-address": (Advert(3, 1, 100, 100, ("203.0.113.300",)), "does not appear"),
    "vrid-256": (Advert(3, 256, 100, 100, V4), "vrid 256"),
    "priority-negative": (Advert(3, 1, -1, 100, V4), "priority -1"),
    "v3-with-auth": (Advert(3, 1, 100, 100, V4, auth_type=1, auth_data=b"s3cret\0\0"),
                     "no authentication"),
    "v2-auth-5-bytes": (Advert(2, 1, 100, 100, V4, auth_type=1, auth_data=b"s3cre"), "8 bytes"),
    "v2-auth-type-256": (Advert(2, 1, 100, 100, V4, auth_type=256), "auth_type 256"),
    "version-4": (Advert(4, 1, 100, 100, V4), "version"),
    "family-5": (Advert(3, 1, 100, 100, V4, family=5), "family"),
}


@pytest.mark.parametrize("case", BAD_ADVERTS.values(), ids=BAD_ADVERTS.keys())
def test_encode_rejects_impossible_advert(case):
    advert, words = case
    src, dst = (SRC6, MCAST_V6) if advert.family == 6 else (SRC4, MCAST_V4)
    with pytest.raises(ValueError, match=words) as exc:
        encode(advert, src, dst)
    assert not isinstance(exc.value, MalformedPacket)


def test_encode_rejects_unknown_checksum_mode_and_foreign_source():
    advert = Advert(3, 1, 100, 100, V4)
    with pytest.raises(ValueError, match="checksum must be one of"):
        encode(advert, SRC4, MCAST_V4, "none")
    with pytest.raises(ValueError, match="not an IPv4 address"):
        encode(advert, SRC6, MCAST_V4)


@pytest.mark.parametrize("advert", [
    Advert(3, 255, 255, 4095, tuple(f"2001:db8::{i:x}" for i in range(1, 256)), family=6),
    Advert(3, 0, 0, 1, V4),
    Advert(2, 1, 1, 25500, tuple(f"203.0.113.{i}" for i in range(255))),
], ids=["v3-v6-limits", "v3-v4-zeros", "v2-limits"])
def test_encode_limits_roundtrip(advert):
    src, dst = (SRC6, MCAST_V6) if advert.family == 6 else (SRC4, MCAST_V4)
    assert decode(encode(advert, src, dst), src, dst, advert.family) == advert


def test_v2_advert_without_auth_data_means_eight_zero_bytes():
    advert = Advert(2, 1, 100, 100, V4)
    payload = encode(advert, SRC4, MCAST_V4)
    assert payload[-8:] == bytes(8) and len(payload) == 8 + 4 + 8
    assert decode(payload, SRC4, MCAST_V4) == advert


# ---- helpers ----------------------------------------------------------------------------------

def test_password_bytes():
    assert password_bytes("s3cret") == b"s3cret\0\0"
    assert password_bytes("12345678") == b"12345678"
    with pytest.raises(ValueError, match="9 bytes"):
        password_bytes("123456789")
    with pytest.raises(ValueError, match="10 bytes"):
        password_bytes("pässwörd")    # 8 characters, 10 UTF-8 bytes
    with pytest.raises(ValueError, match="empty"):
        password_bytes("")


@pytest.mark.parametrize("data, expected", [
    (bytes.fromhex("0001f203f4f5f6f7"), 0x220D),    # RFC 1071 section 3 example
    (b"\x01", 0xFEFF),                              # odd length: padded with a zero byte
    (b"", 0xFFFF),
    (bytes(6), 0xFFFF),
    (b"\xff\xff", 0x0000),                          # sum 0xFFFF: checksum 0, not 0xFFFF
    (b"\x00\x01\xff\xfe", 0x0000),
])
def test_checksum16(data, expected):
    assert checksum16(data) == expected == scapy_checksum(data)
