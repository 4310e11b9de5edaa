"""VRRP advertisement codec: RFC 3768 (v2) and RFC 5798 / RFC 9568 (v3), IPv4 and IPv6.

Pure: bytes in, bytes or an ``Advert`` out. The codec checks syntax only and says why it rejects a
packet (``MalformedPacket.reason``); VRID, TTL, authentication, interval and peer checks are
semantics and belong to the state machine (FRR vrrpd draws the same line).

Wire format (RFC 3768 5.1, RFC 5798 5.1); only the second word differs by version::

    | Version | Type | Virtual Rtr ID | Priority | Count IPvX Addr |   4 bytes
    | v2: Auth Type  | Adver Int (s)  |        Checksum            |   4 bytes
    | v3: rsvd(4 bits) Max Adver Int (12 bits, cs) | Checksum      |
    | IPvX Address(es): Count x 4 or 16 bytes                       |
    | v2 only: Authentication Data, 8 bytes                         |

Length policy: a message longer than its header, addresses and (v2) auth data is rejected
(LENGTH_MISMATCH), not trimmed. RFC 5798 7.1 only requires the packet to *contain* the whole
message, but the address count is the only thing that delimits the address list, and both
keepalived (``vrrp_in_chk``: "Received packet length mismatch against expected") and FRR
(``vrrp_pkt_parse_datagram``: "Packet has incorrect # addresses") drop such packets. Accepting what
the peers we interoperate with drop would only hide a broken sender.
"""
import enum
import ipaddress
import struct
from dataclasses import dataclass, field

VRRP_PROTO = 112
MCAST_V4 = "224.0.0.18"
MCAST_V6 = "ff02::12"

ADVERTISEMENT = 1          # the only VRRP packet type (RFC 5798 5.2.2)
HEADER_LEN = 8
AUTH_LEN = 8               # v2 Authentication Data (RFC 3768 5.3.10)
MAX_ADVER_INT_CS = 0x0FFF  # v3 field is 12 bits of centiseconds (RFC 5798 5.2.7)
MAX_ADVER_INT_V2_S = 255   # v2 field is one byte of seconds (RFC 3768 5.3.7)
CHECKSUM_MODES = ("pseudo-header", "vrrp-only")

_HEADER = struct.Struct("!BBBBHH")   # ver/type, vrid, priority, count, word (v2 auth+int | v3 int), cksum
_ADDR_LEN = {4: 4, 6: 16}
_CKSUM_AT = 6


class Reason(str, enum.Enum):
    """Why an advert was discarded; the values are the counter keys shown in status."""
    # produced by this codec
    SHORT = "short"
    TRUNCATED = "truncated"
    BAD_IP_HEADER = "bad_ip_header"
    BAD_VERSION = "bad_version"
    BAD_TYPE = "bad_type"
    BAD_CHECKSUM = "bad_checksum"
    ADDR_COUNT = "addr_count"
    LENGTH_MISMATCH = "length_mismatch"
    INTERVAL_ZERO = "interval_zero"
    # produced by the state machine and the driver (semantics, not syntax)
    TTL = "ttl"
    AUTH = "auth"
    NOT_PEER = "not_peer"
    INTERVAL_MISMATCH = "interval_mismatch"
    FAMILY = "family"

    def __str__(self) -> str:
        return self.value


