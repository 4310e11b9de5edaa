"""What an HTTP check sends and how it judges the answer: shared by the `http` built-in check
(asyncio streams, vipd/probes/http.py) and the checks/nginx program (a blocking socket).

One GET with "Connection: close"; the answer is read up to READ_LIMIT bytes (or, when no body
text is expected, up to the end of the header) and judged here. Redirects are not followed: the
status the server sends is the status compared.
"""
from __future__ import annotations

import urllib.parse

from vipd.probes import Unhealthy

READ_LIMIT = 64 * 1024


class Request:
    def __init__(self, url: str):
        self.url = url
        parts = urllib.parse.urlsplit(url)
        self.host = parts.hostname
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.data = (f"GET {path} HTTP/1.1\r\nHost: {parts.netloc.rpartition('@')[2]}\r\n"
                     "User-Agent: vipd-check\r\nAccept: */*\r\nConnection: close\r\n\r\n"
                     ).encode("ascii")


def tls_context(insecure: bool):
    import ssl      # only for https: the import costs a check program measurable start-up time
    context = ssl.create_default_context()
    if insecure:    # a local check usually cannot verify: the certificate is not for 127.0.0.1
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def read_enough(data: bytes, want_body: bool) -> bool:
    """True once the answer read so far is all a check needs."""
    return len(data) >= READ_LIMIT or (not want_body and b"\r\n\r\n" in data)


def judge(url: str, data: bytes, expect_status: int = 200, expect_body: str | None = None) -> str:
    """The healthy reason for the answer ``data`` (as read until EOF or read_enough), or
    Unhealthy with why not."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise Unhealthy(f"{url}: connection closed before a complete answer" if data else
                        f"{url}: connection closed without an answer")
    lines = head.decode("iso-8859-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/") or not code.isdigit():
        raise Unhealthy(f"{url}: not an HTTP answer: {lines[0][:60]!r}")
    got = f"{url} answered {code} {reason}".rstrip()
    if int(code) != expect_status:
        raise Unhealthy(f"{got}, expected {expect_status}")
    if expect_body is not None:
        headers = {k.strip().lower(): v.strip() for k, _, v in
                   (line.partition(":") for line in lines[1:])}
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = _dechunk(body)
        if expect_body not in body.decode(errors="replace"):
            raise Unhealthy(f"{got} without {expect_body!r} in the body")
    return got


def _dechunk(body: bytes) -> bytes:
    """The data of a chunked body, as far as it was read."""
    out = b""
    while body:
        size_line, sep, body = body.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            break
        if not sep or size == 0:
            break
        out += body[:size]
        body = body[size + 2:]
    return out
