"""Programs and filters the lab runs inside its namespaces: ICMP echo and HTTP GET without
extra packages, the nginx config, and classic-BPF filters for silent cuts and partitions."""
from __future__ import annotations

import ipaddress


# Echo request/reply with a raw socket; Debian's minimal images have no ping binary.
PING = r"""
import os, socket, struct, sys, time
dst, count, wait = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
v6 = ":" in dst
fam, proto, req, rep = (socket.AF_INET6, 58, 128, 129) if v6 else (socket.AF_INET, 1, 8, 0)
s = socket.socket(fam, socket.SOCK_RAW, proto)
addr, ident = socket.getaddrinfo(dst, None, fam, socket.SOCK_RAW)[0][4], os.getpid() & 0xFFFF
for seq in range(1, count + 1):
    msg = struct.pack("!BBHHH", req, 0, 0, ident, seq) + b"vipd-lab"
    if not v6:  # the kernel sums ICMPv6 messages itself, not ICMPv4 ones
        t = sum(struct.unpack("!8H", msg))
        t = (t >> 16) + (t & 0xFFFF)
        msg = msg[:2] + struct.pack("!H", ~(t + (t >> 16)) & 0xFFFF) + msg[4:]
    end = time.monotonic() + wait
    try:
        s.sendto(msg, addr)
        while (left := end - time.monotonic()) > 0:
            s.settimeout(left)
            data = s.recv(4096)
            data = data if v6 else data[(data[0] & 15) * 4:]
            if data[:1] == bytes([rep]) and data[4:8] == struct.pack("!HH", ident, seq):
                sys.exit(0)
    except OSError:   # no route, or no answer in time
        time.sleep(max(0.0, end - time.monotonic()))
sys.exit(1)
"""

# GET with http.client (urllib would honour proxy settings), for machines without curl.
HTTP_GET = r"""
import http.client, sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
try:
    c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=float(sys.argv[2]))
    c.request("GET", (u.path or "/") + (f"?{u.query}" if u.query else ""))
    r = c.getresponse()
    sys.stdout.write(r.read().decode(errors="replace"))
except (OSError, http.client.HTTPException):
    sys.exit(1)
sys.exit(r.status >= 400)
"""

NGINX_CONF = """user root;
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log stderr notice;
events {{ worker_connections 256; }}
http {{
    access_log off;
    default_type text/plain;
    client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
    server {{
        listen {port};
        listen [::]:{port} ipv6only=on;
        root {d}/www;
        index index.html;
    }}
}}
"""


DROP = "1,6 0 0 2"     # classic BPF `ret #TC_ACT_SHOT`


def _cbpf(prog: list) -> str:
    """Assembles classic BPF for `tc filter ... bpf da bytecode`. Items are labels (str) or
    ("ld", "b"|"h"|"w", offset), ("jeq", value, label_if_equal, label_else), ("ret", value);
    offsets count from the Ethernet header (cls_bpf shows ingress frames from L2 too)."""
    labels, code = {}, []
    for item in prog:
        if isinstance(item, str):
            labels[item] = len(code)
        else:
            code.append(item)
    out = []
    for i, (op, *arg) in enumerate(code):
        if op == "ld":
            out.append((0x20 | {"w": 0x00, "h": 0x08, "b": 0x10}[arg[0]], 0, 0, arg[1]))
        elif op == "jeq":
            out.append((0x15, labels[arg[1]] - i - 1, labels[arg[2]] - i - 1, arg[0]))
        else:
            out.append((0x06, 0, 0, arg[0] & 0xFFFFFFFF))
    return f"{len(out)}," + ",".join(" ".join(map(str, ins)) for ins in out)


def vrrp_from(mac: str, ip4: str, ip6s: list[str]) -> str:
    """Classic BPF: drop VRRP whose source MAC is mac or whose IP source is ip4 or in ip6s;
    anything else returns TC_ACT_UNSPEC, i.e. on to the next filter."""
    m = bytes.fromhex(mac.replace(":", ""))
    p = [("ld", "h", 12), ("jeq", 0x0800, "v4", "n4"), "n4", ("jeq", 0x86DD, "v6", "pass"),
         "v4", ("ld", "b", 23), ("jeq", 112, "s4", "pass"),
         "s4", ("ld", "w", 26), ("jeq", int(ipaddress.IPv4Address(ip4)), "drop", "mac"),
         "v6", ("ld", "b", 20), ("jeq", 112, "a0w0", "pass")]
    for n, addr in enumerate(ip6s):
        packed = ipaddress.IPv6Address(addr).packed
        miss = f"a{n + 1}w0" if n + 1 < len(ip6s) else "mac"
        for j in range(4):   # the IPv6 source: 16 bytes at offset 22, a word at a time
            word = int.from_bytes(packed[4 * j:4 * j + 4], "big")
            p += [f"a{n}w{j}", ("ld", "w", 22 + 4 * j),
                  ("jeq", word, f"a{n}w{j + 1}" if j < 3 else "drop", miss)]
    return _cbpf(p + ["mac", ("ld", "w", 6), ("jeq", int.from_bytes(m[:4], "big"), "mac2", "pass"),
                      "mac2", ("ld", "h", 10), ("jeq", int.from_bytes(m[4:], "big"), "drop", "pass"),
                      "pass", ("ret", -1), "drop", ("ret", 2)])


def frames_from(mac: str) -> str:
    """Classic BPF: drop every frame whose source MAC is mac; others go on to the next filter."""
    m = bytes.fromhex(mac.replace(":", ""))
    return _cbpf([("ld", "w", 6), ("jeq", int.from_bytes(m[:4], "big"), "low", "pass"),
                  "low", ("ld", "h", 10), ("jeq", int.from_bytes(m[4:], "big"), "drop", "pass"),
                  "pass", ("ret", -1), "drop", ("ret", 2)])