class MalformedPacket(ValueError):
    """A received packet that is not a well-formed VRRP advertisement."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(reason, detail)   # both in args so the exception pickles intact
        self.reason = reason
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.detail}" if self.detail else self.reason.value


@dataclass(frozen=True, slots=True)
class Advert:
    version: int                    # 2 or 3
    vrid: int
    priority: int
    adver_int_cs: int               # centiseconds; v2 carries whole seconds on the wire
    addresses: tuple[str, ...]      # decode gives canonical ipaddress str(), in packet order
    family: int = 4                 # 4 or 6
    auth_type: int = 0              # v2 only: 0 none, 1 simple text password
    auth_data: bytes = b""          # v2 only: the 8 bytes on the wire; b"" stands for 8 zero bytes
    # which v3-IPv4 checksum variant a received advert used; not part of the advert's identity
    checksum_mode: str = field(default="pseudo-header", compare=False)

    def __post_init__(self) -> None:
        # A v2 message always carries 8 auth bytes, so spell b"" out: then a constructed advert
        # equals its decoded self, and auth_data compares with password_bytes() as is.
        if self.version == 2 and self.auth_data == b"":
            object.__setattr__(self, "auth_data", bytes(AUTH_LEN))


# ---- checksum ------------------------------------------------------------------------------
#
# The internet checksum is the one's complement of the one's complement sum of 16-bit words.
# Since 2**16 == 1 (mod 0xFFFF), that sum is congruent to the whole buffer read as one big-endian
# integer, so int.from_bytes(...) % 0xFFFF does the word loop in C, with no copy of the buffer.


def _sum_mod(data) -> int:
    """One's complement sum of `data` (even length) reduced mod 0xFFFF."""
    return int.from_bytes(data, "big") % 0xFFFF


def _fold_complement(residue: int) -> int:
    """Checksum for a sum with this residue, assuming the summed data is not all zero bytes.

    A non-zero sum folds into 1..0xFFFF, so residue 0 means 0xFFFF and its complement is 0.
    """
    return -residue % 0xFFFF


def checksum16(data: bytes) -> int:
    """RFC 1071 internet checksum of `data` (odd lengths padded with a zero byte)."""
    value = int.from_bytes(data, "big")
    if len(data) % 2:
        value <<= 8
    if value == 0:
        return 0xFFFF   # the sum of nothing but zeros is +0, never folded to 0xFFFF
    return _fold_complement(value % 0xFFFF)


def _pseudo_header_sum(src_packed: bytes, dst_packed: bytes, length: int) -> int:
    """Residue of the IPv4 (RFC 768) or IPv6 (RFC 8200 8.1) pseudo-header for protocol 112.

    Both reduce to source + destination + upper-layer length + next header: the IPv6 form only
    spreads the length over 32 bits and pads with zeros, which add nothing to the sum.
    """
    return (_sum_mod(src_packed + dst_packed) + length + VRRP_PROTO) % 0xFFFF


_packed_cache: dict[tuple[str, int], bytes] = {}


def _packed(address: str, family: int) -> bytes:
    """Address string -> network bytes. Cached: a router hears the same few peers all day."""
    key = (address, family)
    packed = _packed_cache.get(key)
    if packed is None:
        ip = ipaddress.ip_address(address)
        if ip.version != family:
            raise ValueError(f"{address!r} is not an IPv{family} address")
        packed = ip.packed
        if len(_packed_cache) >= 1024:
            _packed_cache.clear()
        _packed_cache[key] = packed
    return packed


# ---- decode --------------------------------------------------------------------------------


