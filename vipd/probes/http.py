"""The http check: one HTTP/1.1 GET over asyncio streams (no client library, no thread).

Redirects are not followed: the status the server sends is the status compared. The body is
read only when a substring is expected, and at most BODY_LIMIT bytes of it.
"""
from __future__ import annotations

import asyncio
import ssl
import urllib.parse

from vipd.probes import Unhealthy

BODY_LIMIT = 64 * 1024


class HttpProbe:
    def __init__(self, url: str, expect_status: int = 200, expect_body: str | None = None,
                 insecure: bool = False):
        self.url, self.expect_status, self.expect_body = url, expect_status, expect_body
        self.where = url
        parts = urllib.parse.urlsplit(url)
        self.host = parts.hostname
        self.tls = None
        if parts.scheme == "https":
            self.tls = ssl.create_default_context()
            if insecure:    # a local check usually cannot verify: the cert is not for 127.0.0.1
                self.tls.check_hostname = False
                self.tls.verify_mode = ssl.CERT_NONE
        self.port = parts.port or (443 if self.tls else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        # built once: the request never changes
        self.request = (f"GET {path} HTTP/1.1\r\nHost: {parts.netloc.rpartition('@')[2]}\r\n"
                        "User-Agent: vipd-check\r\nAccept: */*\r\nConnection: close\r\n\r\n"
                        ).encode("ascii")

    async def run(self) -> str:
        status, reason, body = await self.fetch()
        got = f"{self.url} answered {status} {reason}".rstrip()
        if status != self.expect_status:
            raise Unhealthy(f"{got}, expected {self.expect_status}")
        if self.expect_body is not None and self.expect_body not in body:
            raise Unhealthy(f"{got} without {self.expect_body!r} in the body")
        return got

    async def fetch(self) -> tuple[int, str, str]:
        """(status, reason, body text; "" unless a body is expected)."""
        reader, writer = await asyncio.open_connection(self.host, self.port, ssl=self.tls)
        try:
            writer.write(self.request)
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                raise Unhealthy(f"{self.url}: connection closed before a complete answer") from None
            lines = head.decode("iso-8859-1").split("\r\n")
            version, _, rest = lines[0].partition(" ")
            code, _, reason = rest.partition(" ")
            if not version.startswith("HTTP/") or not code.isdigit():
                raise Unhealthy(f"{self.url}: not an HTTP answer: {lines[0][:60]!r}")
            body = ""
            if self.expect_body is not None:
                headers = {k.strip().lower(): v.strip() for k, _, v in
                           (line.partition(":") for line in lines[1:] if line)}
                body = (await _read_body(reader, headers)).decode(errors="replace")
            return int(code), reason, body
        finally:
            writer.close()

    async def close(self) -> None:
        pass


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = b""
        while len(body) < BODY_LIMIT:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                break
            body += await reader.readexactly(size + 2)
            body = body[:-2]
        return body[:BODY_LIMIT]
    if "content-length" in headers:
        n = min(int(headers["content-length"]), BODY_LIMIT)
        return await reader.readexactly(n)
    body = b""
    while len(body) < BODY_LIMIT and (data := await reader.read(BODY_LIMIT - len(body))):
        body += data
    return body
