"""The tcp check: healthy when a TCP connection to host:port is accepted."""
from __future__ import annotations

import asyncio


class TcpProbe:
    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    async def run(self) -> str:
        _, writer = await asyncio.open_connection(self.host, self.port)
        # RST rather than FIN: nothing was said, and no TIME_WAIT is left per run on our side
        writer.transport.abort()
        return f"{self.where} accepted a connection"

    async def close(self) -> None:
        pass