def decode(payload: bytes, src: str, dst: str, family: int = 4) -> Advert:
    """Parse one VRRP message (no IP header) received from `src` for `dst`.

    Raises MalformedPacket for anything wrong with `payload`; ValueError for a bad `family`,
    `src` or `dst` (those come from the caller, not from the wire). For v3 over IPv4 both checksum
    variants are accepted, the pseudo-header one tried first; ``checksum_mode`` says which matched.
    """
    addr_len = _ADDR_LEN.get(family)
    if addr_len is None:
        raise ValueError(f"family must be 4 or 6, not {family!r}")
    size = len(payload)
    if size < HEADER_LEN:
        raise MalformedPacket(Reason.SHORT, f"{size} bytes, a VRRP header is {HEADER_LEN}")
    ver_type, vrid, priority, count, word, cksum = _HEADER.unpack_from(payload)
    version = ver_type >> 4
    if version != 3 and (version != 2 or family == 6):
        # RFC 5798 8.4: VRRPv2 exists for IPv4 only
        raise MalformedPacket(Reason.BAD_VERSION, f"version {version} over IPv{family}")
    if ver_type & 0x0F != ADVERTISEMENT:
        raise MalformedPacket(Reason.BAD_TYPE, f"type {ver_type & 0x0F}, expected {ADVERTISEMENT}")
    if count == 0:
        raise MalformedPacket(Reason.ADDR_COUNT, "address count is 0")
    addr_end = HEADER_LEN + count * addr_len
    expected = addr_end + (AUTH_LEN if version == 2 else 0)
    if size != expected:
        what = f"{count} IPv{family} address{'es' if count > 1 else ''}" + (
            " and auth data" if version == 2 else "")
        raise MalformedPacket(Reason.TRUNCATED if size < expected else Reason.LENGTH_MISMATCH,
                              f"{size} bytes, a header with {what} is {expected}")

    # The checksum field adds itself to the sum; remove it to get the residue of the rest.
    rest = (_sum_mod(payload) - cksum) % 0xFFFF
    if version == 2:
        mode = "vrrp-only"          # RFC 3768 5.3.8: the VRRP message only
        ok = _fold_complement(rest) == cksum
    else:
        pseudo = _pseudo_header_sum(_packed(src, family), _packed(dst, family), size)
        mode = "pseudo-header"      # RFC 5798 5.2.8
        ok = _fold_complement((rest + pseudo) % 0xFFFF) == cksum
        if not ok and family == 4:
            # RFC 9568 and Cisco/Arista leave the pseudo-header out for IPv4
            mode = "vrrp-only"
            ok = _fold_complement(rest) == cksum
    if not ok:
        raise MalformedPacket(Reason.BAD_CHECKSUM, f"checksum {cksum:#06x} is wrong for a "
                              f"v{version} advert from {src} to {dst}")

    if version == 2:
        auth_type, adver_int_cs = word >> 8, (word & 0xFF) * 100
        auth_data = bytes(payload[addr_end:expected])
    else:
        auth_type, adver_int_cs, auth_data = 0, word & MAX_ADVER_INT_CS, b""   # 4 bits reserved
    if adver_int_cs == 0:
        raise MalformedPacket(Reason.INTERVAL_ZERO, "advertisement interval is 0")

    if family == 4:
        addresses = tuple(f"{payload[i]}.{payload[i + 1]}.{payload[i + 2]}.{payload[i + 3]}"
                          for i in range(HEADER_LEN, addr_end, 4))
    else:
        addresses = tuple(str(ipaddress.IPv6Address(bytes(payload[i:i + 16])))
                          for i in range(HEADER_LEN, addr_end, 16))
    return Advert(version, vrid, priority, adver_int_cs, addresses, family, auth_type, auth_data,
                  mode)


def split_ipv4(datagram: bytes) -> tuple[str, str, int, bytes]:
    """(src, dst, ttl, vrrp_payload) from a whole IPv4 datagram, as an AF_INET raw socket gives it.

    Honours IHL (options) and the total length (bytes past it are not part of the datagram). The
    header checksum is not verified: the kernel dropped bad ones before the raw socket saw them.
    """
    size = len(datagram)
    if size < 20:
        raise MalformedPacket(Reason.SHORT, f"{size} bytes, an IPv4 header is at least 20")
    ver_ihl = datagram[0]
    header_len = (ver_ihl & 0x0F) * 4
    if ver_ihl >> 4 != 4 or header_len < 20:
        raise MalformedPacket(Reason.BAD_IP_HEADER,
                              f"version {ver_ihl >> 4}, header length {header_len}")
    total_len, frag, ttl, proto = struct.unpack_from("!H2xHBB", datagram, 2)
    if total_len < header_len:
        raise MalformedPacket(Reason.BAD_IP_HEADER,
                              f"total length {total_len} < header length {header_len}")
    if size < total_len:
        raise MalformedPacket(Reason.TRUNCATED, f"{size} bytes, total length says {total_len}")
    if frag & 0x3FFF:
        # The kernel reassembles before raw delivery; a fragment here is not a whole advert.
        raise MalformedPacket(Reason.BAD_IP_HEADER, "IP fragment")
    if proto != VRRP_PROTO:
        # includes 51 (IPsec AH, RFC 2338 auth type 2), which vipd does not speak
        raise MalformedPacket(Reason.BAD_IP_HEADER, f"IP protocol {proto}, expected {VRRP_PROTO}")
    src = "%d.%d.%d.%d" % tuple(datagram[12:16])
    dst = "%d.%d.%d.%d" % tuple(datagram[16:20])
    return src, dst, ttl, datagram[header_len:total_len]


