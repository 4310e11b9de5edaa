"""The redis check with redis-py's asyncio client: PING, the role, and for a replica with
``synced`` the same in-sync test as checks/redis --synced (vipd/probes/redisinfo.py).

One connection is kept open between runs (a check every second would otherwise cost a TCP
handshake and a server-side client setup each time); any failure drops it, so the next run
starts from a fresh connect and a restarted or replaced server is seen as it is now.
"""
from __future__ import annotations

import socket

import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.exceptions import BusyLoadingError, RedisError, ResponseError
from redis.retry import Retry

from vipd.probes import Unhealthy, describe_error
from vipd.probes.redisinfo import (check_lag, check_role, loading_error, parse_info,
                                   primary_unreachable, replica_link)


def client(host: str, port: int, password: str | None, keepalive: bool = False) -> aioredis.Redis:
    """A client that never retries on its own: the check's own interval is the retry, and a
    retry inside one run would hide a failure behind the check's timeout. ``keepalive``: TCP
    keepalive finds a connection that went dead silently within about 8 s (a subscription only
    reads, so nothing else would ever notice; it then reconnects)."""
    extra = {}
    if keepalive:
        extra = {"socket_keepalive": True, "socket_keepalive_options": {
            socket.TCP_KEEPIDLE: 5, socket.TCP_KEEPINTVL: 1, socket.TCP_KEEPCNT: 3}}
    c = aioredis.Redis(host=host, port=port, password=password, decode_responses=True,
                       protocol=2, retry=Retry(NoBackoff(), 0), single_connection_client=True,
                       **extra)
    # INFO as its text, for the parser shared with checks/redis
    c.set_response_callback("INFO", lambda response, **options: response)
    return c


class RedisProbe:
    def __init__(self, host: str, port: int, password: str | None, role: str = "any",
                 synced: bool = False, max_lag: float = 30.0):
        self.host, self.port, self.password = host, port, password
        self.where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.role, self.synced, self.max_lag = role, synced, max_lag
        self.client = client(host, port, password)

    async def run(self) -> str:
        try:
            return await self._check()
        except BaseException:       # timeout and cancellation too: never reuse a half-read reply
            if self.client.connection is not None:
                await self.client.connection.disconnect()
            raise

    async def _check(self) -> str:
        try:
            await self.client.ping()
        except BusyLoadingError:
            raise loading_error(self.where, "LOADING") from None
        except ResponseError as e:
            raise loading_error(self.where, str(e)) from None
        if self.role == "any" and not self.synced:
            return f"{self.where} answered PONG"
        fields = parse_info(await self.client.info())
        role = check_role(self.where, fields, self.role)
        if self.synced and role == "replica":
            host, port = replica_link(fields, self.max_lag)
            primary = client(host, port, self.password)
            try:
                primary_fields = parse_info(await primary.info("replication"))
            except (RedisError, OSError) as e:
                raise primary_unreachable(host, port, describe_error(e)) from None
            finally:
                await primary.aclose()
            return f"{self.where}: " + check_lag(fields, primary_fields)
        return f"{self.where} answered PONG, role {role}"

    async def close(self) -> None:
        await self.client.aclose()

