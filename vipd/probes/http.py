"""The http check: one HTTP/1.1 GET over asyncio streams (no client library, no thread), judged
by vipd/probes/httpmsg.py as checks/nginx judges it."""
from __future__ import annotations

import asyncio

from vipd.probes.httpmsg import Request, judge, read_enough, tls_context


class HttpProbe:
    def __init__(self, url: str, expect_status: int = 200, expect_body: str | None = None,
                 insecure: bool = False):
        self.request = Request(url)         # built once: it never changes
        self.where = url
        self.expect_status, self.expect_body = expect_status, expect_body
        self.tls = tls_context(insecure) if self.request.tls else None

    async def run(self) -> str:
        req = self.request
        reader, writer = await asyncio.open_connection(req.host, req.port, ssl=self.tls)
        try:
            writer.write(req.data)
            data = b""
            while not read_enough(data, self.expect_body is not None):
                chunk = await reader.read(65536)
                if not chunk:
                    break
                data += chunk
        finally:
            writer.close()
        return judge(req.url, data, self.expect_status, self.expect_body)

    async def close(self) -> None:
        pass