# ---- encode --------------------------------------------------------------------------------


def _check_byte(name: str, value: int) -> None:
    if not 0 <= value <= 255:
        raise ValueError(f"{name} {value} does not fit in a byte (0..255)")


def _interval_field(advert: Advert) -> int:
    """The 16-bit word after the address count: v2 auth type + seconds, v3 centiseconds."""
    cs = advert.adver_int_cs
    if advert.version == 3:
        if not 1 <= cs <= MAX_ADVER_INT_CS:
            raise ValueError(f"v3 interval {cs} cs is outside 1..{MAX_ADVER_INT_CS} cs")
        return cs
    if cs % 100 or not 1 <= cs // 100 <= MAX_ADVER_INT_V2_S:
        raise ValueError(f"v2 interval {cs} cs is not a whole number of seconds in "
                         f"1..{MAX_ADVER_INT_V2_S}")
    _check_byte("auth_type", advert.auth_type)
    return advert.auth_type << 8 | cs // 100


def _auth_bytes(advert: Advert) -> bytes:
    if advert.version == 3:
        if advert.auth_type or advert.auth_data:
            raise ValueError("VRRPv3 has no authentication (RFC 5798 9.2)")
        return b""
    if len(advert.auth_data) != AUTH_LEN:
        raise ValueError(f"v2 auth_data must be {AUTH_LEN} bytes (see password_bytes), "
                         f"not {len(advert.auth_data)}")
    return advert.auth_data


def encode(advert: Advert, src: str, dst: str, checksum: str = "pseudo-header") -> bytes:
    """The VRRP message for `advert` sent from `src` to `dst` (the kernel adds the IP header).

    `checksum` chooses the v3-over-IPv4 variant; IPv6 always uses its pseudo-header and v2
    always the message alone. Raises ValueError for an advert the wire cannot carry.
    """
    if checksum not in CHECKSUM_MODES:
        raise ValueError(f"checksum must be one of {CHECKSUM_MODES}, not {checksum!r}")
    version, family = advert.version, advert.family
    if version not in (2, 3):
        raise ValueError(f"version must be 2 or 3, not {version!r}")
    if family not in _ADDR_LEN:
        raise ValueError(f"family must be 4 or 6, not {family!r}")
    if version == 2 and family == 6:
        raise ValueError("VRRPv2 is IPv4 only (RFC 5798 8.4); use version 3 for IPv6")
    _check_byte("vrid", advert.vrid)
    _check_byte("priority", advert.priority)
    count = len(advert.addresses)
    if not 1 <= count <= 255:
        raise ValueError(f"an advert carries 1..255 addresses, not {count}")
    word = _interval_field(advert)
    auth = _auth_bytes(advert)
    addrs = b"".join(_packed(a, family) for a in advert.addresses)

    msg = bytearray(_HEADER.pack(version << 4 | ADVERTISEMENT, advert.vrid, advert.priority,
                                 count, word, 0))
    msg += addrs
    msg += auth
    residue = _sum_mod(msg)
    if version == 3 and (family == 6 or checksum == "pseudo-header"):
        residue += _pseudo_header_sum(_packed(src, family), _packed(dst, family), len(msg))
    struct.pack_into("!H", msg, _CKSUM_AT, _fold_complement(residue % 0xFFFF))
    return bytes(msg)


def password_bytes(password: str) -> bytes:
    """RFC 3768 5.3.10 simple text password: its UTF-8 bytes, NUL-padded to 8."""
    raw = password.encode()
    if not raw:
        raise ValueError("empty VRRP password: use auth type 0 for no authentication")
    if len(raw) > AUTH_LEN:
        raise ValueError(f"VRRP password is {len(raw)} bytes, at most {AUTH_LEN} fit")
    return raw.ljust(AUTH_LEN, b"\0")
