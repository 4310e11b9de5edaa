"""Property tests: whatever bytes arrive, the codec answers with an Advert or MalformedPacket.

A daemon that decodes every packet on the wire must never crash on one; and anything it accepts
must be something it could have sent itself.
"""
import ipaddress
import os
import struct
from collections import Counter

from hypothesis import HealthCheck, event, given, settings, target
from hypothesis import strategies as st
from scapy.utils import checksum as scapy_checksum

from vipd.core.packet import (
    CHECKSUM_MODES, MCAST_V4, MCAST_V6, VRRP_PROTO, Advert, MalformedPacket, checksum16, decode,
    encode, split_ipv4,
)

# scripts/mutants lowers the example counts (VIPD_FUZZ_EXAMPLES) so that each of the hundreds of
# codec mutants runs in seconds; the suite runs them in full.
EXAMPLES = int(os.environ.get("VIPD_FUZZ_EXAMPLES", "600"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
# The path-coverage tests draw heavier inputs and assert which paths they reached: derandomized,
# so the set of inputs (and so the verdict) is the same on every run and machine; 400 reach each
# path at least 5 times (the counts are printed). With fewer (mutation runs) the reach is not
# asserted, only that nothing crashes.
PATH_EXAMPLES = min(400, EXAMPLES)
PATHS = settings(FUZZ, max_examples=PATH_EXAMPLES, derandomize=True, database=None)

ipv4s = st.ip_addresses(v=4).map(str)
ipv6s = st.ip_addresses(v=6).map(str)
bytes_ = st.integers(0, 255)


@st.composite
def endpoints(draw, family):
    """(src, dst): multicast or unicast destination, as the driver would pass them."""
    addrs, group = (ipv4s, MCAST_V4) if family == 4 else (ipv6s, MCAST_V6)
    return draw(addrs), draw(st.one_of(st.just(group), addrs))


@st.composite
def sent_adverts(draw, families=(4, 6)):
    """(advert, src, dst, checksum mode, payload) for any advert encode accepts."""
    family = draw(st.sampled_from(families))
    version = 3 if family == 6 else draw(st.sampled_from([2, 3]))
    if version == 3:
        interval, auth_type, auth_data = draw(st.integers(1, 0x0FFF)), 0, b""
    else:
        interval = 100 * draw(st.integers(1, 255))
        auth_type, auth_data = draw(bytes_), draw(st.binary(min_size=8, max_size=8))
    addresses = tuple(draw(st.lists(ipv4s if family == 4 else ipv6s, min_size=1, max_size=12)))
    advert = Advert(version, draw(bytes_), draw(bytes_), interval, addresses, family,
                    auth_type, auth_data)
    src, dst = draw(endpoints(family))
    mode = draw(st.sampled_from(CHECKSUM_MODES))
    return advert, src, dst, mode, encode(advert, src, dst, mode)


@st.composite
def mutated(draw, data):
    """`data` with a few bytes changed, cut short, or with bytes appended."""
    data = bytearray(data)
    kind = draw(st.sampled_from(["flip", "truncate", "extend", "flip+truncate"]))
    if "flip" in kind:
        for _ in range(draw(st.integers(1, 3))):
            data[draw(st.integers(0, len(data) - 1))] = draw(bytes_)
    if "truncate" in kind:
        data = data[:draw(st.integers(0, len(data)))]
    if kind == "extend":
        data += draw(st.binary(min_size=1, max_size=20))
    return bytes(data)


def assert_reencodes(advert, payload, src, dst):
    """An accepted payload comes back byte for byte, bar v3's reserved bits (zero on send)."""
    out = encode(advert, src, dst, advert.checksum_mode)
    again = decode(out, src, dst, advert.family)
    assert again == advert and again.checksum_mode == advert.checksum_mode
    sent = bytearray(payload)
    if advert.version == 3:
        sent[4] &= 0x0F
    assert (out[:6], out[8:]) == (bytes(sent[:6]), bytes(sent[8:]))
    if sent == payload:
        assert out == payload


# How far into decode() a payload got, in the order of its checks: target() steers hypothesis
# toward inputs that pass more of them.
DEPTH = {"short": 0, "bad_version": 1, "bad_type": 2, "addr_count": 3, "truncated": 4,
         "length_mismatch": 4, "bad_checksum": 5, "interval_zero": 6, "accepted": 7}


def decode_or_malformed(payload, src, dst, family):
    """The decoder's verdict on `payload`: "accepted" or the discard reason."""
    try:
        advert = decode(payload, src, dst, family)
    except MalformedPacket as exc:
        outcome = exc.reason.value
    else:
        outcome = "accepted"
        assert_reencodes(advert, payload, src, dst)
    event(f"decode: {outcome}")   # --hypothesis-show-statistics shows the mix
    target(DEPTH[outcome], label="decode depth")
    return outcome


@FUZZ
@given(sent_adverts())
def test_every_encodable_advert_decodes_to_itself(case):
    advert, src, dst, mode, payload = case
    got = decode(payload, src, dst, advert.family)
    assert got == advert
    if advert.version == 2:
        assert got.checksum_mode == "vrrp-only"
    elif advert.family == 6:
        assert got.checksum_mode == "pseudo-header"
    else:   # both variants agree only when the pseudo-header sums to zero; then the first wins
        both = encode(advert, src, dst, "pseudo-header") == encode(advert, src, dst, "vrrp-only")
        assert got.checksum_mode == ("pseudo-header" if both else mode)


def pseudo_header(src, dst, length, family):
    """IPv4 (RFC 768) or IPv6 (RFC 8200 8.1) pseudo-header for protocol 112."""
    addrs = ipaddress.ip_address(src).packed + ipaddress.ip_address(dst).packed
    if family == 4:
        return addrs + struct.pack("!xBH", VRRP_PROTO, length)
    return addrs + struct.pack("!I3xB", length, VRRP_PROTO)


def with_checksum(payload, src, dst, family, variant):
    """`payload` with its checksum recomputed by scapy, so the checks after it get a say."""
    if len(payload) < 8:
        return payload
    zeroed = payload[:6] + b"\0\0" + payload[8:]
    prefix = pseudo_header(src, dst, len(payload), family) if variant == "pseudo-header" else b""
    return payload[:6] + struct.pack("!H", scapy_checksum(prefix + zeroed)) + payload[8:]


@FUZZ
@given(st.data())
def test_mutated_adverts_never_crash_decode(data):
    advert, src, dst, _, payload = data.draw(sent_adverts())
    payload = data.draw(mutated(payload))
    variant = data.draw(st.sampled_from(("as mutated",) + CHECKSUM_MODES))
    if variant != "as mutated":
        payload = with_checksum(payload, src, dst, advert.family, variant)
    decode_or_malformed(payload, src, dst, advert.family)


# VRRP header bytes set to values that mean something there, by the check they aim at
HEADER_FIELDS = {"version": [(0, 0x11), (0, 0x41), (0, 0x21)],     # 0x21: v2, wrong over IPv6
                 "type": [(0, 0x32), (0, 0x30)],
                 "count": [(3, 0)],
                 "interval": [(4, 0), (5, 0)],     # v3: high bits of the 12; v2: all of it
                 "checksum": [(6, 0), (7, 0)]}


@st.composite
def structured_payloads(draw):
    """(payload, src, dst, family): random bytes, or a sent advert as is, mutated, with one
    header field set to a value that means something there, and either of the last two with
    its checksum made right again (so the checks after the checksum get a say)."""
    kind = draw(st.sampled_from(["random", "valid", "mutated", "mutated, checksum fixed",
                                 "field", "field, checksum fixed"]))
    if kind == "random":
        family = draw(st.sampled_from([4, 6]))
        src, dst = draw(endpoints(family))
        return draw(st.binary(max_size=120)), src, dst, family
    advert, src, dst, mode, payload = draw(sent_adverts())
    if kind.startswith("mutated"):
        payload = draw(mutated(payload))
    elif kind.startswith("field"):
        payload = bytearray(payload)
        at, value = draw(st.sampled_from(HEADER_FIELDS[draw(st.sampled_from(list(HEADER_FIELDS)))]))
        payload[at] = value
        payload = bytes(payload)
    if kind.endswith("checksum fixed"):
        payload = with_checksum(payload, src, dst, advert.family, mode if advert.version == 3
                                else "vrrp-only")
    return payload, src, dst, advert.family


# Each path of decode() the structured inputs must reach, and so show they are exercised.
DECODE_PATHS = {"accepted", "bad_checksum", "truncated", "length_mismatch", "bad_version",
                "bad_type", "addr_count", "short"}


def test_structured_inputs_never_crash_decode_and_reach_every_path():
    seen = Counter()

    @PATHS
    @given(structured_payloads())
    def run(case):
        seen[decode_or_malformed(*case)] += 1

    run()
    print(f"\ndecode outcomes: {dict(seen.most_common())}")
    if PATH_EXAMPLES == 400:
        assert DECODE_PATHS <= set(seen), f"never reached: {DECODE_PATHS - set(seen)}"


def split_outcome(datagram):
    """split_ipv4's verdict and, when it passes, decode's: e.g. "split ok, decode: accepted"."""
    try:
        src, dst, ttl, payload = split_ipv4(datagram)
    except MalformedPacket as exc:
        event(f"split: {exc.reason.value}")
        target(0, label="split+decode depth")
        return f"split: {exc.reason.value}"
    header_len = (datagram[0] & 0x0F) * 4
    assert payload == datagram[header_len:struct.unpack_from("!H", datagram, 2)[0]]
    assert 0 <= ttl <= 255
    outcome = decode_or_malformed(payload, src, dst, 4)
    target(1 + DEPTH[outcome], label="split+decode depth")
    return f"split ok, decode: {outcome}"


# IPv4 header bytes set to a value that means something there: version 6, IHL 4 (16 bytes),
# protocol TCP, a fragment, total length below the header or past the datagram.
IP_FIELDS = [(0, 0x65), (0, 0x44), (9, 6), (6, 0x20), (7, 1), (2, 0), (3, 10), (2, 0xFF)]


@st.composite
def structured_datagrams(draw):
    """Random bytes, or a whole IPv4 datagram carrying a sent advert: as is, mutated anywhere
    (cut short, extended), with one IP header field set to a value that means something, with
    its last byte changed, or cut short of its IP total length."""
    kind = draw(st.sampled_from(["random", "valid", "mutated", "ip field", "last byte", "cut"]))
    if kind == "random":
        return draw(st.binary(max_size=120))
    advert, src, dst, _, payload = draw(sent_adverts(families=(4,)))
    options = draw(st.sampled_from([b"", bytes([148, 4, 0, 0]), bytes(40)]))
    datagram = _datagram(payload, src, dst, options)
    if kind == "mutated":
        return draw(mutated(datagram))
    datagram = bytearray(datagram)
    if kind == "ip field":
        at, value = draw(st.sampled_from(IP_FIELDS))
        datagram[at] = value
    elif kind == "last byte":      # an address or auth byte: only the checksum can tell
        datagram[-1] ^= draw(st.integers(1, 255))
    elif kind == "cut":            # shorter than its IP total length says
        datagram = datagram[:draw(st.integers(20, len(datagram) - 1))]
    return bytes(datagram)


SPLIT_PATHS = {"split: short", "split: bad_ip_header", "split: truncated",
               "split ok, decode: accepted", "split ok, decode: bad_checksum"}


def test_structured_datagrams_never_crash_split_and_reach_every_path():
    seen = Counter()

    @PATHS
    @given(structured_datagrams())
    def run(datagram):
        seen[split_outcome(datagram)] += 1

    run()
    print(f"\nsplit_ipv4 outcomes: {dict(seen.most_common())}")
    if PATH_EXAMPLES == 400:
        assert SPLIT_PATHS <= set(seen), f"never reached: {SPLIT_PATHS - set(seen)}"


def _datagram(payload, src, dst, options):
    header_len = 20 + len(options)
    return struct.pack("!BBHHHBBH4s4s", 0x40 | header_len // 4, 0xC0, header_len + len(payload),
                       0, 0, 255, VRRP_PROTO, 0, bytes(map(int, src.split("."))),
                       bytes(map(int, dst.split(".")))) + options + payload


@FUZZ
@given(st.data())
def test_mutated_datagrams_never_crash_split_and_decode(data):
    advert, src, dst, _, payload = data.draw(sent_adverts(families=(4,)))
    options = data.draw(st.sampled_from([b"", bytes([148, 4, 0, 0]), bytes(40)]))
    datagram = _datagram(payload, src, dst, options)
    assert split_ipv4(datagram) == (src, dst, 255, payload)
    try:
        src, dst, _, payload = split_ipv4(data.draw(mutated(datagram)))
    except MalformedPacket:
        return
    decode_or_malformed(payload, src, dst, 4)


@FUZZ
@given(st.binary(max_size=64))
def test_checksum16_agrees_with_scapy(data):
    assert checksum16(data) == scapy_checksum(data)
